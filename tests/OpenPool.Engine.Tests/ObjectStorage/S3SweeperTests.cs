using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpenPool.Engine.Data;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.ObjectStorage.Blobs;
using OpenPool.Engine.ObjectStorage.S3;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>The sweep that tidies after crashes and abandoned uploads, on a real database and blob directory.</summary>
public sealed class S3SweeperTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Orphans_temporaries_and_stale_uploads_go_and_referenced_blobs_stay(Backend backend)
    {
        using var scratch = new ScratchDatabase(backend);
        using var dir = new TempDir();
        var blobs = new FileSystemBlobStore(dir.Path);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = Options.Create(new ObjectStorageOptions { AbortIncompleteUploadsAfterDays = 7 });
        var services = new ServiceCollection()
            .AddSingleton(scratch.Db).AddSingleton<IBlobStore>(blobs).AddSingleton<ObjectStore>().AddSingleton<MultipartStore>()
            .BuildServiceProvider();

        async Task<string> BlobAsync(string text)
        {
            await using var writer = blobs.Create();
            await writer.Stream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text));
            await writer.CommitAsync(default);
            return writer.BlobId;
        }
        var kept = await BlobAsync("an object's bytes");
        var orphan = await BlobAsync("written, never committed to a row");
        var part = await BlobAsync("a part of an abandoned upload");
        var freshPart = await BlobAsync("a part of a recent upload");
        var abandoned = blobs.Create(); // a temporary file a crash left behind
        await abandoned.Stream.WriteAsync(new byte[10]);
        await abandoned.Stream.FlushAsync();

        var old = clock.GetUtcNow().AddDays(-8).ToUnixTimeMilliseconds();
        var recent = clock.GetUtcNow().AddDays(-1).ToUnixTimeMilliseconds();
        await scratch.Db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO s3_buckets (name, scope_id, region, created_at) VALUES ('b', 'o-1', 'us-east-1', 0)", transaction: t);
            await c.ExecuteAsync("INSERT INTO s3_objects (bucket, key, size, etag, blob_id, last_modified) VALUES ('b', 'k', 17, 'e', @kept, 0)", new { kept }, t);
            await c.ExecuteAsync("INSERT INTO s3_uploads (upload_id, bucket, key, initiated_at) VALUES ('u-old', 'b', 'k', @old), ('u-new', 'b', 'k2', @recent)", new { old, recent }, t);
            await c.ExecuteAsync("INSERT INTO s3_parts (upload_id, part_number, size, etag, blob_id, last_modified) VALUES ('u-old', 1, 29, 'e', @part, 0), ('u-new', 1, 25, 'e', @freshPart, 0)",
                new { part, freshPart }, t);
        });

        // The upload older than 7 days is aborted (its part's blob with it); files younger than an
        // hour are left alone, whatever they are: the orphan and the temporary file stay for now.
        var sweeper = new S3Sweeper(blobs, scratch.Db, options, clock, services, NullLogger<S3Sweeper>.Instance);
        await sweeper.SweepAsync(default);
        var first = Directory.EnumerateFiles(Path.Combine(dir.Path, "blobs"), "*", SearchOption.AllDirectories).Select(f => Path.GetFileName(f)!).Order().ToList();
        Assert.Equal(new[] { kept, orphan, freshPart }.Order().ToList(), first);
        Assert.Single(Directory.EnumerateFiles(Path.Combine(dir.Path, "tmp")));

        clock.Advance(TimeSpan.FromHours(2));
        await sweeper.SweepAsync(default);
        var left = Directory.EnumerateFiles(Path.Combine(dir.Path, "blobs"), "*", SearchOption.AllDirectories).Select(f => Path.GetFileName(f)!).Order().ToList();
        Assert.Equal(new[] { kept, freshPart }.Order().ToList(), left);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(dir.Path, "tmp")));
        Assert.Equal(["u-new"], await scratch.Db.ReadAsync(c => c.QueryAsync<string>("SELECT upload_id FROM s3_uploads")));
        Assert.Equal(["u-new"], await scratch.Db.ReadAsync(c => c.QueryAsync<string>("SELECT upload_id FROM s3_parts")));
        await abandoned.DisposeAsync();
    }
}
