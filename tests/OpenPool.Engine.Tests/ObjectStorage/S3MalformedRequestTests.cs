// S3's Content-MD5 is an MD5: the tests compute it to send it.
#pragma warning disable CA5351
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Amazon.S3;
using Amazon.S3.Model;
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
}
