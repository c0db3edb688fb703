using System.Data.Common;
using Dapper;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Billing;

/// <summary>
/// The per-account meter sums (migration 0006) are kept by triggers. A seeded random walk of meter
/// starts, charges, resizes and stops over users' and an organization's clusters and volumes checks,
/// after every step, that the sums equal what the rows say and that the balance read from them is the
/// per-resource sum it replaced, give or take the rounding the two can differ by.
/// </summary>
public abstract class AccountMeterTests(Backend backend) : IDisposable
{
    private const long Start = 1_795_000_000_000; // 2026-11-18, Unix ms
    private static readonly BillingOptions Billing = new();
    private readonly ScratchDatabase _scratch = new(backend);

    public void Dispose() => _scratch.Dispose();

    private static readonly BillingAccount[] Accounts = [new("user", "u-solo"), new("org", "o-lab")];

    [Fact]
    public async Task Meter_sums_follow_every_start_charge_resize_and_stop_and_the_balance_matches_the_per_resource_sum()
    {
        var db = _scratch.Db;
        await db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO orgs (id, name, created_at, balance_micros) VALUES ('o-lab', 'lab', 0, 5000000000)", transaction: t);
            await c.ExecuteAsync(
                """
                INSERT INTO users (id, email, org_id, role, created_at, balance_micros) VALUES
                    ('u-solo', 'solo@example.com', NULL, 'admin', 0, 7000000000),
                    ('u-member', 'member@example.com', 'o-lab', 'member', 0, 0)
                """, transaction: t);
        });

        var random = new Random(7);
        var now = Start;
        var clusters = new List<string>();
        var volumes = new List<string>();
        for (var i = 0; i < 24; i++)
        {
            var (userId, orgId) = i % 2 == 0 ? ("u-solo", (string?)null) : ("u-member", "o-lab");
            var cluster = $"c-{i}";
            var volume = $"v-{i}";
            await db.WriteAsync(async (c, t) =>
            {
                await c.ExecuteAsync(
                    """
                    INSERT INTO clusters (id, user_id, org_id, instance_type, num_nodes, status, price_micros_per_hour, created_at, updated_at)
                    VALUES (@cluster, @userId, @orgId, '8xH100', 8, 'RUNNING', @price, 0, 0)
                    """, new { cluster, userId, orgId, price = 2_490_000L * (1 + (i % 8)) }, t);
                if (i % 3 == 0)
                    await c.ExecuteAsync(
                        "INSERT INTO volumes (id, user_id, org_id, size_gb, status, created_at, updated_at) VALUES (@volume, @userId, @orgId, @size, 'READY', 0, 0)",
                        new { volume, userId, orgId, size = 100 * (1 + (i % 5)) }, t);
            });
            clusters.Add(cluster);
            if (i % 3 == 0)
                volumes.Add(volume);
        }

        var mostRunning = (Clusters: 0, Volumes: 0);
        for (var step = 0; step < 300; step++)
        {
            now += random.Next(1, 900_000);
            var cluster = clusters[random.Next(clusters.Count)];
            var volume = volumes[random.Next(volumes.Count)];
            var action = random.Next(7);
            await db.WriteAsync(async (c, t) =>
            {
                switch (action)
                {
                    case 0: // the meter starts when the nodes are the user's (ClaimHandler)
                        await c.ExecuteAsync(
                            "UPDATE clusters SET billing_started_at = @now, billed_until = @now WHERE id = @cluster AND billing_started_at IS NULL",
                            new { now, cluster }, t);
                        break;
                    case 1: // the sweep
                        await Ledger.ChargeClusterAsync(c, t, cluster, now);
                        break;
                    case 2: // a release (ClusterStore.BeginReleaseAsync)
                        await c.ExecuteAsync(
                            "UPDATE clusters SET billing_ended_at = @now WHERE id = @cluster AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL",
                            new { now, cluster }, t);
                        await Ledger.ChargeClusterAsync(c, t, cluster, now);
                        break;
                    case 3:
                        await c.ExecuteAsync(
                            "UPDATE volumes SET billing_started_at = COALESCE(billing_started_at, @now), billed_until = COALESCE(billed_until, @now) WHERE id = @volume",
                            new { now, volume }, t);
                        break;
                    case 4:
                        await Ledger.ChargeVolumeAsync(c, t, volume, Billing, now);
                        break;
                    case 5: // growth: close the meter at the old size and restart it at the new one (StorageEditHandler)
                        await Ledger.ChargeVolumeAsync(c, t, volume, Billing, now);
                        await c.ExecuteAsync(
                            """
                            UPDATE volumes SET size_gb = size_gb + 50,
                                billing_started_at = CASE WHEN billing_started_at IS NULL OR billing_ended_at IS NOT NULL THEN billing_started_at ELSE @now END,
                                billed_until = CASE WHEN billing_started_at IS NULL OR billing_ended_at IS NOT NULL THEN billed_until ELSE @now END,
                                billed_micros = CASE WHEN billing_started_at IS NULL OR billing_ended_at IS NOT NULL THEN billed_micros ELSE 0 END
                            WHERE id = @volume
                            """, new { now, volume }, t);
                        break;
                    case 6:
                        await c.ExecuteAsync(
                            "UPDATE volumes SET billing_ended_at = @now WHERE id = @volume AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL",
                            new { now, volume }, t);
                        await Ledger.ChargeVolumeAsync(c, t, volume, Billing, now);
                        break;
                }
            });
            var running = await AssertMetersMatchRowsAsync(db, now + random.Next(0, 600_000));
            mostRunning = (Math.Max(mostRunning.Clusters, running.Clusters), Math.Max(mostRunning.Volumes, running.Volumes));
        }

        // The walk reached every kind of state, so the checks above covered them.
        Assert.True(mostRunning.Clusters >= 5 && mostRunning.Volumes >= 2, $"at most {mostRunning} ran at once");
        Assert.True(await db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM clusters WHERE billing_ended_at IS NOT NULL")) > 0);
        Assert.True(await db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM volumes WHERE billing_ended_at IS NOT NULL")) > 0);
        Assert.True(await db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM ledger")) > 20);
    }

    /// <summary>Checks every account at <paramref name="readAt"/>; returns how many clusters and volumes are metering.</summary>
    private static async Task<(int Clusters, int Volumes)> AssertMetersMatchRowsAsync(Database db, long readAt)
    {
        var metering = (Clusters: 0, Volumes: 0);
        foreach (var account in Accounts)
        {
            var owner = account.Kind == "org" ? "org_id = @Id" : "user_id = @Id AND org_id IS NULL";
            var (stored, clusters, volumes, running) = await db.ReadAsync(async c =>
            {
                var balance = await c.ExecuteScalarAsync<long>($"SELECT balance_micros FROM {account.Table} WHERE id = @Id", new { account.Id });
                var clusterRows = (await c.QueryAsync<(long Price, long Since)>(
                    $"SELECT price_micros_per_hour, COALESCE(billed_until, billing_started_at) FROM clusters WHERE {owner} AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL",
                    new { account.Id })).AsList();
                var volumeRows = (await c.QueryAsync<(long Gb, long Since)>(
                    $"SELECT CAST(size_gb AS BIGINT), COALESCE(billed_until, billing_started_at) FROM volumes WHERE {owner} AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL",
                    new { account.Id })).AsList();
                return (balance, clusterRows, volumeRows, clusterRows.Count + volumeRows.Count);
            });

            // The sums (over the account's shards) equal the rows exactly.
            var meter = await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<(long, long, long, long, long, long)>(
                """
                SELECT CAST(COALESCE(SUM(cluster_rate), 0) AS BIGINT), CAST(COALESCE(SUM(cluster_high), 0) AS BIGINT), CAST(COALESCE(SUM(cluster_low), 0) AS BIGINT),
                       CAST(COALESCE(SUM(volume_gb), 0) AS BIGINT), CAST(COALESCE(SUM(volume_high), 0) AS BIGINT), CAST(COALESCE(SUM(volume_low), 0) AS BIGINT)
                FROM account_meters WHERE account_kind = @Kind AND account_id = @Id
                """,
                new { account.Kind, account.Id }));
            Assert.Equal(
                (clusters.Sum(r => r.Price), clusters.Sum(r => r.Price * (r.Since >> 20)), clusters.Sum(r => r.Price * (r.Since & 0xFFFFF)),
                 volumes.Sum(r => r.Gb), volumes.Sum(r => r.Gb * (r.Since >> 20)), volumes.Sum(r => r.Gb * (r.Since & 0xFFFFF))),
                meter);

            // The balance is the stored balance less each resource's accrual, summed before rounding down.
            var perResource = clusters.Sum(r => Ledger.ClusterAccrued(r.Price, r.Since, readAt)) +
                              volumes.Sum(r => Ledger.VolumeAccrued((int)r.Gb, Billing, r.Since, readAt));
            var balance = await db.ReadAsync(c => Ledger.BalanceMicrosAsync(c, null, account, Billing, readAt));
            Assert.InRange(stored - perResource - balance, 0, running);
            metering = (metering.Clusters + clusters.Count, metering.Volumes + volumes.Count);
        }
        return metering;
    }
}

public sealed class AccountMetersOnSqlite() : AccountMeterTests(Backend.Sqlite);

public sealed class AccountMetersOnPostgres() : AccountMeterTests(Backend.Postgres);
