using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.ObjectStorage.Blobs;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// Tidies what crashes and abandoned clients leave: temporary files of uploads cut short, blobs no
/// row points to (written but never committed, or replaced but not yet deleted), and multipart
/// uploads older than <see cref="ObjectStorageOptions.AbortIncompleteUploadsAfterDays"/>. Runs at
/// start and then hourly. Only files untouched for an hour go, so an upload in progress on this or
/// another replica (which keeps writing, so keeps its file's time fresh) is never taken.
/// </summary>
internal sealed class S3Sweeper(IBlobStore blobs, Database db, IOptions<ObjectStorageOptions> options, TimeProvider clock, IServiceProvider services, ILogger<S3Sweeper> log)
    : BackgroundService
{
    private static readonly TimeSpan Grace = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await SweepAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log.LogWarning(ex, "Object storage sweep failed; it runs again in an hour");
            }
            await Task.Delay(TimeSpan.FromHours(1), clock, stoppingToken);
        }
    }

    public async Task SweepAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        blobs.RemoveAbandonedTemporaries(now - Grace);
        await AbortStaleUploadsAsync(now, ct);
        foreach (var blob in blobs.ListCommitted(now - Grace))
        {
            var referenced = await db.ReadAsync(c => c.ExecuteScalarAsync<long>(
                "SELECT (SELECT COUNT(*) FROM s3_objects WHERE blob_id = @blob) + (SELECT COUNT(*) FROM s3_parts WHERE blob_id = @blob)", new { blob }), ct);
            if (referenced == 0)
                blobs.Delete(blob);
        }
    }

    private async Task AbortStaleUploadsAsync(DateTimeOffset now, CancellationToken ct)
    {
        var cutoff = (now - TimeSpan.FromDays(options.Value.AbortIncompleteUploadsAfterDays)).ToUnixTimeMilliseconds();
        var stale = await db.ReadAsync(c => c.QueryAsync<string>("SELECT upload_id FROM s3_uploads WHERE initiated_at < @cutoff", new { cutoff }), ct);
        var multipart = services.GetRequiredService<MultipartStore>();
        foreach (var uploadId in stale)
            await multipart.AbortAsync(uploadId, ct);
    }
}
