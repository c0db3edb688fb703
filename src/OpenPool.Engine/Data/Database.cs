using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace OpenPool.Engine.Data;

/// <summary>
/// The one way code reaches the database. Reads run on pooled connections concurrently; writes go
/// through <see cref="WriteAsync{T}"/>, which takes SQLite's write lock up front (BEGIN IMMEDIATE)
/// so a transaction never has to upgrade a read lock, the source of SQLITE_BUSY surprises under WAL.
/// </summary>
internal sealed class Database : IDisposable
{
    // SQLite has one writer per file; queueing writers in-process is cheaper than letting them spin
    // on the busy handler.
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly string _connectionString;

    public Database(string sqlitePath)
    {
        SqlitePath = Path.GetFullPath(sqlitePath);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = SqlitePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public string SqlitePath { get; }

    public async Task<DbConnection> OpenAsync(CancellationToken ct = default)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        using var pragma = connection.CreateCommand();
        // Per-connection settings; journal_mode=WAL is persistent and set once by the migrator.
        pragma.CommandText = "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;";
        await pragma.ExecuteNonQueryAsync(ct);
        return connection;
    }

    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        return await work(connection);
    }

    public async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct = default)
    {
        await _writeGate.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            var result = await work(connection, transaction);
            await transaction.CommitAsync(ct);
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> work, CancellationToken ct = default) =>
        WriteAsync<bool>(async (c, t) => { await work(c, t); return true; }, ct);

    public static bool IsUniqueViolation(Exception ex) =>
        ex is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 };

    public void Dispose() => _writeGate.Dispose();
}
