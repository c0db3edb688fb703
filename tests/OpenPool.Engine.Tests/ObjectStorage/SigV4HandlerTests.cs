using System.Net;
using System.Security.Cryptography;
using System.Text;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// What the SigV4 scheme refuses, and how: S3's code, status and XML body for every way a
/// request can be unsigned, mis-signed, stale, expired, tampered or cut short.
/// </summary>
public sealed class SigV4HandlerTests : IAsyncLifetime, IDisposable
{
    private SigV4TestHost _host = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync() => _host = await SigV4TestHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    public void Dispose() => _http.Dispose();

    private DateTimeOffset Now => _host.Clock.GetUtcNow();

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private async Task<(HttpStatusCode Status, string Body)> Send(HttpRequestMessage request)
    {
        using (request)
        using (var response = await _http.SendAsync(request))
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static void AssertS3Error(string code, (HttpStatusCode Status, string Body) response, HttpStatusCode status)
    {
        Assert.Equal(status, response.Status);
        Assert.StartsWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", response.Body, StringComparison.Ordinal);
        Assert.Contains("<Error><Code>" + code + "</Code><Message>", response.Body, StringComparison.Ordinal);
        Assert.Contains("<RequestId>", response.Body, StringComparison.Ordinal);
    }

    private static string? Element(string xml, string name) => System.Xml.Linq.XDocument.Parse(xml).Root?.Element(name)?.Value;

    private HttpRequestMessage Put(string path, byte[] body, string? payloadHash = null, DateTimeOffset? at = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, _host.Url + path) { Content = new ByteArrayContent(body) };
        SigV4TestSigner.SignHeaders(request, payloadHash ?? Sha(body), at ?? Now);
        return request;
    }

