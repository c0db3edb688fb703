using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Requests;

/// <summary>Deletes finished requests once they are older than the retention period (30 days by default).</summary>
internal sealed class RetentionSweeper(RequestStore store, IOptions<RequestOptions> options, TimeProvider clock, ILogger<RetentionSweeper> log)
    : BackgroundService
{
    public Task<int> SweepOnceAsync(CancellationToken ct = default)
    {
        var cutoff = clock.Now() - (long)TimeSpan.FromDays(options.Value.RetentionDays).TotalMilliseconds;
        return store.SweepAsync(cutoff, ct: ct);
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
