using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

/// <summary>
/// Both databases commit concurrent writes in groups (SQLite's one writer, PostgreSQL's committer
/// loops). Whatever they batch, each write must behave as if it had a transaction of its own. The
/// subclasses add what only their database does.
/// </summary>
public abstract class GroupCommitTests : IDisposable
{
    private readonly ScratchDatabase _scratch;

    protected GroupCommitTests(Backend backend)
    {
        _scratch = new ScratchDatabase(backend);
        var id = backend == Backend.Postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY";
        Db.WriteAsync((c, t) => c.ExecuteAsync(
            $"CREATE TABLE items (id {id}, writer BIGINT NOT NULL, label TEXT NOT NULL UNIQUE)", transaction: t)).GetAwaiter().GetResult();
    }

    private protected Database Db => _scratch.Db;

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task A_write_that_fails_in_a_batch_is_undone_alone_and_the_others_commit()
    {
        // 300 writers at once, so the writes are batched; every seventh inserts two rows and then
        // throws, every eleventh breaks the unique label (a statement error half-way through, which
        // on PostgreSQL aborts the transaction until it is rolled back to a savepoint).
        await Db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (-1, 'taken')", transaction: t));
        var writes = Enumerable.Range(0, 300).Select(i => Db.WriteAsync(async (c, t) =>
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
                Assert.True(Database.IsUniqueViolation(await Assert.ThrowsAnyAsync<DbException>(() => writes[i])));
            else if (i % 7 == 0)
                Assert.Equal($"write {i} gives up", (await Assert.ThrowsAsync<InvalidOperationException>(() => writes[i])).Message);
            else
                Assert.Equal(i, await writes[i]);
        }

        var kept = await Db.ReadAsync(c => c.QueryAsync<long>("SELECT DISTINCT writer FROM items WHERE writer >= 0 ORDER BY writer"));
        var expected = Enumerable.Range(0, 300).Where(i => i % 11 != 0 && i % 7 != 0).Select(i => (long)i).ToList();
        Assert.Equal(expected, kept);
        Assert.Equal(1 + (2 * expected.Count), await Db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items")));
    }

    [Fact]
    public async Task A_write_answers_only_once_its_rows_are_visible_to_every_reader()
    {
        var seen = await Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
        {
            await Db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"row-{i}" }, t));
            // A separate connection: it sees only what was committed.
            return await Db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items WHERE writer = @i", new { i }));
        }));
        Assert.All(seen, count => Assert.Equal(1, count));
    }

    private static readonly AsyncLocal<string?> Ambient = new();

    [Fact]
    public async Task A_write_runs_with_its_callers_ambient_state_not_the_writer_loops()
    {
        // Code inside a write reads ambient state (the Idempotency-Key scope an enqueue records its
        // request under); a committer loop runs the writes of many callers.
        var seen = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            await Task.Yield();
            Ambient.Value = $"caller-{i}";
            return await Db.WriteAsync((c, t) => Task.FromResult(Ambient.Value));
        }));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"caller-{i}"), seen);
    }
}
