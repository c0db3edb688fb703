// S3's Content-MD5 is an MD5: the tests compute it to send it.
#pragma warning disable CA5351
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Amazon.S3;
using Amazon.S3.Model;
using OpenPool.Engine.ObjectStorage.S3;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// Correctly signed requests a tenant can shape badly on purpose: each is one of S3's 4xx XML errors,
/// never a 500, and never a silent success that stores or deletes the wrong thing.
/// </summary>
public sealed class S3MalformedRequestTests : IAsyncLifetime, IDisposable
{
    private S3Engine _engine = null!;
    private Tenant _tenant = null!;
    private AmazonS3Client _s3 = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        _engine = await S3Engine.StartAsync();
        _tenant = await _engine.TenantAsync("lab-a");
        _s3 = _engine.Client(_tenant);
        await _s3.PutBucketAsync("shapes");
        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "shapes", Key = "report.pdf", ContentBody = "pdf bytes" });
    }

    public async Task DisposeAsync()
    {
        _s3.Dispose();
        await _engine.DisposeAsync();
    }

    public void Dispose() => _http.Dispose();

    private HttpRequestMessage Signed(HttpMethod method, string pathAndQuery, byte[]? body = null, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(method, new Uri(_engine.S3Url, pathAndQuery));
        if (body is not null)
            request.Content = new ByteArrayContent(body);
        foreach (var (name, value) in headers)
        {
            // Content-MD5 and its kin are content headers: HttpClient drops them from the request's own headers.
            if (!request.Headers.TryAddWithoutValidation(name, value))
                Assert.True(request.Content?.Headers.TryAddWithoutValidation(name, value), $"{name} could not be sent");
        }
        SigV4TestSigner.SignHeaders(request, Convert.ToHexStringLower(SHA256.HashData(body ?? [])), DateTimeOffset.UtcNow,
            _tenant.AccessKeyId, _tenant.SecretAccessKey);
        return request;
    }

    private async Task AssertS3ErrorAsync(HttpRequestMessage request, HttpStatusCode status, string code)
    {
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/xml", response.Content.Headers.ContentType?.MediaType);
        Assert.True(text.Contains($"<Code>{code}</Code>", StringComparison.Ordinal), text);
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static (string, string) Md5Of(byte[] body) => ("Content-MD5", Convert.ToBase64String(MD5.HashData(body)));

    [Fact]
    public async Task An_empty_copy_source_is_an_invalid_argument_for_copies_and_part_copies()
    {
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, "/shapes/copy", null, ("x-amz-copy-source", "")), HttpStatusCode.BadRequest, "InvalidArgument");
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, "/shapes/copy", null, ("x-amz-copy-source", "   ")), HttpStatusCode.BadRequest, "InvalidArgument");
        var upload = await _s3.InitiateMultipartUploadAsync("shapes", "parted");
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, $"/shapes/parted?partNumber=1&uploadId={upload.UploadId}", null, ("x-amz-copy-source", "")),
            HttpStatusCode.BadRequest, "InvalidArgument");
        // No part was stored by the refused copy.
        Assert.Empty((await _s3.ListPartsAsync(new ListPartsRequest { BucketName = "shapes", Key = "parted", UploadId = upload.UploadId })).Parts ?? []);
    }

    [Fact]
    public async Task Response_overrides_carry_utf8_file_names_and_refuse_header_splitting()
    {
        var url = await _s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = "shapes", Key = "report.pdf", Verb = HttpVerb.GET, Expires = DateTime.UtcNow.AddMinutes(5), Protocol = Protocol.HTTP,
            ResponseHeaderOverrides = new ResponseHeaderOverrides { ContentDisposition = "attachment; filename=\"résumé.pdf\"" },
        });
        using (var response = await _http.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("pdf bytes", await response.Content.ReadAsStringAsync());
            var sent = response.Content.Headers.GetValues("Content-Disposition").Single();
            // HttpClient reads header bytes as Latin-1: the UTF-8 bytes of the name arrive as sent.
            Assert.Equal("attachment; filename=\"résumé.pdf\"", Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(sent)));
        }

        foreach (var (name, value) in new[]
                 {
                     ("response-content-type", "text/plain\r\nSet-Cookie: stolen=1"),
                     ("response-cache-control", "no-cache\nX-Injected: 1"),
                     ("response-content-type", "téxt/plain"),
                 })
        {
            var query = $"?{name}={Uri.EscapeDataString(value)}";
            await AssertS3ErrorAsync(Signed(HttpMethod.Get, "/shapes/report.pdf" + query), HttpStatusCode.BadRequest, "InvalidArgument");
        }
    }

    [Fact]
    public async Task Create_bucket_checks_its_configuration_body()
    {
        static byte[] Config(string location) => Utf8(
            $"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{location}</LocationConstraint></CreateBucketConfiguration>");
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, "/elsewhere", Config("eu-west-1")), HttpStatusCode.BadRequest, "IllegalLocationConstraintException");
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, "/garbage-body", Utf8("garbage")), HttpStatusCode.BadRequest, "MalformedXML");
        Assert.DoesNotContain((await _s3.ListBucketsAsync()).Buckets, b => b.BucketName is "elsewhere" or "garbage-body");

        using var here = await _http.SendAsync(Signed(HttpMethod.Put, "/here", Config("us-east-1")));
        Assert.Equal(HttpStatusCode.OK, here.StatusCode);
        using var plain = await _http.SendAsync(Signed(HttpMethod.Put, "/no-body"));
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
    }

    [Fact]
    public async Task Delete_objects_refuses_bodies_outside_s3s_schema_and_deletes_nothing()
    {
        var bodies = new[]
        {
            "<Delete></Delete>",
            "<Delete><Object><Key></Key></Object></Delete>",
            "<Delete><Quiet>maybe</Quiet><Object><Key>report.pdf</Key></Object></Delete>",
            "<?xml version=\"1.0\"?><!DOCTYPE Delete [<!ENTITY k \"report.pdf\">]><Delete><Object><Key>&k;</Key></Object></Delete>",
        };
        foreach (var text in bodies)
        {
            var body = Utf8(text);
            await AssertS3ErrorAsync(Signed(HttpMethod.Post, "/shapes?delete", body, Md5Of(body)), HttpStatusCode.BadRequest, "MalformedXML");
        }
        Assert.Equal(9, (await _s3.GetObjectMetadataAsync("shapes", "report.pdf")).ContentLength);

        var quiet = Utf8("<Delete><Quiet>true</Quiet><Object><Key>report.pdf</Key></Object></Delete>");
        using var deleted = await _http.SendAsync(Signed(HttpMethod.Post, "/shapes?delete", quiet, Md5Of(quiet)));
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.DoesNotContain("<Deleted>", await deleted.Content.ReadAsStringAsync());
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("shapes", "report.pdf"));
    }

    [Fact]
    public async Task A_put_without_a_length_is_411_and_stores_nothing()
    {
        // HttpClient always sends a length for PUT, so this request goes over a raw socket.
        var request = Signed(HttpMethod.Put, "/shapes/no-length");
        var head = new StringBuilder($"PUT /shapes/no-length HTTP/1.1\r\nHost: {_engine.S3Url.Authority}\r\nConnection: close\r\n");
        foreach (var (name, values) in request.Headers)
            head.Append(name).Append(": ").Append(string.Join(",", values)).Append("\r\n");
        head.Append("\r\n");
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, _engine.S3Url.Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
        var answer = await new StreamReader(stream).ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 411", answer);
        Assert.Contains("<Code>MissingContentLength</Code>", answer);
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("shapes", "no-length"));
    }

    [Fact]
    public async Task A_version_id_other_than_null_names_nothing_and_deletes_nothing()
    {
        await _s3.PutObjectAsync(new PutObjectRequest { BucketName = "shapes", Key = "kept", ContentBody = "live data" });
        await AssertS3ErrorAsync(Signed(HttpMethod.Delete, "/shapes/kept?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"), HttpStatusCode.BadRequest, "InvalidArgument");
        await AssertS3ErrorAsync(Signed(HttpMethod.Get, "/shapes/kept?versionId=abc"), HttpStatusCode.BadRequest, "InvalidArgument");
        var batch = await Assert.ThrowsAsync<DeleteObjectsException>(() =>
            _s3.DeleteObjectsAsync(new DeleteObjectsRequest { BucketName = "shapes", Objects = [new KeyVersion { Key = "kept", VersionId = "bogus" }] }));
        Assert.Empty(batch.Response.DeletedObjects ?? []);
        Assert.Equal("InvalidArgument", Assert.Single(batch.Response.DeleteErrors).Code);
        Assert.Equal(9, (await _s3.GetObjectMetadataAsync("shapes", "kept")).ContentLength);

        // "null" is the one version an unversioned bucket has: it is the object.
        await _s3.DeleteObjectAsync(new DeleteObjectRequest { BucketName = "shapes", Key = "kept", VersionId = "null" });
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("shapes", "kept"));
    }

    [Theory]
    [InlineData(false, false)] // no trailer at all: the declared CRC32 would go unchecked
    [InlineData(true, false)]  // a trailer of another name than the one declared
    [InlineData(true, true)]   // the declared trailer with a wrong value
    public async Task A_trailer_upload_must_carry_exactly_the_declared_trailer(bool sendTrailer, bool declaredName)
    {
        var data = Utf8("hello");
        var crc = Checksums.Create("CRC32");
        crc.Append(data);
        var right = Convert.ToBase64String(crc.Final());
        (string, string)[]? trailers = !sendTrailer ? [] : declaredName ? [("x-amz-checksum-crc32", "AAAAAA==")] : [("x-amz-checksum-sha256", right)];
        var request = new HttpRequestMessage(HttpMethod.Put, new Uri(_engine.S3Url, "/shapes/trailed"))
        {
            Content = new ByteArrayContent(SigV4TestSigner.ChunkedBody(data, 64, null, trailers)),
        };
        request.Content.Headers.ContentEncoding.Add("aws-chunked");
        request.Headers.TryAddWithoutValidation("x-amz-decoded-content-length", "5");
        request.Headers.TryAddWithoutValidation("x-amz-trailer", "x-amz-checksum-crc32");
        SigV4TestSigner.SignHeaders(request, SigV4.StreamingUnsignedTrailer, DateTimeOffset.UtcNow, _tenant.AccessKeyId, _tenant.SecretAccessKey);
        await AssertS3ErrorAsync(request, HttpStatusCode.BadRequest, declaredName ? "BadDigest" : "MalformedTrailerError");
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("shapes", "trailed"));

        // The same upload with the declared trailer and its right value is stored.
        var good = new HttpRequestMessage(HttpMethod.Put, new Uri(_engine.S3Url, "/shapes/trailed"))
        {
            Content = new ByteArrayContent(SigV4TestSigner.ChunkedBody(data, 64, null, [("x-amz-checksum-crc32", right)])),
        };
        good.Content.Headers.ContentEncoding.Add("aws-chunked");
        good.Headers.TryAddWithoutValidation("x-amz-decoded-content-length", "5");
        good.Headers.TryAddWithoutValidation("x-amz-trailer", "x-amz-checksum-crc32");
        SigV4TestSigner.SignHeaders(good, SigV4.StreamingUnsignedTrailer, DateTimeOffset.UtcNow, _tenant.AccessKeyId, _tenant.SecretAccessKey);
        using var stored = await _http.SendAsync(good);
        Assert.True(stored.IsSuccessStatusCode, await stored.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_part_copy_range_past_the_source_is_refused_not_shortened()
    {
        var upload = await _s3.InitiateMultipartUploadAsync("shapes", "ranged");
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, $"/shapes/ranged?partNumber=1&uploadId={upload.UploadId}", null,
            ("x-amz-copy-source", "shapes/report.pdf"), ("x-amz-copy-source-range", "bytes=0-100")), HttpStatusCode.BadRequest, "InvalidArgument");
        Assert.Empty((await _s3.ListPartsAsync(new ListPartsRequest { BucketName = "shapes", Key = "ranged", UploadId = upload.UploadId })).Parts ?? []);
        using var inside = await _http.SendAsync(Signed(HttpMethod.Put, $"/shapes/ranged?partNumber=1&uploadId={upload.UploadId}", null,
            ("x-amz-copy-source", "shapes/report.pdf"), ("x-amz-copy-source-range", "bytes=0-8")));
        Assert.Equal(HttpStatusCode.OK, inside.StatusCode);
    }

    [Fact]
    public async Task An_empty_delete_objects_body_is_a_missing_request_body()
    {
        await AssertS3ErrorAsync(Signed(HttpMethod.Post, "/shapes?delete", [], Md5Of([])), HttpStatusCode.BadRequest, "MissingRequestBodyError");
    }

    [Fact]
    public async Task Xml_bodies_deeper_than_s3s_schemas_or_with_an_element_twice_are_malformed()
    {
        var nested = string.Concat(Enumerable.Repeat("<a>", 9)) + "x" + string.Concat(Enumerable.Repeat("</a>", 9));
        foreach (var text in new[]
        {
            $"<Delete><Object><Key>report.pdf</Key>{nested}</Object></Delete>",
            "<Delete><Object><Key>decoy</Key><Key>report.pdf</Key></Object></Delete>",
            "<Delete><Object><Key>report.pdf</Key><VersionId>null</VersionId><VersionId>bogus</VersionId></Object></Delete>",
            "<Delete><Quiet>true</Quiet><Quiet>false</Quiet><Object><Key>report.pdf</Key></Object></Delete>",
            // A hundred thousand levels: refused at the ninth, not after building the tree.
            "<Delete>" + string.Concat(Enumerable.Repeat("<a>", 100_000)) + string.Concat(Enumerable.Repeat("</a>", 100_000)) + "</Delete>",
        })
        {
            var body = Utf8(text);
            await AssertS3ErrorAsync(Signed(HttpMethod.Post, "/shapes?delete", body, Md5Of(body)), HttpStatusCode.BadRequest, "MalformedXML");
        }
        Assert.Equal(9, (await _s3.GetObjectMetadataAsync("shapes", "report.pdf")).ContentLength);
    }

    [Theory]
    [InlineData("x-amz-server-side-encryption-customer-algorithm", "AES256", HttpStatusCode.NotImplemented, "NotImplemented")]
    [InlineData("x-amz-server-side-encryption", "aws:kms", HttpStatusCode.NotImplemented, "NotImplemented")]
    [InlineData("x-amz-object-lock-mode", "COMPLIANCE", HttpStatusCode.NotImplemented, "NotImplemented")]
    [InlineData("x-amz-object-lock-legal-hold", "ON", HttpStatusCode.NotImplemented, "NotImplemented")]
    [InlineData("x-amz-storage-class", "BOGUS", HttpStatusCode.BadRequest, "InvalidStorageClass")]
    public async Task A_put_asking_for_encryption_or_retention_it_would_not_get_is_refused(string header, string value, HttpStatusCode status, string code)
    {
        await AssertS3ErrorAsync(Signed(HttpMethod.Put, "/shapes/promised", Utf8("secret"), (header, value)), status, code);
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("shapes", "promised"));
    }

    [Fact]
    public async Task A_known_storage_class_is_stored_as_standard()
    {
        using var put = await _http.SendAsync(Signed(HttpMethod.Put, "/shapes/infrequent", Utf8("rarely read"), ("x-amz-storage-class", "STANDARD_IA")));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
    }

    [Fact]
    public async Task A_trailer_sent_twice_or_of_another_algorithm_than_the_sdk_named_is_refused()
    {
        var data = Utf8("hello");
        var crc = Checksums.Create("CRC32");
        crc.Append(data);
        var right = Convert.ToBase64String(crc.Final());
        HttpRequestMessage Upload((string, string)[] trailers, string? sdkAlgorithm)
        {
            var request = new HttpRequestMessage(HttpMethod.Put, new Uri(_engine.S3Url, "/shapes/twice"))
            {
                Content = new ByteArrayContent(SigV4TestSigner.ChunkedBody(data, 64, null, trailers)),
            };
            request.Content.Headers.ContentEncoding.Add("aws-chunked");
            request.Headers.TryAddWithoutValidation("x-amz-decoded-content-length", "5");
            request.Headers.TryAddWithoutValidation("x-amz-trailer", "x-amz-checksum-crc32");
            if (sdkAlgorithm is not null)
                request.Headers.TryAddWithoutValidation("x-amz-sdk-checksum-algorithm", sdkAlgorithm);
            SigV4TestSigner.SignHeaders(request, SigV4.StreamingUnsignedTrailer, DateTimeOffset.UtcNow, _tenant.AccessKeyId, _tenant.SecretAccessKey);
            return request;
        }
        await AssertS3ErrorAsync(Upload([("x-amz-checksum-crc32", "AAAAAA=="), ("x-amz-checksum-crc32", right)], null), HttpStatusCode.BadRequest, "MalformedTrailerError");
        await AssertS3ErrorAsync(Upload([("x-amz-checksum-crc32", right)], "SHA256"), HttpStatusCode.BadRequest, "InvalidRequest");
        await Assert.ThrowsAnyAsync<AmazonS3Exception>(() => _s3.GetObjectMetadataAsync("shapes", "twice"));
        using var good = await _http.SendAsync(Upload([("x-amz-checksum-crc32", right)], "CRC32"));
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
    }

    /// <summary>
    /// botocore's way: Expect: 100-continue, and the body only once the server asks. A refusal before
    /// that must close the connection, or the next request's first bytes are read as this body.
    /// </summary>
    [Fact]
    public async Task A_refusal_before_the_body_is_asked_for_closes_the_connection()
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(_engine.S3Url.Host, _engine.S3Url.Port);
        var stream = socket.GetStream();
        var host = _engine.S3Url.Authority;
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"PUT /no-such-bucket-zz/x HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"));
        var answer = await ReadResponseAsync(stream);
        Assert.StartsWith("HTTP/1.1 403", answer);
        Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);

        // A body read to its end keeps the connection: what the SDKs send on every upload.
        using var client = new HttpClient();
        client.DefaultRequestHeaders.ExpectContinue = true;
        var body = Utf8("kept alive");
        using var put = await client.SendAsync(Signed(HttpMethod.Put, "/shapes/expect", body));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.NotEqual(true, put.Headers.ConnectionClose);

        // The management API shares the listener's rules.
        using var api = new TcpClient();
        await api.ConnectAsync(_engine.Engine.Url.Host, _engine.Engine.Url.Port);
        var apiStream = api.GetStream();
        await apiStream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /object-storage/enable HTTP/1.1\r\nHost: {_engine.Engine.Url.Authority}\r\nAuthorization: Bearer tpk_wrong\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"));
        var refused = await ReadResponseAsync(apiStream);
        Assert.StartsWith("HTTP/1.1 401", refused);
        Assert.Contains("Connection: close", refused, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// One response off a raw connection: the head, then Content-Length bytes of body. (Kestrel
    /// still waits a few seconds for the body it never asked for before it drops the connection,
    /// so reading to the close would only time that.)
    /// </summary>
    private static async Task<string> ReadResponseAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var all = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            Assert.True(read > 0, "the connection closed before a whole response: " + Encoding.ASCII.GetString(all.ToArray()));
            all.AddRange(buffer.AsSpan(0, read));
            var text = Encoding.ASCII.GetString(all.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
                continue;
            var length = System.Text.RegularExpressions.Regex.Match(text[..end], @"(?im)^content-length:\s*(\d+)");
            if (all.Count >= end + 4 + (length.Success ? int.Parse(length.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0))
                return text;
        }
    }
}
