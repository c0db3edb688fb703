// S3's Content-MD5 is an MD5: the tests compute it to send it.
#pragma warning disable CA5351
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// The parts of S3 that ride on headers clients set on purpose: date conditions, Content-MD5,
/// copy-source conditions, an Idempotency-Key header (meaningless to S3), through AWSSDK.S3 and a
/// plain HttpClient against a real engine process.
/// </summary>
public sealed class S3ConditionsTests : IAsyncLifetime
{
    private S3Engine _engine = null!;
    private AmazonS3Client _s3 = null!;

    public async Task InitializeAsync()
    {
        _engine = await S3Engine.StartAsync();
        _s3 = _engine.Client(await _engine.TenantAsync("lab-a"));
        await _s3.PutBucketAsync("conditions");
        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "conditions", Key = "source.txt", ContentBody = "the source" });
    }

    public async Task DisposeAsync()
    {
        _s3.Dispose();
        await _engine.DisposeAsync();
    }

    private static readonly DateTime LongAgo = new(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private static DateTime Tomorrow => DateTime.UtcNow.AddDays(1);

    [Fact]
    public async Task Get_honours_if_modified_since_and_if_unmodified_since()
    {
        using (var changed = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = "conditions", Key = "source.txt", ModifiedSinceDate = LongAgo }))
            Assert.Equal(HttpStatusCode.OK, changed.HttpStatusCode);
        var notModified = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() =>
            _s3.GetObjectAsync(new GetObjectRequest { BucketName = "conditions", Key = "source.txt", ModifiedSinceDate = Tomorrow }));
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

        using (var unchanged = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = "conditions", Key = "source.txt", UnmodifiedSinceDate = Tomorrow }))
            Assert.Equal(HttpStatusCode.OK, unchanged.HttpStatusCode);
        var failed = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() =>
            _s3.GetObjectAsync(new GetObjectRequest { BucketName = "conditions", Key = "source.txt", UnmodifiedSinceDate = LongAgo }));
        Assert.Equal(HttpStatusCode.PreconditionFailed, failed.StatusCode);

        // RFC 9110: a matching If-Match wins over a failing If-Unmodified-Since.
        var etag = (await _s3.GetObjectMetadataAsync("conditions", "source.txt")).ETag;
        using (var matched = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = "conditions", Key = "source.txt", EtagToMatch = etag, UnmodifiedSinceDate = LongAgo }))
            Assert.Equal(HttpStatusCode.OK, matched.HttpStatusCode);
    }

    [Fact]
    public async Task A_wrong_content_md5_is_bad_digest_and_nothing_is_stored()
    {
        var wrong = Convert.ToBase64String(MD5.HashData(Encoding.UTF8.GetBytes("other bytes")));
        var bad = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() =>
            _s3.PutObjectAsync(new PutObjectRequest { BucketName = "conditions", Key = "md5.txt", ContentBody = "these bytes", MD5Digest = wrong }));
        Assert.Equal("BadDigest", bad.ErrorCode);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("conditions", "md5.txt"));

        var malformed = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() =>
            _s3.PutObjectAsync(new PutObjectRequest { BucketName = "conditions", Key = "md5.txt", ContentBody = "these bytes", MD5Digest = "bm90IGEgZGlnZXN0" }));
        Assert.Equal("InvalidDigest", malformed.ErrorCode);

        var right = Convert.ToBase64String(MD5.HashData(Encoding.UTF8.GetBytes("these bytes")));
        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "conditions", Key = "md5.txt", ContentBody = "these bytes", MD5Digest = right });
        Assert.Equal(11, (await _s3.GetObjectMetadataAsync("conditions", "md5.txt")).ContentLength);
    }

    [Fact]
    public async Task Copy_source_conditions_decide_whether_the_copy_happens()
    {
        var etag = (await _s3.GetObjectMetadataAsync("conditions", "source.txt")).ETag;
        CopyObjectRequest Copy(string destination) => new()
        {
            SourceBucket = "conditions", SourceKey = "source.txt", DestinationBucket = "conditions", DestinationKey = destination,
        };

        var refusals = new (string Destination, CopyObjectRequest Request)[]
        {
            ("if-match", Copy("if-match")),
            ("if-none-match", Copy("if-none-match")),
            ("if-modified-since", Copy("if-modified-since")),
            ("if-unmodified-since", Copy("if-unmodified-since")),
        };
        refusals[0].Request.ETagToMatch = "\"00000000000000000000000000000000\"";
        refusals[1].Request.ETagToNotMatch = etag;
        refusals[2].Request.ModifiedSinceDate = Tomorrow;
        refusals[3].Request.UnmodifiedSinceDate = LongAgo;
        foreach (var (destination, request) in refusals)
        {
            var refused = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.CopyObjectAsync(request));
            Assert.Equal(HttpStatusCode.PreconditionFailed, refused.StatusCode);
            Assert.Equal("PreconditionFailed", refused.ErrorCode);
            await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("conditions", destination));
        }

        var allowed = Copy("copied");
        allowed.ETagToMatch = etag;
        allowed.ModifiedSinceDate = LongAgo;
        await _s3.CopyObjectAsync(allowed);
        using var get = await _s3.GetObjectAsync("conditions", "copied");
        using var reader = new StreamReader(get.ResponseStream);
        Assert.Equal("the source", await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task An_idempotency_key_header_on_s3_requests_is_ignored_and_each_write_lands()
    {
        Task<string> PresignPut() => _s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = "conditions", Key = "idem.txt", Verb = HttpVerb.PUT, Expires = DateTime.UtcNow.AddMinutes(5), Protocol = Protocol.HTTP,
        });
        using var http = new HttpClient();
        foreach (var body in new[] { "first write", "second write" })
        {
            var request = new HttpRequestMessage(HttpMethod.Put, await PresignPut()) { Content = new StringContent(body) };
            request.Headers.Add("Idempotency-Key", "same-key");
            var response = await http.SendAsync(request);
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            Assert.False(response.Headers.Contains("Idempotent-Replayed"));
        }
        using var get = await _s3.GetObjectAsync("conditions", "idem.txt");
        using var reader = new StreamReader(get.ResponseStream);
        Assert.Equal("second write", await reader.ReadToEndAsync());
    }
}

