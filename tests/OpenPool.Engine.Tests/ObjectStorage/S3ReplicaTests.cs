using System.Net;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// Two engine processes on one PostgreSQL database and one shared <c>ObjectStorage:Root</c>, as an
/// operator scales out: whatever one replica's S3 endpoint writes, the other's serves.
/// </summary>
public sealed class S3ReplicaTests
{
    [Fact]
    public async Task Objects_listings_and_multipart_uploads_are_shared_by_replicas_on_postgres()
    {
        var database = PostgresServer.Instance.CreateDatabase();
        using var shared = new TempDir();
        var root = Path.Combine(shared.Path, "objects");
        await using var a = await S3Engine.StartAsync("--database", database, "--ObjectStorage:Root", root);
        var tenant = await a.TenantAsync("lab-a");
        await using var b = await S3Engine.StartAsync("--database", database, "--ObjectStorage:Root", root,
            "--ObjectStorage:CredentialKeyFile", Path.Combine(a.DataDir, "object-storage.key"));
        using var onA = a.Client(tenant);
        using var onB = b.Client(tenant);

        await onA.PutBucketAsync("shared");
        Assert.Equal(["shared"], (await onB.ListBucketsAsync()).Buckets.Select(x => x.BucketName));
        var owned = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => onB.PutBucketAsync("shared"));
        Assert.Equal("BucketAlreadyOwnedByYou", owned.ErrorCode);

        for (var i = 0; i < 5; i++)
            await (i % 2 == 0 ? onA : onB).PutObjectAsync(new PutObjectRequest { BucketName = "shared", Key = $"dir/{i}.txt", ContentBody = $"object {i}" });
        foreach (var client in new[] { onA, onB })
        {
            var listing = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "shared", Prefix = "dir/", MaxKeys = 2 });
            Assert.Equal(["dir/0.txt", "dir/1.txt"], listing.S3Objects.Select(o => o.Key));
            Assert.True(listing.IsTruncated);
            // A continuation token from one replica is good on the other.
            var rest = await (client == onA ? onB : onA).ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = "shared", Prefix = "dir/", ContinuationToken = listing.NextContinuationToken,
            });
            Assert.Equal(["dir/2.txt", "dir/3.txt", "dir/4.txt"], rest.S3Objects.Select(o => o.Key));
        }

        // A multipart upload started on A, fed by both, completed on B, read back on A.
        var part1 = RandomNumberGenerator.GetBytes(5 * 1024 * 1024);
        var part2 = RandomNumberGenerator.GetBytes(1234);
        var upload = await onA.InitiateMultipartUploadAsync("shared", "parts.bin");
        var p1 = await onA.UploadPartAsync(new UploadPartRequest { BucketName = "shared", Key = "parts.bin", UploadId = upload.UploadId, PartNumber = 1, InputStream = new MemoryStream(part1) });
        var p2 = await onB.UploadPartAsync(new UploadPartRequest { BucketName = "shared", Key = "parts.bin", UploadId = upload.UploadId, PartNumber = 2, InputStream = new MemoryStream(part2) });
        Assert.Equal([1, 2], (await onB.ListPartsAsync(new ListPartsRequest { BucketName = "shared", Key = "parts.bin", UploadId = upload.UploadId })).Parts.Select(p => p.PartNumber ?? 0));
        await onB.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = "shared", Key = "parts.bin", UploadId = upload.UploadId, PartETags = [new PartETag(1, p1.ETag), new PartETag(2, p2.ETag)],
        });
        using (var get = await onA.GetObjectAsync("shared", "parts.bin"))
        {
            using var bytes = new MemoryStream();
            await get.ResponseStream.CopyToAsync(bytes);
            Assert.True(part1.Concat(part2).SequenceEqual(bytes.ToArray()));
            Assert.EndsWith("-2\"", get.ETag);
        }

        // A delete on one replica is a 404 on the other at once.
        await onB.DeleteObjectAsync("shared", "dir/0.txt");
        var gone = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => onA.GetObjectAsync("shared", "dir/0.txt"));
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }
}
