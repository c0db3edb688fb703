using Dapper;
using Microsoft.Data.Sqlite;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

/// <summary>
/// SQLite's single writer commits concurrent writes together (group commit) on statements it keeps
/// prepared. Whatever it batches, each write must behave as if it had a transaction of its own.
/// </summary>
public sealed class SqliteWriterTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Database _db;
    private readonly string _path;

    public SqliteWriterTests()
    {
        _path = Path.Combine(_dir.Path, "writer.db");
        _db = Database.Sqlite(_path);
        Migrator.MigrateAsync(_db, TimeProvider.System).GetAwaiter().GetResult(); // WAL, as the engine runs
        _db.WriteAsync((c, t) => c.ExecuteAsync(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, label TEXT NOT NULL UNIQUE)", transaction: t)).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        _db.Dispose();
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    [Fact]
    public async Task A_write_that_fails_in_a_batch_is_undone_alone_and_the_others_commit()
    {
        // 300 writers at once, so the writer batches them; every seventh inserts two rows and then
        // throws, every eleventh breaks the unique label (a constraint error half-way through).
        await _db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (-1, 'taken')", transaction: t));
        var writes = Enumerable.Range(0, 300).Select(i => _db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"first-{i}" }, t);
            if (i % 11 == 0)
                await c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, 'taken')", new { i }, t);
            await c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"second-{i}" }, t);
            if (i % 7 == 0)
                throw new InvalidOperationException($"write {i} gives up");
            return i;
        })).ToList();

        for (var i = 0; i < writes.Count; i++)
        {
            if (i % 11 == 0)
                Assert.True(Database.IsUniqueViolation(await Assert.ThrowsAnyAsync<SqliteException>(() => writes[i])));
            else if (i % 7 == 0)
                Assert.Equal($"write {i} gives up", (await Assert.ThrowsAsync<InvalidOperationException>(() => writes[i])).Message);
            else
                Assert.Equal(i, await writes[i]);
        }

        var kept = await _db.ReadAsync(c => c.QueryAsync<long>("SELECT DISTINCT writer FROM items WHERE writer >= 0 ORDER BY writer"));
        var expected = Enumerable.Range(0, 300).Where(i => i % 11 != 0 && i % 7 != 0).Select(i => (long)i).ToList();
        Assert.Equal(expected, kept);
        Assert.Equal(1 + (2 * expected.Count), await _db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items")));
    }

    [Fact]
    public async Task A_write_answers_only_once_its_rows_are_visible_to_every_reader()
    {
        var seen = await Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
        {
            await _db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"row-{i}" }, t));
            // A separate connection: it sees only what was committed.
            return await _db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items WHERE writer = @i", new { i }));
        }));
        Assert.All(seen, count => Assert.Equal(1, count));
    }

    [Fact]
    public async Task Committed_pages_reach_the_database_file_without_the_writer_checkpointing()
    {
        // The writer's connection never checkpoints (wal_autocheckpoint=0): until a checkpoint runs
        // elsewhere, every page stays in the WAL and the database file does not grow.
        var padding = new string('x', 1000);
        await Task.WhenAll(Enumerable.Range(0, 3000).Select(i => _db.WriteAsync((c, t) =>
            c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"{i}-{padding}" }, t))));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (new FileInfo(_path).Length < 3_000_000 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.True(new FileInfo(_path).Length >= 3_000_000, $"the database file holds {new FileInfo(_path).Length} bytes after 3 MB of commits");
    }

    private static readonly AsyncLocal<string?> Ambient = new();

    [Fact]
    public async Task A_write_runs_with_its_callers_ambient_state_not_the_writer_loops()
    {
        // Code inside a write reads ambient state (the Idempotency-Key scope an enqueue records its
        // request under); the writer loop runs the writes of many callers.
        var seen = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            await Task.Yield();
            Ambient.Value = $"caller-{i}";
            return await _db.WriteAsync((c, t) => Task.FromResult(Ambient.Value));
        }));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"caller-{i}"), seen);
    }

    [Fact]
    public async Task Statements_kept_prepared_rebind_their_parameters_every_time()
    {
        await _db.WriteAsync(async (c, t) =>
        {
            for (var i = 0; i < 50; i++)
                await c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"p-{i}" }, t);
        });
        var answers = await _db.WriteAsync(async (c, t) =>
        {
            var labels = new List<string>();
            for (var i = 0; i < 50; i += 7) // the same text each time, a new value each time
                labels.Add(await c.ExecuteScalarAsync<string>("SELECT label FROM items WHERE writer = @i", new { i }, t) ?? "missing");
            // Lists of different lengths expand to different texts.
            var two = await c.QueryAsync<long>("SELECT writer FROM items WHERE writer IN @ids ORDER BY writer", new { ids = new[] { 3, 4 } }, t);
            var three = await c.QueryAsync<long>("SELECT writer FROM items WHERE writer IN @ids ORDER BY writer", new { ids = new[] { 5, 6, 9 } }, t);
            var missing = await c.QuerySingleOrDefaultAsync<string>("SELECT label FROM items WHERE writer = @i", new { i = 999 }, t);
            return (labels, two.ToList(), three.ToList(), missing);
        });
        Assert.Equal(Enumerable.Range(0, 50).Where(i => i % 7 == 0).Select(i => $"p-{i}"), answers.labels);
        Assert.Equal([3L, 4L], answers.Item2);
        Assert.Equal([5L, 6L, 9L], answers.Item3);
        Assert.Null(answers.missing);
    }
}
