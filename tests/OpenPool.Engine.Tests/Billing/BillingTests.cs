using Dapper;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Billing;

/// <summary>Exact charges for exact durations, on a fake clock.</summary>
public sealed class BillingTests
{
    private static Task<long> LedgerSumAsync(WorkerHarness h, string resourceId) =>
        h.CountAsync("SELECT COALESCE(SUM(amount_micros), 0) FROM ledger WHERE resource_id = @resourceId", new { resourceId });

    private static Task<long> BalanceAsync(WorkerHarness h) =>
        h.Db.ReadAsync(c => Ledger.BalanceMicrosAsync(c, null, BillingAccount.Of(h.Owner.UserId, h.Owner.OrgId), h.Billing, h.Clock.Now()));

    [Fact]
    public async Task Ninety_minutes_of_a_1xH100_cost_exactly_one_and_a_half_hours_however_often_it_is_metered()
    {
        using var h = await WorkerHarness.CreateAsync(balanceUsd: 100);
        var sweeper = new BillingSweeper(h.Db, h.Clusters, h.Signals, Microsoft.Extensions.Options.Options.Create(h.Billing), h.Clock,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<BillingSweeper>.Instance);
        var (clusterId, _) = await h.CreateClusterAsync();
        await h.NewWorker().RunOnceAsync();
        Assert.Equal("RUNNING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
        var start = await StartOfAsync(h);

        // Metered at odd moments: 7 s, then every 13 minutes and a bit, and read in between.
        h.Clock.Advance(TimeSpan.FromSeconds(7));
        await sweeper.SweepOnceAsync();
        for (var i = 0; i < 6; i++)
        {
            h.Clock.Advance(TimeSpan.FromMinutes(13) + TimeSpan.FromMilliseconds(331));
            await sweeper.SweepOnceAsync();
            Assert.Equal(100_000_000 - Ledger.ClusterAccrued(2_490_000, 0, (long)(h.Clock.GetUtcNow() - start).TotalMilliseconds), await BalanceAsync(h));
        }
        var elapsed = TimeSpan.FromMinutes(90) - (h.Clock.GetUtcNow() - start);
        h.Clock.Advance(elapsed);
        await h.Clusters.DestroyAsync(h.Owner, clusterId, CancellationToken.None);

        Assert.Equal(-3_735_000, await LedgerSumAsync(h, clusterId)); // $2.49/h × 1.5 h = $3.735
        Assert.Equal(100_000_000 - 3_735_000, await BalanceAsync(h));

        h.Clock.Advance(TimeSpan.FromHours(5));
        await sweeper.SweepOnceAsync();
        Assert.Equal(-3_735_000, await LedgerSumAsync(h, clusterId)); // nothing accrues after destroy
    }

    [Fact]
    public async Task A_volume_costs_its_size_times_the_monthly_price_pro_rata_and_growth_is_billed_from_then_on()
    {
        using var h = await WorkerHarness.CreateAsync(balanceUsd: 100);
        var (volume, _) = await h.Volumes.CreateAsync(h.Owner, 100, null, false, CancellationToken.None);
        await h.NewWorker().RunOnceAsync();
        Assert.Equal("READY", (await h.Volumes.GetAsync(volume.Id, CancellationToken.None))!.Status);

        // 100 GB × $0.10/GB-month for 73 h of a 730 h month = $1.00 exactly.
        h.Clock.Advance(TimeSpan.FromHours(73));
        var grow = await h.Volumes.EditAsync(h.Owner, volume.Id, new OpenPool.Engine.Storage.VolumeEdit(null, null, 200), CancellationToken.None);
        await h.NewWorker().RunOnceAsync();
        Assert.Equal("COMPLETED", (await h.RequestAsync(grow.Id)).Status);
        Assert.Equal(-1_000_000, await LedgerSumAsync(h, volume.Id));

        // Then 200 GB for 36.5 h = $1.00 more.
        h.Clock.Advance(TimeSpan.FromHours(36.5));
        await h.Volumes.DestroyAsync(h.Owner, volume.Id, CancellationToken.None);
        Assert.Equal(-2_000_000, await LedgerSumAsync(h, volume.Id));
        Assert.Equal(98_000_000, await BalanceAsync(h));
    }

    [Fact]
    public async Task The_release_policy_releases_clusters_of_an_exhausted_account()
    {
        var billing = new BillingOptions { OnExhausted = ExhaustionPolicy.ReleaseClusters };
        using var h = await WorkerHarness.CreateAsync(billing: billing, balanceUsd: 3);
        var sweeper = new BillingSweeper(h.Db, h.Clusters, h.Signals, Microsoft.Extensions.Options.Options.Create(h.Billing), h.Clock,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<BillingSweeper>.Instance);
        var (clusterId, _) = await h.CreateClusterAsync();
        await h.NewWorker().RunOnceAsync();

        h.Clock.Advance(TimeSpan.FromHours(1));
        await sweeper.SweepOnceAsync();
        Assert.Equal("RUNNING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status); // $0.51 left

        h.Clock.Advance(TimeSpan.FromMinutes(15));
        await sweeper.SweepOnceAsync();
        Assert.Equal("DESTROYING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
        await h.NewWorker().RunOnceAsync();
        Assert.Equal("DESTROYED", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
        Assert.Equal(-3_112_500, await LedgerSumAsync(h, clusterId)); // 1.25 h × $2.49
    }

    private static async Task<DateTimeOffset> StartOfAsync(WorkerHarness h) =>
        DateTimeOffset.FromUnixTimeMilliseconds(await h.Db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT billing_started_at FROM clusters")));
}
