using Dapper;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

/// <summary>
/// PostgreSQL's committer loops, beyond what every group commit must do: two batches that lock each
/// other's rows must not cost a caller its write.
/// </summary>
public sealed class GroupCommitOnPostgres : GroupCommitTests
{
    public GroupCommitOnPostgres()
        : base(Backend.Postgres)
    {
        Db.WriteAsync((c, t) => c.ExecuteAsync(
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL); INSERT INTO counters VALUES ('x', 0), ('y', 0);",
            transaction: t)).GetAwaiter().GetResult();
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
            Db.WriteAsync(async (c, t) =>
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
        var values = await Db.ReadAsync(c => c.QueryAsync<(string, int)>("SELECT name, value FROM counters ORDER BY name"));
        Assert.Equal(new[] { ("x", 11), ("y", 11) }, values);
        Assert.Equal(3, runs); // one of them ran twice: the retried run
    }
}
