using System.Reflection;
using Dapper;

namespace OpenPool.Engine.Data;

/// <summary>
/// Applies the embedded, numbered SQL scripts of the database's dialect that it has not seen yet,
/// each in its own transaction, so an existing database is upgraded in place and a half-applied
/// script never sticks. On PostgreSQL an advisory lock makes replicas starting together take turns.
/// </summary>
internal static class Migrator
{
    private const string Lock = "openpool:migrations";

    public static async Task<int> MigrateAsync(Database db, TimeProvider clock, CancellationToken ct = default)
    {
        if (!db.IsPostgres)
        {
            await using var connection = await db.OpenAsync(ct);
            await connection.ExecuteAsync("PRAGMA journal_mode=WAL;");
        }
        await db.WriteAsync(async (c, t) =>
        {
            await db.LockAsync(c, t, Lock);
            await c.ExecuteAsync(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                transaction: t);
        }, ct);

        var applied = 0;
        foreach (var (version, name, sql) in LoadScripts(db.IsPostgres ? "postgres" : "sqlite"))
        {
            var done = await db.WriteAsync(async (c, t) =>
            {
                await db.LockAsync(c, t, Lock);
                var exists = await c.ExecuteScalarAsync<long>(
                    "SELECT COUNT(*) FROM schema_migrations WHERE version = @version", new { version }, t);
                if (exists > 0)
                    return false;
                await c.ExecuteAsync(sql, transaction: t);
                await c.ExecuteAsync(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@version, @name, @at)",
                    new { version, name, at = clock.GetUtcNow().ToUnixTimeMilliseconds() }, t);
                return true;
            }, ct);
            if (done)
                applied++;
        }
        return applied;
    }

    internal static IEnumerable<(int Version, string Name, string Sql)> LoadScripts(string dialect)
    {
        var assembly = Assembly.GetExecutingAssembly();
        var prefix = $"OpenPool.Engine.Data.Migrations.{dialect}.";
        var scripts = new List<(int, string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var fileName = resource[prefix.Length..];
            var version = int.Parse(fileName[..fileName.IndexOf('_', StringComparison.Ordinal)]);
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            scripts.Add((version, fileName, reader.ReadToEnd()));
        }
        return scripts.OrderBy(s => s.Item1);
    }
}
