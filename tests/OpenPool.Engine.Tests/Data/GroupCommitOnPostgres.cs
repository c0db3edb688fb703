using Dapper;
using Npgsql;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

/// <summary>
/// PostgreSQL writes are committed in batches by a few committer loops (group commit). Whatever they
/// batch, each write must behave as if it had a transaction of its own, and two batches that lock
/// each other's rows must not cost a caller its write.
/// </summary>
public sealed class GroupCommitOnPostgres : IDisposable
{
    private readonly Database _db;

    public GroupCommitOnPostgres()
    {
        _db = Database.Postgres(PostgresServer.Instance.CreateDatabase());
        Migrator.MigrateAsync(_db, TimeProvider.System).GetAwaiter().GetResult();
        _db.WriteAsync((c, t) => c.ExecuteAsync(
            """
            CREATE TABLE items (id BIGSERIAL PRIMARY KEY, writer INTEGER NOT NULL, label TEXT NOT NULL UNIQUE);
            CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO counters VALUES ('x', 0), ('y', 0);
            """, transaction: t)).GetAwaiter().GetResult();
    }

    public void Dispose() => _db.Dispose();

    [Fact]
    public async Task A_write_that_fails_in_a_batch_is_undone_alone_and_the_others_commit()
    {
        // 300 writers at once, so the committers batch them; every seventh inserts two rows and then
        // throws, every eleventh breaks the unique label (a statement error, which aborts a
        // PostgreSQL transaction until it is rolled back to a savepoint).
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
                Assert.True(Database.IsUniqueViolation(await Assert.ThrowsAnyAsync<PostgresException>(() => writes[i])));
            else if (i % 7 == 0)
                Assert.Equal($"write {i} gives up", (await Assert.ThrowsAsync<InvalidOperationException>(() => writes[i])).Message);
            else
                Assert.Equal(i, await writes[i]);
        }

        var kept = await _db.ReadAsync(c => c.QueryAsync<int>("SELECT DISTINCT writer FROM items WHERE writer >= 0 ORDER BY writer"));
        var expected = Enumerable.Range(0, 300).Where(i => i % 11 != 0 && i % 7 != 0).ToList();
        Assert.Equal(expected, kept);
        Assert.Equal(1 + (2 * expected.Count), await _db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items")));
    }

    [Fact]
    public async Task A_write_answers_only_once_its_rows_are_visible_to_every_reader()
    {
        var seen = await Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
        {
            await _db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"row-{i}" }, t));
            // A pooled connection of its own: it sees only what was committed.
            return await _db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items WHERE writer = @i", new { i }));
        }));
        Assert.All(seen, count => Assert.Equal(1, count));
    }

    [Fact]
    public async Task Two_writes_that_lock_each_others_rows_both_land_exactly_once()
    {
        // The first write locks x and waits until the second has locked y; each then wants the
        // other's row. They run in two batches at once, so PostgreSQL finds the cycle and fails one
        // statement. That write must be rolled back and run again after the other batch commits,
        // not fail its caller, and neither increment may land twice.
        var xLocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var yLocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runs = 0;
        Task<int> Crossing(string first, string second, TaskCompletionSource mine, TaskCompletionSource theirs) =>
            _db.WriteAsync(async (c, t) =>
            {
                Interlocked.Increment(ref runs);
                await c.ExecuteAsync("UPDATE counters SET value = value + 1 WHERE name = @first", new { first }, t);
                mine.TrySetResult();
                await theirs.Task.WaitAsync(TimeSpan.FromSeconds(30));
                return await c.ExecuteAsync("UPDATE counters SET value = value + 10 WHERE name = @second", new { second }, t);
            });

        var one = Crossing("x", "y", xLocked, yLocked);
        await xLocked.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the second must land in another batch
        var two = Crossing("y", "x", yLocked, xLocked);

        var updated = await Task.WhenAll(one, two).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(new[] { 1, 1 }, updated);
        var values = await _db.ReadAsync(c => c.QueryAsync<(string, int)>("SELECT name, value FROM counters ORDER BY name"));
        Assert.Equal(new[] { ("x", 11), ("y", 11) }, values);
        Assert.Equal(3, runs); // one of them ran twice: the retried run
    }

    [Fact]
    public async Task A_write_sees_its_callers_ambient_state()
    {
        var ambient = new AsyncLocal<string>();
        var seen = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(() =>
        {
            ambient.Value = $"caller-{i}";
            return _db.WriteAsync((_, _) => Task.FromResult(ambient.Value));
        })));
        Assert.Equal(Enumerable.Range(0, 64).Select(i => $"caller-{i}"), seen);
    }
}
