// S3 ETags are MD5s: the tests compute them to compare.
#pragma warning disable CA5351
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Amazon.S3;
using Amazon.S3.Model;
using Amazon.S3.Transfer;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>The S3 endpoint through AWSSDK.S3 against a real engine process.</summary>
public sealed class S3SdkTests : IAsyncLifetime
{
    private S3Engine _engine = null!;
    private Tenant _tenant = null!;
    private AmazonS3Client _s3 = null!;

    public async Task InitializeAsync()
    {
        _engine = await S3Engine.StartAsync();
        _tenant = await _engine.TenantAsync("lab-a");
        _s3 = _engine.Client(_tenant);
    }

    public async Task DisposeAsync()
    {
        _s3.Dispose();
        await _engine.DisposeAsync();
    }

    private static async Task<string> ReadAsync(GetObjectResponse response)
    {
        using var reader = new StreamReader(response.ResponseStream);
        return await reader.ReadToEndAsync();
    }

    [Fact]
    public async Task Buckets_are_created_listed_located_and_deleted_with_S3s_errors()
    {
        await _s3.PutBucketAsync("first-bucket");
        var again = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.PutBucketAsync("first-bucket"));
        Assert.Equal("BucketAlreadyOwnedByYou", again.ErrorCode);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        var invalid = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.PutBucketAsync("Not_Valid"));
        Assert.Equal("InvalidBucketName", invalid.ErrorCode);

        var list = await _s3.ListBucketsAsync();
        Assert.Equal(["first-bucket"], list.Buckets.Select(b => b.BucketName));
        var location = await _s3.GetBucketLocationAsync("first-bucket");
        Assert.True(string.IsNullOrEmpty(location.Location.Value) || location.Location.Value == "us-east-1");

        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "first-bucket", Key = "k", ContentBody = "x" });
        var notEmpty = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.DeleteBucketAsync("first-bucket"));
        Assert.Equal("BucketNotEmpty", notEmpty.ErrorCode);
        await _s3.DeleteObjectAsync("first-bucket", "k");
        await _s3.DeleteBucketAsync("first-bucket");
        var gone = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "first-bucket" }));
        Assert.Equal("NoSuchBucket", gone.ErrorCode);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Objects_round_trip_with_metadata_ranges_conditions_and_overrides()
    {
        await _s3.PutBucketAsync("objects");
        var put = new PutObjectRequest
        {
            BucketName = "objects", Key = "dir/hello.txt", ContentBody = "hello, object storage",
            ContentType = "text/plain", Headers = { CacheControl = "max-age=60", ContentDisposition = "attachment", ContentEncoding = "identity" },
        };
        put.Metadata.Add("owner", "lab-a");
        var putResponse = await _s3.PutObjectAsync(put);
        var md5 = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes("hello, object storage")));
        Assert.Equal($"\"{md5}\"", putResponse.ETag);

        using (var get = await _s3.GetObjectAsync("objects", "dir/hello.txt"))
        {
            Assert.Equal("hello, object storage", await ReadAsync(get));
            Assert.Equal("text/plain", get.Headers.ContentType);
            Assert.Equal("max-age=60", get.Headers.CacheControl);
            Assert.Equal("attachment", get.Headers.ContentDisposition);
            Assert.Equal("lab-a", get.Metadata["x-amz-meta-owner"]);
            Assert.Equal($"\"{md5}\"", get.ETag);
        }

        var head = await _s3.GetObjectMetadataAsync("objects", "dir/hello.txt");
        Assert.Equal(21, head.ContentLength);

        using (var range = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = "objects", Key = "dir/hello.txt", ByteRange = new ByteRange(7, 12) }))
        {
            Assert.Equal(HttpStatusCode.PartialContent, range.HttpStatusCode);
            Assert.Equal("object", await ReadAsync(range));
            Assert.Equal("bytes 7-12/21", range.ContentRange);
        }
        using (var suffix = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = "objects", Key = "dir/hello.txt", ByteRange = new ByteRange("bytes=-7") }))
            Assert.Equal("storage", await ReadAsync(suffix));
        var unsatisfiable = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectAsync(new GetObjectRequest { BucketName = "objects", Key = "dir/hello.txt", ByteRange = new ByteRange(100, 200) }));
        Assert.Equal("InvalidRange", unsatisfiable.ErrorCode);

        var mismatch = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectAsync(new GetObjectRequest { BucketName = "objects", Key = "dir/hello.txt", EtagToMatch = "\"0000\"" }));
        Assert.Equal(HttpStatusCode.PreconditionFailed, mismatch.StatusCode);
        var notModified = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectAsync(new GetObjectRequest { BucketName = "objects", Key = "dir/hello.txt", EtagToNotMatch = $"\"{md5}\"" }));
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

        using (var overridden = await _s3.GetObjectAsync(new GetObjectRequest
               {
                   BucketName = "objects", Key = "dir/hello.txt",
                   ResponseHeaderOverrides = new ResponseHeaderOverrides { ContentType = "application/x-test", ContentDisposition = "inline" },
               }))
        {
            Assert.Equal("application/x-test", overridden.Headers.ContentType);
            Assert.Equal("inline", overridden.Headers.ContentDisposition);
        }

        // Conditional writes: If-None-Match: * refuses to replace.
        var exists = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.PutObjectAsync(new PutObjectRequest { BucketName = "objects", Key = "dir/hello.txt", ContentBody = "other", IfNoneMatch = "*" }));
        Assert.Equal(HttpStatusCode.PreconditionFailed, exists.StatusCode);

        var missing = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectAsync("objects", "nope"));
        Assert.Equal("NoSuchKey", missing.ErrorCode);
        await _s3.DeleteObjectAsync("objects", "dir/hello.txt");
        await _s3.DeleteObjectAsync("objects", "dir/hello.txt"); // idempotent
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("objects", "dir/hello.txt"));
    }

    [Fact]
    public async Task Listings_page_with_prefixes_delimiters_and_tokens()
    {
        await _s3.PutBucketAsync("listing");
        string[] keys = ["a/1", "a/2", "a/b/3", "b", "c/4", "c/5", "d"];
        foreach (var key in keys)
            await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "listing", Key = key, ContentBody = key });

        var all = new List<string>();
        string? token = null;
        do
        {
            var page = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing", MaxKeys = 2, ContinuationToken = token });
            Assert.True(page.S3Objects.Count <= 2);
            all.AddRange(page.S3Objects.Select(o => o.Key));
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);
        Assert.Equal(keys, all);

        var delimited = new List<string>();
        var prefixes = new List<string>();
        token = null;
        do
        {
            var page = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing", Delimiter = "/", MaxKeys = 1, ContinuationToken = token });
            delimited.AddRange(page.S3Objects?.Select(o => o.Key) ?? []);
            prefixes.AddRange(page.CommonPrefixes ?? []);
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);
        Assert.Equal(["b", "d"], delimited);
        Assert.Equal(["a/", "c/"], prefixes);

        var under = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing", Prefix = "a/", Delimiter = "/", StartAfter = "a/1" });
        Assert.Equal(["a/2"], under.S3Objects.Select(o => o.Key));
        Assert.Equal(["a/b/"], under.CommonPrefixes);

        var v1 = await _s3.ListObjectsAsync(new ListObjectsRequest { BucketName = "listing", Marker = "b", MaxKeys = 2 });
        Assert.Equal(["c/4", "c/5"], v1.S3Objects.Select(o => o.Key));
        Assert.True(v1.IsTruncated);

        // A page that holds exactly what is left is not truncated; one key fewer of room, and it is.
        var exact = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing", MaxKeys = keys.Length });
        Assert.Equal(keys.Length, exact.KeyCount);
        Assert.False(exact.IsTruncated);
        var short1 = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing", MaxKeys = keys.Length - 1 });
        Assert.True(short1.IsTruncated);
        Assert.Equal(keys[^2], short1.S3Objects[^1].Key);
        var delimitedExact = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing", Delimiter = "/", MaxKeys = 4 });
        Assert.False(delimitedExact.IsTruncated);
        Assert.Equal(4, delimitedExact.KeyCount);

        var versions = await _s3.ListVersionsAsync(new ListVersionsRequest { BucketName = "listing", Prefix = "c/" });
        Assert.All(versions.Versions, v => Assert.True(v.IsLatest == true && v.VersionId == "null"));
        Assert.Equal(["c/4", "c/5"], versions.Versions.Select(v => v.Key));

        var deleted = await _s3.DeleteObjectsAsync(new DeleteObjectsRequest { BucketName = "listing", Objects = [.. keys.Select(k => new KeyVersion { Key = k })] });
        Assert.Equal(keys.Length, deleted.DeletedObjects.Count);
        Assert.Empty((await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "listing" })).S3Objects ?? []);
    }

    [Fact]
    public async Task Multipart_uploads_and_copies_keep_bytes_and_S3s_etags()
    {
        await _s3.PutBucketAsync("multipart");
        var data = RandomNumberGenerator.GetBytes(12 * 1024 * 1024 + 123);
        using (var transfer = new TransferUtility(_s3, new TransferUtilityConfig { MinSizeBeforePartUpload = 5 * 1024 * 1024 }))
        {
            var request = new TransferUtilityUploadRequest
            {
                BucketName = "multipart", Key = "big.bin", InputStream = new MemoryStream(data), PartSize = 5 * 1024 * 1024,
                ContentType = "application/x-tar",
            };
            request.Headers.ContentDisposition = "attachment; filename=big.tar";
            request.Headers.CacheControl = "no-cache";
            request.Metadata.Add("run", "42");
            await transfer.UploadAsync(request);
        }
        var head = await _s3.GetObjectMetadataAsync("multipart", "big.bin");
        Assert.EndsWith("-3\"", head.ETag);
        // What the upload's create named is what the completed object carries.
        Assert.Equal("application/x-tar", head.Headers.ContentType);
        Assert.Equal("attachment; filename=big.tar", head.Headers.ContentDisposition);
        Assert.Equal("no-cache", head.Headers.CacheControl);
        Assert.Equal("42", head.Metadata["run"]);
        Assert.Equal(data.Length, head.ContentLength);
        using (var get = await _s3.GetObjectAsync("multipart", "big.bin"))
        {
            using var copy = new MemoryStream();
            await get.ResponseStream.CopyToAsync(copy);
            Assert.True(data.AsSpan().SequenceEqual(copy.ToArray()));
        }

        // EntityTooSmall, InvalidPart, InvalidPartOrder.
        var upload = await _s3.InitiateMultipartUploadAsync("multipart", "small");
        var p1 = await _s3.UploadPartAsync(new UploadPartRequest { BucketName = "multipart", Key = "small", UploadId = upload.UploadId, PartNumber = 1, InputStream = new MemoryStream(new byte[10]) });
        var p2 = await _s3.UploadPartAsync(new UploadPartRequest { BucketName = "multipart", Key = "small", UploadId = upload.UploadId, PartNumber = 2, InputStream = new MemoryStream(new byte[10]) });
        var parts = await _s3.ListPartsAsync(new ListPartsRequest { BucketName = "multipart", Key = "small", UploadId = upload.UploadId });
        Assert.Equal([1, 2], parts.Parts.Select(p => p.PartNumber ?? 0));
        var uploads = await _s3.ListMultipartUploadsAsync("multipart");
        Assert.Contains(uploads.MultipartUploads, u => u.UploadId == upload.UploadId);
        var tooSmall = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = "multipart", Key = "small", UploadId = upload.UploadId,
            PartETags = [new PartETag(1, p1.ETag), new PartETag(2, p2.ETag)],
        }));
        Assert.Equal("EntityTooSmall", tooSmall.ErrorCode);
        var invalidPart = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = "multipart", Key = "small", UploadId = upload.UploadId, PartETags = [new PartETag(3, p1.ETag)],
        }));
        Assert.Equal("InvalidPart", invalidPart.ErrorCode);
        await _s3.AbortMultipartUploadAsync("multipart", "small", upload.UploadId);
        var noUpload = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.ListPartsAsync(new ListPartsRequest { BucketName = "multipart", Key = "small", UploadId = upload.UploadId }));
        Assert.Equal("NoSuchUpload", noUpload.ErrorCode);

        // CopyObject with REPLACE metadata, and UploadPartCopy of a range.
        await _s3.CopyObjectAsync(new CopyObjectRequest
        {
            SourceBucket = "multipart", SourceKey = "big.bin", DestinationBucket = "multipart", DestinationKey = "copy.bin",
            MetadataDirective = S3MetadataDirective.REPLACE, ContentType = "application/x-copied",
        });
        var copied = await _s3.GetObjectMetadataAsync("multipart", "copy.bin");
        Assert.Equal(data.Length, copied.ContentLength);
        Assert.Equal("application/x-copied", copied.Headers.ContentType);
        Assert.Null(copied.Headers.ContentDisposition);
        // COPY, the default, takes the source's headers and metadata along.
        await _s3.CopyObjectAsync("multipart", "big.bin", "multipart", "copy-kept.bin");
        var kept = await _s3.GetObjectMetadataAsync("multipart", "copy-kept.bin");
        Assert.Equal(("application/x-tar", "attachment; filename=big.tar", "42"), (kept.Headers.ContentType, kept.Headers.ContentDisposition, kept.Metadata["run"]));
        Assert.Equal($"\"{Convert.ToHexStringLower(MD5.HashData(data))}\"", copied.ETag);

        var ranged = await _s3.InitiateMultipartUploadAsync("multipart", "ranged");
        var part = await _s3.CopyPartAsync(new CopyPartRequest
        {
            SourceBucket = "multipart", SourceKey = "big.bin", DestinationBucket = "multipart", DestinationKey = "ranged",
            UploadId = ranged.UploadId, PartNumber = 1, FirstByte = 100, LastByte = 199,
        });
        await _s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = "multipart", Key = "ranged", UploadId = ranged.UploadId, PartETags = [new PartETag(1, part.ETag)],
        });
        using (var get = await _s3.GetObjectAsync("multipart", "ranged"))
        {
            using var copy = new MemoryStream();
            await get.ResponseStream.CopyToAsync(copy);
            Assert.True(data.AsSpan(100, 100).SequenceEqual(copy.ToArray()));
        }
    }

    [Fact]
    public async Task Checksums_are_validated_and_returned_with_checksum_mode()
    {
        await _s3.PutBucketAsync("checksums");
        foreach (var algorithm in new[] { ChecksumAlgorithm.CRC32, ChecksumAlgorithm.CRC32C, ChecksumAlgorithm.SHA1, ChecksumAlgorithm.SHA256 })
        {
            var key = "obj-" + algorithm.Value;
            var put = await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "checksums", Key = key, ContentBody = "checksummed", ChecksumAlgorithm = algorithm });
            var get = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = "checksums", Key = key, ChecksumMode = ChecksumMode.ENABLED });
            Assert.Equal("checksummed", await ReadAsync(get));
            var returned = algorithm.Value switch
            {
                "CRC32" => get.ChecksumCRC32, "CRC32C" => get.ChecksumCRC32C, "SHA1" => get.ChecksumSHA1, _ => get.ChecksumSHA256,
            };
            Assert.False(string.IsNullOrEmpty(returned));
            Assert.Equal(algorithm.Value switch { "CRC32" => put.ChecksumCRC32, "CRC32C" => put.ChecksumCRC32C, "SHA1" => put.ChecksumSHA1, _ => put.ChecksumSHA256 }, returned);
        }
        var sha = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes("abc")));
        Assert.Equal(sha, (await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "checksums", Key = "sha", ContentBody = "abc", ChecksumSHA256 = sha })).ChecksumSHA256);
        var bad = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = "checksums", Key = "bad", ContentBody = "abc", ChecksumSHA256 = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes("abd"))),
        }));
        Assert.Equal("BadDigest", bad.ErrorCode);
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("checksums", "bad"));
    }

    [Fact]
    public async Task Presigned_get_and_put_work_with_a_plain_http_client()
    {
        await _s3.PutBucketAsync("presigned");
        var putUrl = await _s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest { BucketName = "presigned", Key = "p.txt", Verb = HttpVerb.PUT, Expires = DateTime.UtcNow.AddMinutes(5), Protocol = Protocol.HTTP });
        using var http = new HttpClient();
        var put = await http.PutAsync(putUrl, new StringContent("presigned body"));
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        var getUrl = await _s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest { BucketName = "presigned", Key = "p.txt", Verb = HttpVerb.GET, Expires = DateTime.UtcNow.AddMinutes(5), Protocol = Protocol.HTTP });
        Assert.Equal("presigned body", await http.GetStringAsync(getUrl));
    }

    [Fact]
    public async Task The_S3_listener_answers_only_S3_and_the_API_listener_never_S3()
    {
        using var http = new HttpClient();
        // An unsigned request on the S3 listener is S3's AccessDenied XML, for any path, API ones included.
        foreach (var path in new[] { "/", "/clusters/list", "/object-storage/credentials", "/some-bucket/key" })
        {
            var response = await http.GetAsync(new Uri(_engine.S3Url, path));
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Contains("<Code>AccessDenied</Code>", body);
        }
        // A spoofed Host header changes nothing: the match is on the listener.
        var spoofed = new HttpRequestMessage(HttpMethod.Get, new Uri(_engine.Engine.Url, "/some-bucket/key"));
        spoofed.Headers.Host = _engine.S3Url.Authority;
        var api = await http.SendAsync(spoofed);
        Assert.StartsWith("application/json", api.Content.Headers.ContentType?.MediaType);

        // Signed but unknown operations are NotImplemented, in XML.
        await _s3.PutBucketAsync("unimplemented");
        var tagging = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetBucketTaggingAsync(new GetBucketTaggingRequest { BucketName = "unimplemented" }));
        Assert.Equal("NotImplemented", tagging.ErrorCode);
        Assert.Equal(HttpStatusCode.NotImplemented, tagging.StatusCode);
    }

    [Fact]
    public async Task Another_tenants_keys_find_nothing_of_the_first()
    {
        await _s3.PutBucketAsync("tenant-a-bucket");
        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "tenant-a-bucket", Key = "secret.txt", ContentBody = "a's data" });
        var other = _engine.Client(await _engine.TenantAsync("lab-b"));

        Assert.Empty((await other.ListBucketsAsync()).Buckets ?? []);
        foreach (var attempt in new Func<Task>[]
                 {
                     () => other.GetObjectAsync("tenant-a-bucket", "secret.txt"),
                     () => other.GetObjectMetadataAsync("tenant-a-bucket", "secret.txt"),
                     () => other.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "tenant-a-bucket" }),
                     () => other.PutObjectAsync(new PutObjectRequest { BucketName = "tenant-a-bucket", Key = "x", ContentBody = "b" }),
                     () => other.DeleteObjectAsync("tenant-a-bucket", "secret.txt"),
                     () => other.DeleteBucketAsync("tenant-a-bucket"),
                     () => other.InitiateMultipartUploadAsync("tenant-a-bucket", "x"),
                 })
        {
            var error = await Assert.ThrowsAnyAsync<AmazonS3Exception>(attempt);
            // HEAD answers carry no body: the SDK names a bodiless 404 "NotFound".
            Assert.True(error.ErrorCode is "NoSuchBucket" or "AccessDenied" or "NotFound", error.ErrorCode);
            Assert.True(error.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden, error.StatusCode.ToString());
        }
        // Names are global: creating it says someone else has it.
        var taken = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => other.PutBucketAsync("tenant-a-bucket"));
        Assert.Equal("BucketAlreadyExists", taken.ErrorCode);

        // Copying from another tenant's bucket into one's own is refused.
        await other.PutBucketAsync("tenant-b-bucket");
        var copy = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => other.CopyObjectAsync("tenant-a-bucket", "secret.txt", "tenant-b-bucket", "stolen.txt"));
        Assert.True(copy.ErrorCode is "NoSuchBucket" or "AccessDenied", copy.ErrorCode);
        var mpu = await other.InitiateMultipartUploadAsync("tenant-b-bucket", "stolen-part");
        var copyPart = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => other.CopyPartAsync(new CopyPartRequest
        {
            SourceBucket = "tenant-a-bucket", SourceKey = "secret.txt", DestinationBucket = "tenant-b-bucket", DestinationKey = "stolen-part", UploadId = mpu.UploadId, PartNumber = 1,
        }));
        Assert.True(copyPart.ErrorCode is "NoSuchBucket" or "AccessDenied", copyPart.ErrorCode);

        // The first tenant's object is untouched.
        using var get = await _s3.GetObjectAsync("tenant-a-bucket", "secret.txt");
        Assert.Equal("a's data", await ReadAsync(get));
    }

    [Fact]
    public async Task Hostile_keys_are_keys_and_never_paths()
    {
        await _s3.PutBucketAsync("hostile");
        string[] keys = ["../../etc/passwd", "a/../../b", "./x", "..", "with\u0001control", "with space & <xml>", "ünïcødé/键"];
        foreach (var key in keys)
            await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "hostile", Key = key, ContentBody = "body of " + key });
        foreach (var key in keys)
        {
            using var get = await _s3.GetObjectAsync("hostile", key);
            Assert.Equal("body of " + key, await ReadAsync(get));
        }
        var listed = await _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "hostile", Encoding = EncodingType.Url });
        Assert.Equal(keys.Order(StringComparer.Ordinal).ToHashSet(), listed.S3Objects.Select(o => Uri.UnescapeDataString(o.Key)).ToHashSet());

        // Nothing was written outside the blob store, and no file there is named after a key.
        var objects = Path.Combine(_engine.DataDir, "objects");
        Assert.False(File.Exists(Path.Combine(_engine.DataDir, "..", "b")));
        Assert.All(Directory.EnumerateFiles(objects, "*", SearchOption.AllDirectories), f => Assert.Matches("^b[0-9a-z]{25}$", Path.GetFileName(f)));

        var tooLong = await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.PutObjectAsync(new PutObjectRequest { BucketName = "hostile", Key = new string('k', 1025), ContentBody = "x" }));
        Assert.Equal("KeyTooLongError", tooLong.ErrorCode);
        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "hostile", Key = new string('k', 1024), ContentBody = "x" });
    }
}
