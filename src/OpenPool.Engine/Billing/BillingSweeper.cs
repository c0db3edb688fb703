using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Billing;

/// <summary>
/// Writes running usage to the ledger every <see cref="BillingOptions.SweepSeconds"/>, and applies
/// the exhaustion policy to accounts whose balance is used up. Balances shown to users are current
/// between sweeps anyway (<see cref="Ledger.BalanceMicrosAsync"/>); the sweep makes them durable.
/// </summary>
internal sealed class BillingSweeper(
    Database db, ClusterStore clusters, RequestSignals signals, IOptions<BillingOptions> options, TimeProvider clock, ILogger<BillingSweeper> log)
    : BackgroundService
{
    public async Task SweepOnceAsync(CancellationToken ct = default)
    {
        var now = clock.Now();
        var exhausted = await db.WriteAsync(async (c, t) =>
        {
            var clusterIds = await c.QueryAsync<string>("SELECT id FROM clusters WHERE billing_started_at IS NOT NULL AND billing_ended_at IS NULL", transaction: t);
            foreach (var id in clusterIds)
                await Ledger.ChargeClusterAsync(c, t, id, now);
            var volumeIds = await c.QueryAsync<string>("SELECT id FROM volumes WHERE billing_started_at IS NOT NULL AND billing_ended_at IS NULL", transaction: t);
            foreach (var id in volumeIds)
                await Ledger.ChargeVolumeAsync(c, t, id, options.Value, now);
            if (options.Value.OnExhausted != ExhaustionPolicy.ReleaseClusters)
                return [];
            var broke = await c.QueryAsync<string>(
                """
                SELECT cl.id FROM clusters cl
                LEFT JOIN orgs o ON o.id = cl.org_id LEFT JOIN users u ON u.id = cl.user_id
                WHERE cl.status = 'RUNNING' AND cl.billing_ended_at IS NULL
                  AND ((cl.org_id IS NOT NULL AND o.balance_micros <= 0) OR (cl.org_id IS NULL AND u.balance_micros <= 0))
                """, transaction: t);
            return broke.AsList();
        }, ct);

        foreach (var clusterId in exhausted)
        {
            log.LogWarning("Releasing cluster {ClusterId}: its account's balance is used up (Billing:OnExhausted=ReleaseClusters)", clusterId);
            await clusters.ReleaseForUnpaidBalanceAsync(clusterId, ct);
        }
        if (exhausted.Count > 0)
            signals.PulseWork();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SweepSeconds), clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await SweepOnceAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    log.LogWarning(ex, "Billing sweep failed; usage stays pending until the next one");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

internal static class BillingServices
{
    public static void AddBilling(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<BillingOptions>(configuration.GetSection("Billing"));
        services.AddSingleton<BillingSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<BillingSweeper>());
    }
}
