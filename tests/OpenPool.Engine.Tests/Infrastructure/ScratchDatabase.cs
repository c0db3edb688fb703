using Microsoft.Data.Sqlite;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// A migrated engine database of a test's own: a file in a temporary directory on SQLite (in WAL
/// mode, as the engine runs it), a fresh database on the run's PostgreSQL server.
/// </summary>
public sealed class ScratchDatabase : IDisposable
{
    private readonly TempDir _dir = new();

    public ScratchDatabase(Backend backend)
    {
        Db = backend == Backend.Postgres
            ? Database.Postgres(PostgresServer.Instance.CreateDatabase())
            : Database.Sqlite(Path.Combine(_dir.Path, "openpool.db"));
        Migrator.MigrateAsync(Db, TimeProvider.System).GetAwaiter().GetResult();
    }

    internal Database Db { get; }

    public void Dispose()
    {
        Db.Dispose();
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