/// <summary>Virtual-hosted addressing (<c>bucket.domain</c>) with <c>ObjectStorage:Domain</c> set.</summary>
public sealed class S3VirtualHostedTests : IAsyncLifetime
{
    private const string Domain = "s3.openpool.test";
    private S3Engine _engine = null!;

    public async Task InitializeAsync() => _engine = await S3Engine.StartAsync("--ObjectStorage:Domain", Domain);

    public async Task DisposeAsync() => await _engine.DisposeAsync();

    /// <summary>
    /// An SDK client that names buckets in the host, as it does for a real S3 domain; the test domain
    /// does not resolve, so every connection goes to the engine's loopback port whatever the host.
    /// </summary>
    private AmazonS3Client VirtualHostedClient(Tenant tenant) => new(
        new BasicAWSCredentials(tenant.AccessKeyId, tenant.SecretAccessKey),
        new AmazonS3Config
        {
            ServiceURL = $"http://{Domain}:{_engine.S3Url.Port}", ForcePathStyle = false, AuthenticationRegion = "us-east-1",
            HttpClientFactory = new LoopbackHttpClientFactory(_engine.S3Url.Port),
        });

    [Fact]
    public async Task Buckets_named_in_the_host_work_for_their_owner_and_for_no_one_else()
    {
        var owner = await _engine.TenantAsync("lab-a");
        using var s3 = VirtualHostedClient(owner);
        await s3.PutBucketAsync("hosted");
        await s3.PutObjectAsync(new PutObjectRequest { BucketName = "hosted", Key = "dir/a.txt", ContentBody = "by host" });

        var url = await s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest { BucketName = "hosted", Key = "dir/a.txt", Verb = HttpVerb.GET, Expires = DateTime.UtcNow.AddMinutes(5), Protocol = Protocol.HTTP });
        Assert.StartsWith($"http://hosted.{Domain}:", url); // the SDK did put the bucket in the host
        using (var get = await s3.GetObjectAsync("hosted", "dir/a.txt"))
        using (var reader = new StreamReader(get.ResponseStream))
            Assert.Equal("by host", await reader.ReadToEndAsync());
        Assert.Equal(["dir/a.txt"], (await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "hosted" })).S3Objects.Select(o => o.Key));

        // Path style still works beside it, on the same object.
        using (var pathStyle = _engine.Client(owner))
        using (var get = await pathStyle.GetObjectAsync("hosted", "dir/a.txt"))
            Assert.Equal(7, get.ContentLength);

        // Another tenant naming the bucket in the host finds nothing.
        using var other = VirtualHostedClient(await _engine.TenantAsync("lab-b"));
        var denied = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => other.GetObjectAsync("hosted", "dir/a.txt"));
        Assert.Contains(denied.ErrorCode, new[] { "NoSuchBucket", "AccessDenied" });
        var listing = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => other.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "hosted" }));
        Assert.Contains(listing.ErrorCode, new[] { "NoSuchBucket", "AccessDenied" });
    }

    private sealed class LoopbackHttpClientFactory(int port) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) => new(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(IPAddress.Loopback, port, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        });
    }
}
