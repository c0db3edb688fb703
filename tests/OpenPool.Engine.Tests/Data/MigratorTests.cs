using Dapper;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

public sealed class MigratorTests
{
    [Fact]
    public async Task Migrations_apply_once_and_a_second_start_keeps_the_data()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "openpool.db");
        using (var db = Database.Sqlite(path))
        {
            Assert.True(await Migrator.MigrateAsync(db, TimeProvider.System) >= 1);
            await db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO orgs (id, name, created_at) VALUES ('o-1', 'kept', 0)", transaction: t));
        }
        using (var db = Database.Sqlite(path))
        {
            Assert.Equal(0, await Migrator.MigrateAsync(db, TimeProvider.System));
            Assert.Equal("kept", await db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT name FROM orgs WHERE id = 'o-1'")));
            var versions = await db.ReadAsync(c => c.QueryAsync<long>("SELECT version FROM schema_migrations ORDER BY version"));
            Assert.Equal(Migrator.LoadScripts("sqlite").Select(s => (long)s.Version), versions);
            Assert.Equal("wal", await db.ReadAsync(c => c.ExecuteScalarAsync<string>("PRAGMA journal_mode")));
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}
