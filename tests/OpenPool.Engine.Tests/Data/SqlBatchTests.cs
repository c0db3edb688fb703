using Dapper;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Data;

/// <summary>
/// A write's held-back statements: on PostgreSQL they travel as one Npgsql batch with parameters
/// bound by <see cref="SqlBatch"/> itself, on SQLite one by one through Dapper. Both must run them
/// in order, bind the same arguments the same way, and roll the whole write back when a guard fails.
/// </summary>
public abstract class SqlBatchTests : IDisposable
{
    private readonly ScratchDatabase _scratch;

    protected SqlBatchTests(Backend backend)
    {
        _scratch = new ScratchDatabase(backend);
        Db.WriteAsync((c, t) => c.ExecuteAsync(
            """
            CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT, amount BIGINT, flag BOOLEAN);
            INSERT INTO users (id, email, role, created_at) VALUES ('u1', 'u1@example.com', 'member', 0);
            INSERT INTO clusters (id, user_id, instance_type, num_nodes, status, price_micros_per_hour, created_at, updated_at)
            VALUES ('c1', 'u1', '1xH100', 2, 'PENDING', 1, 0, 0);
            INSERT INTO instances (id, cluster_id, node_index, status, created_at) VALUES ('i1', 'c1', 0, 'PENDING', 0), ('i2', 'c1', 1, 'PENDING', 0);
            """, transaction: t)).GetAwaiter().GetResult();
    }

    private Database Db => _scratch.Db;

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task Statements_run_in_order_and_a_step_in_between_sees_what_came_before_it()
    {
        string? seenByStep = null;
        await Db.WriteAsync(write =>
        {
            write.Add("INSERT INTO notes (id, body) VALUES (@id, @body)", new { id = "a", body = "first" });
            write.Add("UPDATE notes SET body = body || @more WHERE id = @id", new { id = "a", more = "+second" });
            write.Then(async (c, t) => seenByStep = await c.ExecuteScalarAsync<string>("SELECT body FROM notes WHERE id = 'a'", transaction: t));
            write.Add("UPDATE notes SET body = body || @more WHERE id = @id", new { id = "a", more = "+third" });
        });

        Assert.Equal("first+second", seenByStep);
        Assert.Equal("first+second+third", await Db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT body FROM notes WHERE id = 'a'")));
    }

    [Fact]
    public async Task Arguments_bind_as_Dapper_binds_them_nulls_arrays_and_names_that_prefix_others()
    {
        long? noAmount = null;
        await Db.WriteAsync(write =>
        {
            // @id is a prefix of @idSuffix: each must get its own value. A typed null inside a CASE
            // and COALESCE would make PostgreSQL guess wrong if it went untyped.
            write.Add("INSERT INTO notes (id, body, amount, flag) VALUES (@id || @idSuffix, @body, COALESCE(@amount, 7), @flag)",
                new { id = "b", idSuffix = "-1", body = (string?)null, amount = noAmount, flag = true });
            write.Add("UPDATE notes SET amount = CASE WHEN @amount IS NULL THEN amount + 1 ELSE @amount END WHERE id = 'b-1'", new { amount = noAmount });
            write.Add($"UPDATE notes SET body = 'listed' WHERE {Sql.In(write, "id", "@ids")}", new { ids = new[] { "b-1", "missing" } });
        });

        var row = await Db.ReadAsync(c => c.QuerySingleAsync<(string Body, long Amount, bool Flag)>("SELECT body, amount, flag FROM notes WHERE id = 'b-1'"));
        Assert.Equal(("listed", 8L, true), row);
    }

    [Fact]
    public async Task A_guard_that_changes_no_row_rolls_the_whole_write_back()
    {
        await Assert.ThrowsAsync<GuardFailedException>(() => Db.WriteAsync(write =>
        {
            write.Add("INSERT INTO notes (id, body) VALUES ('c', 'before the guard')");
            write.AddGuard("UPDATE notes SET body = 'never' WHERE id = @id", new { id = "no-such-note" });
            write.Add("INSERT INTO notes (id, body) VALUES ('d', 'after the guard')");
        }));
        Assert.Equal(0, await Db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM notes")));

        await Db.WriteAsync(write =>
        {
            write.Add("INSERT INTO notes (id, body) VALUES ('c', 'before the guard')");
            write.AddGuard("UPDATE notes SET body = 'guarded' WHERE id = @id", new { id = "c" });
        });
        Assert.Equal("guarded", await Db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT body FROM notes WHERE id = 'c'")));
    }

    [Fact]
    public async Task A_status_change_moves_the_instances_only_when_the_cluster_row_moved()
    {
        // Not from one of the allowed states: neither the cluster nor its instances change.
        await Db.WriteAsync(write => ClusterStore.SetStatus(write, "c1", ClusterStatuses.Running, 5, ClusterStatuses.Restarting));
        Assert.Equal(["PENDING", "PENDING", "PENDING"], await StatusesAsync());

        await Db.WriteAsync(write => ClusterStore.StartRunning(write, "c1", 9, ClusterStatuses.Pending, ClusterStatuses.Provisioning));
        Assert.Equal(["RUNNING", "RUNNING", "RUNNING"], await StatusesAsync());
        var meter = await Db.ReadAsync(c => c.QuerySingleAsync<(long Started, long Until)>(
            "SELECT billing_started_at, billed_until FROM clusters WHERE id = 'c1'"));
        Assert.Equal((9L, 9L), meter);
    }

    private async Task<string[]> StatusesAsync() =>
        (await Db.ReadAsync(c => c.QueryAsync<string>(
            "SELECT status FROM clusters WHERE id = 'c1' UNION ALL SELECT status FROM (SELECT status FROM instances WHERE cluster_id = 'c1' ORDER BY node_index) AS nodes"))).ToArray();
}

public sealed class SqlBatchOnSqlite() : SqlBatchTests(Backend.Sqlite);

public sealed class SqlBatchOnPostgres() : SqlBatchTests(Backend.Postgres);
