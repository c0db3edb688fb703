using System.Net;
using System.Net.Http.Headers;
using Microsoft.Data.Sqlite;
using Npgsql;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Bench.Harness;

/// <summary>
/// One engine under test: a real process on loopback (Release, from next to this program), its data
/// directory, its admin key, and direct read access to its database for counting what it did.
/// </summary>
public sealed class BenchEngine : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly string[] _arguments;
    private EngineProcess _process;

    private BenchEngine(TempDir dir, EngineProcess process, string[] arguments, string key, string? postgres)
    {
        _dir = dir;
        _process = process;
        _arguments = arguments;
        AdminKey = key;
        Postgres = postgres;
    }

    public string AdminKey { get; }

    /// <summary>The engine's PostgreSQL connection string, or null on SQLite.</summary>
    public string? Postgres { get; }

    public Uri Url => _process.Url;

    /// <summary>The S3 endpoint's bound URL (the engine prints it at start; a restart binds a new port).</summary>
    public Uri S3Url => _process.S3Url;

    public int Pid => _process.Pid;

    public string DataDir => _dir.Path;

    public string SqlitePath => Path.Combine(_dir.Path, "openpool.db");

    /// <summary>Starts an engine on a fresh data directory (and <paramref name="postgres"/> when given).</summary>
    public static async Task<BenchEngine> StartAsync(string? postgres, params string[] settings)
    {
        string[] arguments = postgres is null ? settings : [.. settings, "--database", postgres];
        var dir = new TempDir();
        var process = await EngineProcess.StartAsync(dir.Path, arguments);
        var key = (await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.key"))).Trim();
        return new BenchEngine(dir, process, arguments, key, postgres);
    }

    /// <summary>A client that keeps up to <paramref name="connections"/> connections open to the engine.</summary>
    public HttpClient Client(string? key = null, int connections = 64) => Client(Url, key ?? AdminKey, connections);

    public static HttpClient Client(Uri url, string? key, int connections)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        var client = new HttpClient(handler) { BaseAddress = url, Timeout = TimeSpan.FromSeconds(120) };
        if (key is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>Waits until no request is unfinished; false when <paramref name="timeout"/> passes first.</summary>
    public Task<bool> AllRequestsFinishedAsync(TimeSpan timeout) =>
        Load.UntilAsync(async () => await ScalarAsync("SELECT COUNT(*) FROM requests WHERE finished_at IS NULL") == 0, timeout);

    /// <summary>SIGKILL, as a crash would; then the same data directory is served again.</summary>
    public async Task KillAsync() => await _process.KillAsync();

    public async Task RestartAsync()
    {
        await _process.DisposeAsync(); // kills it first if it still runs
        _process = await EngineProcess.StartAsync(_dir.Path, _arguments);
    }

    /// <summary>Stops the engine (SIGKILL) so its database can be changed beside it; <see cref="RestartAsync"/> brings it back.</summary>
    public Task StopAsync() => _process.KillAsync();

    /// <summary>One number from the engine's database, read beside the engine (never through it).</summary>
    public async Task<long> ScalarAsync(string sql)
    {
        if (Postgres is not null)
        {
            await using var pg = new NpgsqlConnection(Postgres);
            await pg.OpenAsync();
            await using var command = new NpgsqlCommand(sql, pg);
            return Convert.ToInt64(await command.ExecuteScalarAsync());
        }
        await using var sqlite = new SqliteConnection($"Data Source={SqlitePath};Mode=ReadOnly;Pooling=false");
        await sqlite.OpenAsync();
        await using var query = sqlite.CreateCommand();
        query.CommandText = sql;
        return Convert.ToInt64(await query.ExecuteScalarAsync());
    }

    /// <summary>Resident memory of the engine process (VmRSS), in MiB.</summary>
    public double ResidentMegabytes(string field = "VmRSS")
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        }
        throw new InvalidOperationException($"{field} not found for process {Pid}");
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _dir.Dispose();
    }
}