    [Fact]
    public async Task No_authentication_is_AccessDenied()
    {
        AssertS3Error("AccessDenied", await Send(new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key")), HttpStatusCode.Forbidden);
        Assert.Empty(_host.Requests);
    }

    [Fact]
    public async Task A_signed_payload_reaches_the_endpoint_with_its_claims()
    {
        var body = Encoding.UTF8.GetBytes("signed payload");
        Assert.Equal(HttpStatusCode.OK, (await Send(Put("/bucket/key", body))).Status);
        var seen = Assert.Single(_host.Requests);
        Assert.Equal((SigV4TestHost.ScopeId, SigV4TestHost.AccessKey, Sha(body)), (seen.ScopeId, seen.AccessKeyId, seen.DecodedSha256));
    }

    [Fact]
    public async Task A_payload_that_does_not_match_its_hash_is_XAmzContentSHA256Mismatch()
    {
        var response = await Send(Put("/bucket/key", "actual"u8.ToArray(), payloadHash: SigV4.HexSha256("claimed")));
        AssertS3Error("XAmzContentSHA256Mismatch", response, HttpStatusCode.BadRequest);
        Assert.Equal("XAmzContentSHA256Mismatch", Assert.Single(_host.Requests).Error?.Code);
    }

    [Theory]
    [InlineData(-14, HttpStatusCode.OK)]
    [InlineData(14, HttpStatusCode.OK)]
    [InlineData(-16, HttpStatusCode.Forbidden)]
    [InlineData(16, HttpStatusCode.Forbidden)]
    public async Task Fifteen_minutes_of_clock_skew_either_way(int minutes, HttpStatusCode expected)
    {
        var response = await Send(Put("/bucket/key", "x"u8.ToArray(), at: Now.AddMinutes(minutes)));
        if (expected == HttpStatusCode.OK)
            Assert.Equal(HttpStatusCode.OK, response.Status);
        else
            AssertS3Error("RequestTimeTooSkewed", response, expected);
    }

    [Fact]
    public async Task A_wrong_secret_is_SignatureDoesNotMatch_with_the_string_to_sign()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key");
        SigV4TestSigner.SignHeaders(request, SigV4.EmptySha256, Now, secret: "wrong");
        var response = await Send(request);
        AssertS3Error("SignatureDoesNotMatch", response, HttpStatusCode.Forbidden);
        Assert.StartsWith("AWS4-HMAC-SHA256\n", Element(response.Body, "StringToSign"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_key_is_InvalidAccessKeyId()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key");
        SigV4TestSigner.SignHeaders(request, SigV4.EmptySha256, Now, accessKey: "AKIDUNKNOWN");
        AssertS3Error("InvalidAccessKeyId", await Send(request), HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_request_changed_after_signing_is_SignatureDoesNotMatch()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key");
        SigV4TestSigner.SignHeaders(request, SigV4.EmptySha256, Now);
        request.RequestUri = new Uri(_host.Url + "/bucket/other-key");
        AssertS3Error("SignatureDoesNotMatch", await Send(request), HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task An_unsigned_amz_header_is_AccessDenied()
    {
        var request = Put("/bucket/key", "x"u8.ToArray());
        request.Headers.TryAddWithoutValidation("x-amz-meta-added", "later");
        var response = await Send(request);
        AssertS3Error("AccessDenied", response, HttpStatusCode.Forbidden);
        Assert.Contains("<HeadersNotSigned>x-amz-meta-added</HeadersNotSigned>", response.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signing_for_another_region_names_the_expected_one()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key");
        SigV4TestSigner.SignHeaders(request, SigV4.EmptySha256, Now, region: "eu-central-1");
        var response = await Send(request);
        AssertS3Error("AuthorizationHeaderMalformed", response, HttpStatusCode.BadRequest);
        Assert.Contains("expecting 'us-east-1'", Element(response.Body, "Message"), StringComparison.Ordinal);
        Assert.Equal("us-east-1", Element(response.Body, "Region"));
    }

    [Theory]
    [InlineData("AWS4-HMAC-SHA256 Credential=AKIDOPENPOOLTEST0001/20250101/us-east-1/s3/aws4_request, SignedHeaders=host", "AuthorizationHeaderMalformed", 400)]
    [InlineData("AWS4-HMAC-SHA256 Credential=AKIDOPENPOOLTEST0001/us-east-1/s3, SignedHeaders=host, Signature=00", "AuthorizationHeaderMalformed", 400)]
    [InlineData("AWS4-HMAC-SHA256 garbage", "AuthorizationHeaderMalformed", 400)]
    [InlineData("AWS AKIDOPENPOOLTEST0001:c2lnbmF0dXJl", "InvalidRequest", 400)]
    [InlineData("Bearer abc", "InvalidRequest", 400)]
    public async Task A_malformed_authorization_header_is_refused(string authorization, string code, int status)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key");
        request.Headers.TryAddWithoutValidation("x-amz-date", SigV4TestSigner.AmzDate(Now));
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", SigV4.EmptySha256);
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        AssertS3Error(code, await Send(request), (HttpStatusCode)status);
    }

    [Fact]
    public async Task A_missing_content_sha256_is_InvalidRequest()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _host.Url + "/bucket/key");
        SigV4TestSigner.SignHeaders(request, SigV4.EmptySha256, Now);
        request.Headers.Remove("x-amz-content-sha256");
        AssertS3Error("InvalidRequest", await Send(request), HttpStatusCode.BadRequest);
    }

    private string Presign(string path, long expires, DateTimeOffset at, string region = "us-east-1")
    {
        var amzDate = SigV4TestSigner.AmzDate(at);
        var scope = SigV4.Scope(amzDate[..8], region);
        var query = $"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={Uri.EscapeDataString(SigV4TestHost.AccessKey + "/" + scope)}" +
            $"&X-Amz-Date={amzDate}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host";
        var host = new Uri(_host.Url).Authority;
        var canonical = SigV4.CanonicalRequest("GET", SigV4.CanonicalUri(path), SigV4.CanonicalQuery(query), [("host", host)], "host", SigV4.UnsignedPayload);
        var signature = SigV4.Sign(SigV4.SigningKey(SigV4TestHost.SecretKey, amzDate[..8], region), SigV4.StringToSign(amzDate, scope, canonical));
        return $"{_host.Url}{path}?{query}&X-Amz-Signature={signature}";
    }

    [Fact]
    public async Task A_presigned_url_lasts_at_most_seven_days()
    {
        var start = DateTimeOffset.FromUnixTimeSeconds(Now.ToUnixTimeSeconds()); // X-Amz-Date has whole seconds
        var week = Presign("/bucket/key", 604800, start);
        var tooLong = Presign("/bucket/key", 604801, start);

        AssertS3Error("AuthorizationQueryParametersError", await Send(new HttpRequestMessage(HttpMethod.Get, tooLong)), HttpStatusCode.BadRequest);

        _host.Clock.SetUtcNow(start.AddDays(7));
        Assert.Equal(HttpStatusCode.NotFound, (await Send(new HttpRequestMessage(HttpMethod.Get, week))).Status); // valid: the host's 404
        _host.Clock.SetUtcNow(start.AddDays(7).AddSeconds(1));
        var expired = await Send(new HttpRequestMessage(HttpMethod.Get, week));
        AssertS3Error("AccessDenied", expired, HttpStatusCode.Forbidden);
        Assert.Contains("<Message>Request has expired</Message>", expired.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_presigned_url_for_another_region_or_with_a_changed_query_is_refused()
    {
        AssertS3Error("AuthorizationQueryParametersError",
            await Send(new HttpRequestMessage(HttpMethod.Get, Presign("/bucket/key", 60, Now, region: "ap-south-1"))), HttpStatusCode.BadRequest);
        AssertS3Error("SignatureDoesNotMatch",
            await Send(new HttpRequestMessage(HttpMethod.Get, Presign("/bucket/key", 60, Now) + "&versionId=1")), HttpStatusCode.Forbidden);
        AssertS3Error("SignatureDoesNotMatch",
            await Send(new HttpRequestMessage(HttpMethod.Get, Presign("/bucket/key", 60, Now).Replace("X-Amz-Expires=60", "X-Amz-Expires=600", StringComparison.Ordinal))),
            HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_presigned_url_with_an_authorization_header_too_is_InvalidArgument()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, Presign("/bucket/key", 60, Now));
        request.Headers.TryAddWithoutValidation("Authorization", "AWS4-HMAC-SHA256 Credential=x");
        AssertS3Error("InvalidArgument", await Send(request), HttpStatusCode.BadRequest);
    }

    // aws-chunked bodies, built by the test signer (the AWS example and AWSSDK.S3 pin the real thing).

    private HttpRequestMessage Chunked(
        string mode, byte[] data, int chunkSize, Func<SigV4TestSigner.Signed?, byte[]> body, long? decodedLength = null,
        string? trailerNames = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, _host.Url + "/bucket/chunked");
        request.Headers.TryAddWithoutValidation("x-amz-decoded-content-length", (decodedLength ?? data.Length).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (trailerNames is not null)
            request.Headers.TryAddWithoutValidation("x-amz-trailer", trailerNames);
        // The signature covers Content-Length, so the body's length must be known before signing: sign
        // once to learn the seed, build the body, then sign the request with its real length.
        var placeholder = new SigV4TestSigner.Signed("", [], "", "");
        var length = body(mode == SigV4.StreamingUnsignedTrailer ? null : placeholder with { SigningKey = new byte[32] }).Length;
        var content = new ByteArrayContent(new byte[length]);
        content.Headers.ContentEncoding.Add("aws-chunked");
        request.Content = content;
        var signed = SigV4TestSigner.SignHeaders(request, mode, Now);
        var bytes = body(mode == SigV4.StreamingUnsignedTrailer ? null : signed);
        Assert.Equal(length, bytes.Length);
        var real = new ByteArrayContent(bytes);
        real.Headers.ContentEncoding.Add("aws-chunked");
        request.Content = real;
        return request;
    }

    private static byte[] Data(int n)
    {
        var bytes = new byte[n];
        new Random(n).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public async Task Unsigned_chunks_with_a_trailing_checksum()
    {
        var data = Data(100_000);
        var crc = "AAAAAA==";
        var response = await Send(Chunked(SigV4.StreamingUnsignedTrailer, data, 8192,
            s => SigV4TestSigner.ChunkedBody(data, 8192, s, [("x-amz-checksum-crc32", crc)]), trailerNames: "x-amz-checksum-crc32"));
        Assert.Equal(HttpStatusCode.OK, response.Status);
        var seen = Assert.Single(_host.Requests);
        Assert.Equal(Sha(data), seen.DecodedSha256);
        Assert.Equal(crc, seen.Trailers["x-amz-checksum-crc32"]);
    }

    [Fact]
    public async Task Signed_chunks_with_a_signed_trailer_and_a_tampered_trailer()
    {
        var data = Data(20_000);
        var ok = await Send(Chunked(SigV4.StreamingSignedTrailer, data, 8192,
            s => SigV4TestSigner.ChunkedBody(data, 8192, s, [("x-amz-checksum-crc32c", "sOO8/Q==")])));
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal("sOO8/Q==", _host.Last().Trailers["x-amz-checksum-crc32c"]);

        var tampered = await Send(Chunked(SigV4.StreamingSignedTrailer, data, 8192, s =>
        {
            var body = Encoding.Latin1.GetString(SigV4TestSigner.ChunkedBody(data, 8192, s, [("x-amz-checksum-crc32c", "sOO8/Q==")]).AsSpan());
            return Encoding.Latin1.GetBytes(body.Replace("sOO8/Q==", "AAAA/Q==", StringComparison.Ordinal));
        }));
        AssertS3Error("SignatureDoesNotMatch", tampered, HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Chunks_in_another_order_break_the_signature_chain()
    {
        var data = Data(3 * 8192);
        Array.Fill<byte>(data, 1, 0, 8192);
        Array.Fill<byte>(data, 2, 8192, 8192);
        var response = await Send(Chunked(SigV4.StreamingSigned, data, 8192, s =>
        {
            // Each chunk carries a valid signature of its own bytes, but chained to the wrong predecessor.
            var body = SigV4TestSigner.ChunkedBody(data, 8192, s);
            var header = body.AsSpan().IndexOf("\r\n"u8) + 2;
            var chunk = header + 8192 + 2;
            var swapped = body[chunk..(2 * chunk)].Concat(body[..chunk]).Concat(body[(2 * chunk)..]).ToArray();
            return swapped;
        }));
        AssertS3Error("SignatureDoesNotMatch", response, HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_truncated_chunked_body_is_IncompleteBody()
    {
        var data = Data(30_000);
        var response = await Send(Chunked(SigV4.StreamingSigned, data, 8192, s =>
        {
            var body = SigV4TestSigner.ChunkedBody(data, 8192, s);
            return body[..(body.Length - 200)]; // ends inside the last data chunk
        }));
        AssertS3Error("IncompleteBody", response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_decoded_length_that_is_not_the_chunks_total_is_refused()
    {
        var data = Data(10_000);
        AssertS3Error("IncompleteBody", await Send(Chunked(SigV4.StreamingSigned, data, 4096,
            s => SigV4TestSigner.ChunkedBody(data, 4096, s), decodedLength: 10_001)), HttpStatusCode.BadRequest);
        AssertS3Error("InvalidRequest", await Send(Chunked(SigV4.StreamingSigned, data, 4096,
            s => SigV4TestSigner.ChunkedBody(data, 4096, s), decodedLength: 9_999)), HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("fffffffffffff;chunk-signature=00\r\n")]   // a size no client sends
    [InlineData("zz;chunk-signature=00\r\n")]              // not hexadecimal
    [InlineData("10\r\n0123456789abcdef\r\n")]             // a signed upload's chunk without its signature
    public async Task Absurd_chunk_headers_are_InvalidRequest_not_allocations(string start)
    {
        var data = Data(16);
        var response = await Send(Chunked(SigV4.StreamingSigned, data, 16, _ => Encoding.ASCII.GetBytes(start), decodedLength: long.MaxValue / 2));
        AssertS3Error("InvalidRequest", response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_endless_header_line_is_refused_after_a_few_kilobytes()
    {
        var data = Data(16);
        var response = await Send(Chunked(SigV4.StreamingUnsignedTrailer, data, 16, _ => Encoding.ASCII.GetBytes(new string('1', 100_000))));
        AssertS3Error("InvalidRequest", response, HttpStatusCode.BadRequest);
        Assert.Contains("longer than 4096", response.Body, StringComparison.Ordinal);
    }
}
