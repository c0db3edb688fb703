using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Requests;

/// <summary>Deletes finished requests once they are older than the retention period (30 days by default), and idempotency records after 24 h.</summary>
internal sealed class RetentionSweeper(RequestStore store, Idempotency idempotency, IOptions<RequestOptions> options, TimeProvider clock, ILogger<RetentionSweeper> log)
    : BackgroundService
{
    /// <summary>Removes expired requests and idempotency records; returns how many requests went.</summary>
    public async Task<int> SweepOnceAsync(CancellationToken ct = default)
    {
        var now = clock.Now();
        await idempotency.SweepAsync(now - (long)Idempotency.Lifetime.TotalMilliseconds, ct);
        return await store.SweepAsync(now - (long)TimeSpan.FromDays(options.Value.RetentionDays).TotalMilliseconds, ct: ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(options.Value.SweepIntervalMinutes), clock);
        do
        {
            try
            {
                var deleted = await SweepOnceAsync(stoppingToken);
                if (deleted > 0)
                    log.LogInformation("Retention sweep removed {Count} finished requests", deleted);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                log.LogWarning(ex, "Retention sweep failed; will try again next period");
            }
        }
        while (await WaitNextAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitNextAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
