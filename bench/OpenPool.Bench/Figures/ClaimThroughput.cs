using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.Data.Sqlite;
using Npgsql;
using OpenPool.Bench.Harness;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Bench.Figures;

/// <summary>
/// Cluster claims per second: concurrent <c>POST /cluster/create</c> over HTTP with instant
/// provisioning, from the first submit to the last request's <c>finished_at</c> (all COMPLETED),
/// beside the same run's raw database figure.
/// </summary>
internal static class ClaimThroughput
{
    private const int Concurrency = 64;
    private const int WarmUpClaims = 2000;
    private static readonly string[] Settings = ["--Simulated:ProvisionSeconds=0", "--Billing:InitialBalanceUsd=100000000"];

    public static async Task SqliteAsync(Report report, bool quick)
    {
        var claims = quick ? 4000 : 20000;
        await using var engine = await BenchEngine.StartAsync(null, Settings);
        var (perSecond, detail) = await MeasureAsync(engine, claims);
        var raw = RawSqliteCommitsPerSecond(quick ? 5000 : 20000);
        report.Add("sqlite_ops_per_s", perSecond, detail + $"; raw SQLite commits in the same run: {raw:0}/s (ratio {perSecond / raw:0.00})");
        report.Add("sqlite_raw_commits_per_s", raw, "one INSERT per transaction into a requests-shaped table with its indexes, WAL, synchronous=NORMAL, one connection");
    }

    public static async Task PostgresAsync(Report report, bool quick, PostgresServer server)
    {
        var claims = quick ? 4000 : 20000;
        await using var engine = await BenchEngine.StartAsync(server.CreateDatabase(), Settings);
        var (perSecond, detail) = await MeasureAsync(engine, claims);
        var raw = await PgbenchClaimsPerSecondAsync(server, claims);
        report.Add("postgres_ops_per_s", perSecond, detail + $"; pgbench claim-and-complete in the same run: {raw:0}/s (ratio {perSecond / raw:0.00}); PostgreSQL with fsync and synchronous_commit on");
        report.Add("postgres_raw_claims_per_s", raw, $"pgbench, {Concurrency} clients, one transaction per claim: SKIP LOCKED claim of the next due row, then a fenced completion");
    }

