using System.Net;
using System.Net.Sockets;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Hosting;

/// <summary>The data directory keeps secrets: owner-only, fixed at every start, whatever it was before.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public abstract class DataDirectoryModeTests(Backend backend) : IDisposable
{
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode WorldReadable = OwnerOnlyFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task A_0755_directory_with_a_0644_database_becomes_0700_with_every_file_0600()
    {
        // What an operator's mkdir and an older engine leave behind.
        File.SetUnixFileMode(_engine.DataDir, WorldReadable | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        var database = Path.Combine(_engine.DataDir, "openpool.db");
        await File.WriteAllBytesAsync(database, []);
        File.SetUnixFileMode(database, WorldReadable);

        // Writes make SQLite's -wal and -shm; the admin key and the database are there from the start.
        var created = await _engine.Admin().PostJson("/admin/users", """{"email":"modes@example.com"}""");
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);

        Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(_engine.DataDir));
        var files = Directory.EnumerateFiles(_engine.DataDir).ToList();
        Assert.Contains(Path.Combine(_engine.DataDir, "admin.key"), files);
        if (backend == Backend.Sqlite)
            Assert.Contains(database + "-wal", files);
        Assert.All(files, file => Assert.True(File.GetUnixFileMode(file) == OwnerOnlyFile, $"{file} is {File.GetUnixFileMode(file)}"));
    }
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DataDirectoryModesOnSqlite() : DataDirectoryModeTests(Backend.Sqlite);

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DataDirectoryModesOnPostgres() : DataDirectoryModeTests(Backend.Postgres);

/// <summary>Starting a real engine process on a port another process holds.</summary>
public sealed class StartupTests
{
    [Fact]
    public async Task A_port_in_use_is_one_line_a_failing_exit_and_no_operator_account_left_behind()
    {
        using var dir = new TempDir();
        var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)holder.LocalEndpoint).Port}";
        int exitCode;
        string output;
        try
        {
            (exitCode, output) = await EngineProcess.RunUntilExitAsync(dir.Path, url);
        }
        finally
        {
            holder.Stop();
        }

        Assert.NotEqual(0, exitCode);
        Assert.Equal($"openpool: cannot listen on {url}: address already in use (another engine running? pass --urls http://127.0.0.1:PORT)", output);
        Assert.False(File.Exists(Path.Combine(dir.Path, "admin.key")));

        // The account was not made either: the first start that listens makes it, and shows its key.
        await using var engine = await EngineProcess.StartAsync(dir.Path);
        Assert.Contains("Created the operator account", engine.Output, StringComparison.Ordinal);
        var key = (await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.key"))).Trim();
        Assert.Contains(key, engine.Output, StringComparison.Ordinal);
    }
}
