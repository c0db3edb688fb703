using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL server for the test run: initdb into a temporary directory, pg_ctl start
/// on a free loopback port (well under a second), one fresh database per test, stopped when the
/// test process exits. Real PostgreSQL, never a mock; it needs the server binaries installed.
/// </summary>
internal sealed class PostgresServer
{
    private static readonly Lazy<PostgresServer> Shared = new(() => Start(durable: false), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly string _bin;
    private readonly string _root;

    private PostgresServer(string bin, string root, int port)
    {
        _bin = bin;
        _root = root;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The server binaries' folder (pgbench lives there too).</summary>
    public string BinDirectory => _bin;

    public static PostgresServer Instance => Shared.Value;

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=50;Timeout=30";

    /// <summary>A new, empty database; tests never share one.</summary>
    public string CreateDatabase()
    {
        var name = "t_" + Guid.NewGuid().ToString("N");
        using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"CREATE DATABASE {name}";
        command.ExecuteNonQuery();
        return ConnectionString(name);
    }

    /// <summary>
    /// A server of its own. <paramref name="durable"/> keeps PostgreSQL's defaults (fsync and synchronous
    /// commit on), as an operator would run it; the tests' shared server turns both off for speed.
    /// </summary>
    public static PostgresServer Start(bool durable)
    {
        var bin = FindBinaries() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with 'apt-get install -y postgresql' " +
            "(./test.sh does this), or point OPENPOOL_PG_BIN at their folder.");
        var root = Path.Combine(Path.GetTempPath(), "openpool-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
            Run("chown", ["postgres", root], asPostgres: false); // initdb refuses to run as root
        var port = FreePort();
        Run(Path.Combine(bin, "initdb"), ["-D", Path.Combine(root, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], asRoot);
        Run(Path.Combine(bin, "pg_ctl"), ["-D", Path.Combine(root, "data"), "-l", Path.Combine(root, "log"), "-w", "-o",
            $"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=400" + (durable ? "" : " -c fsync=off -c synchronous_commit=off"), "start"], asRoot);
        var server = new PostgresServer(bin, root, port);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop(asRoot);
        return server;
    }

    private void Stop(bool asRoot)
    {
        try
        {
            Run(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_root, "data"), "-m", "immediate", "stop"], asRoot);
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            // Best effort at exit: the temporary directory is removed by the OS eventually.
        }
    }

    private static string? FindBinaries()
    {
        if (Environment.GetEnvironmentVariable("OPENPOOL_PG_BIN") is { Length: > 0 } configured)
            return configured;
        const string debian = "/usr/lib/postgresql";
        if (Directory.Exists(debian))
        {
            var newest = Directory.GetDirectories(debian)
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault();
            if (newest is not null)
                return newest;
        }
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .FirstOrDefault(dir => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")));
    }

    private static void Run(string file, string[] args, bool asPostgres)
    {
        var start = new ProcessStartInfo(asPostgres ? "runuser" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asPostgres)
        {
            foreach (var a in new[] { "-u", "postgres", "--", file })
                start.ArgumentList.Add(a);
        }
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000) || process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {stdout.Result}{stderr.Result}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