    private static async Task<(double PerSecond, string Detail)> MeasureAsync(BenchEngine engine, int claims)
    {
        using var client = engine.Client(connections: Concurrency);
        async Task CreateAsync(int _)
        {
            using var content = new StringContent("{\"instance_type\":\"1xH100\"}", Encoding.UTF8, "application/json");
            using var response = await client.PostAsync("/cluster/create", content);
            if (response.StatusCode != HttpStatusCode.Accepted)
                throw new InvalidOperationException($"create answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        // Warm-up (JIT, connection pools, SQLite page cache), not counted. It must outlast tiered
        // compilation: after 500 claims the hot paths still ran instrumented (PGO) code, and the
        // quick run measured 953/s where the full run, 20,000 claims, measured 1,499/s.
        await Load.RunAsync(WarmUpClaims, Concurrency, CreateAsync);
        if (!await engine.AllRequestsFinishedAsync(TimeSpan.FromMinutes(2)))
            throw new TimeoutException("warm-up claims did not finish");
        var before = await engine.ScalarAsync("SELECT COALESCE(MAX(seq), 0) FROM requests");

        var startedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var cpu = CpuUse.Start(engine.Pid);
        var submitting = await Load.RunAsync(claims, Concurrency, CreateAsync);
        if (!await engine.AllRequestsFinishedAsync(TimeSpan.FromMinutes(10)))
            throw new TimeoutException("claims did not finish within 10 minutes");
        var cpuPerClaim = cpu.PerItem(claims, "claim");
        var completed = await engine.ScalarAsync($"SELECT COUNT(*) FROM requests WHERE seq > {before} AND status = 'COMPLETED'");
        if (completed != claims)
            throw new InvalidOperationException($"{claims} claims submitted, {completed} COMPLETED");
        var lastFinished = await engine.ScalarAsync($"SELECT MAX(finished_at) FROM requests WHERE seq > {before}");
        var seconds = (lastFinished - startedAt) / 1000.0;
        var perSecond = claims / seconds;
        return (perSecond, $"{claims} claims, {Concurrency} concurrent clients, all COMPLETED {seconds:0.00} s after the first submit (submitting alone took {submitting.TotalSeconds:0.00} s); {cpuPerClaim}");
    }

    /// <summary>This machine's raw SQLite commit rate with the engine's settings; the object-storage figures print it beside theirs.</summary>
    internal static double RawSqliteCommitsPerSecond(int commits)
    {
        using var dir = new TempDir();
        using var connection = new SqliteConnection($"Data Source={Path.Combine(dir.Path, "raw.db")};Pooling=false");
        connection.Open();
        Execute(connection, """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
            CREATE TABLE requests (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, status TEXT NOT NULL,
                user_id TEXT NOT NULL, object_id TEXT, created_at INTEGER NOT NULL, finished_at INTEGER, next_run_at INTEGER NOT NULL, payload TEXT NOT NULL);
            CREATE INDEX ix_due ON requests(next_run_at) WHERE finished_at IS NULL;
            CREATE INDEX ix_object ON requests(object_id, seq);
            CREATE INDEX ix_user ON requests(user_id, seq);
            """);
        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO requests (id, type, status, user_id, object_id, created_at, next_run_at, payload) VALUES ($id, 'CLUSTER_CREATE', 'PENDING', 'u-1', $object, 0, 0, '{}')";
        var id = insert.Parameters.Add("$id", SqliteType.Text);
        var objectId = insert.Parameters.Add("$object", SqliteType.Text);
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < commits; i++)
        {
            using var transaction = connection.BeginTransaction();
            insert.Transaction = transaction;
            id.Value = "req_" + i;
            objectId.Value = "c-" + i;
            insert.ExecuteNonQuery();
            transaction.Commit();
        }
        return commits / stopwatch.Elapsed.TotalSeconds;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static async Task<double> PgbenchClaimsPerSecondAsync(PostgresServer server, int claims)
    {
        var database = server.CreateDatabase();
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await using var setup = new NpgsqlCommand($"""
                CREATE TABLE q (seq BIGSERIAL PRIMARY KEY, status TEXT NOT NULL, next_run_at BIGINT NOT NULL, lease_owner TEXT,
                                lease_token BIGINT NOT NULL DEFAULT 0, finished_at BIGINT);
                CREATE INDEX q_due ON q(next_run_at) WHERE finished_at IS NULL;
                INSERT INTO q (status, next_run_at) SELECT 'PENDING', 0 FROM generate_series(1, {claims * 2});
                """, connection);
            await setup.ExecuteNonQueryAsync();
            await using var vacuum = new NpgsqlCommand("VACUUM ANALYZE q", connection);
            await vacuum.ExecuteNonQueryAsync();
        }
        using var dir = new TempDir();
        var script = Path.Combine(dir.Path, "claim.sql");
        await File.WriteAllTextAsync(script, """
            BEGIN;
            UPDATE q SET status = 'PROCESSING', lease_owner = 'bench', lease_token = lease_token + 1
             WHERE seq IN (SELECT seq FROM q WHERE finished_at IS NULL AND next_run_at <= 1 ORDER BY next_run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING seq, lease_token \gset
            UPDATE q SET status = 'COMPLETED', finished_at = 1, lease_owner = NULL WHERE seq = :seq AND lease_token = :lease_token;
            COMMIT;

            """);
        var builder = new NpgsqlConnectionStringBuilder(database);
        var pgbench = File.Exists(Path.Combine(server.BinDirectory, "pgbench")) ? Path.Combine(server.BinDirectory, "pgbench") : "pgbench";
        var start = new ProcessStartInfo(pgbench)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", builder.Port.ToString(), "-U", "postgres", "-n", "-c", Concurrency.ToString(), "-j", "2",
                     "-t", (claims / Concurrency).ToString(), "-f", script, builder.Database! })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var tps = output.Split('\n').FirstOrDefault(l => l.StartsWith("tps = ", StringComparison.Ordinal))
                  ?? throw new InvalidOperationException("pgbench printed no tps:\n" + output + errors);
        return double.Parse(tps["tps = ".Length..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }
}
