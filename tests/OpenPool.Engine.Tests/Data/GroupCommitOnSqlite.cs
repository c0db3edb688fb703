using Dapper;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

/// <summary>
/// SQLite's single writer, beyond what every group commit must do: it checkpoints the WAL elsewhere
/// and keeps its statements prepared.
/// </summary>
public sealed class GroupCommitOnSqlite() : GroupCommitTests(Backend.Sqlite)
{
    [Fact]
    public async Task Committed_pages_reach_the_database_file_without_the_writer_checkpointing()
    {
        // The writer's connection never checkpoints (wal_autocheckpoint=0): until a checkpoint runs
        // elsewhere, every page stays in the WAL and the database file does not grow.
        var path = Db.SqlitePath!;
        var padding = new string('x', 1000);
        await Task.WhenAll(Enumerable.Range(0, 3000).Select(i => Db.WriteAsync((c, t) =>
            c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"{i}-{padding}" }, t))));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (new FileInfo(path).Length < 3_000_000 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.True(new FileInfo(path).Length >= 3_000_000, $"the database file holds {new FileInfo(path).Length} bytes after 3 MB of commits");
    }

    [Fact]
    public async Task Statements_kept_prepared_rebind_their_parameters_every_time()
    {
        await Db.WriteAsync(async (c, t) =>
        {
            for (var i = 0; i < 50; i++)
                await c.ExecuteAsync("INSERT INTO items (writer, label) VALUES (@i, @label)", new { i, label = $"p-{i}" }, t);
        });
        var answers = await Db.WriteAsync(async (c, t) =>
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
