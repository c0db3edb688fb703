using System.Net;
using System.Text;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// SigV4's pieces against the example values AWS publishes for S3 (access key
/// AKIAIOSFODNN7EXAMPLE, 2013-05-24, us-east-1): header-signed GET and PUT, a bucket query,
/// a presigned URL, and the chunked upload with its chain of chunk signatures. The same requests
/// also go through the handler on a real Kestrel, so the wiring is checked against them too.
/// </summary>
public sealed class SigV4VectorTests
{
    private static readonly DateTimeOffset ExampleTime = new(2013, 5, 24, 0, 0, 0, TimeSpan.Zero);
    private const string Date = "20130524";
    private const string AmzDate = "20130524T000000Z";

    private static string Signature(string canonicalRequest)
    {
        var key = SigV4.SigningKey(SigV4TestHost.ExampleSecretKey, Date, "us-east-1");
        return SigV4.Sign(key, SigV4.StringToSign(AmzDate, SigV4.Scope(Date, "us-east-1"), canonicalRequest));
    }

    [Fact]
    public void Get_object_example_canonical_request_string_to_sign_and_signature()
    {
        var canonical = SigV4.CanonicalRequest("GET", SigV4.CanonicalUri("/test.txt"), SigV4.CanonicalQuery(""),
            [
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", SigV4.EmptySha256),
                ("x-amz-date", AmzDate),
            ],
            "host;range;x-amz-content-sha256;x-amz-date", SigV4.EmptySha256);

        Assert.Equal(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n" +
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", canonical);
        Assert.Equal(
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" +
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
            SigV4.StringToSign(AmzDate, SigV4.Scope(Date, "us-east-1"), canonical));
        Assert.Equal("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", Signature(canonical));
    }

    [Fact]
    public void Put_object_example_encodes_the_dollar_in_the_key()
    {
        var payload = SigV4.HexSha256("Welcome to Amazon S3.");
        Assert.Equal("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", payload);
        Assert.Equal("/test%24file.text", SigV4.CanonicalUri("/test$file.text"));
        Assert.Equal("/test%24file.text", SigV4.CanonicalUri("/test%24file.text"));

        var canonical = SigV4.CanonicalRequest("PUT", SigV4.CanonicalUri("/test$file.text"), "",
            [
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", payload),
                ("x-amz-date", AmzDate),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", payload);
        Assert.Equal("98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd", Signature(canonical));
    }

    [Theory]
    [InlineData("lifecycle", "lifecycle=", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")]
    [InlineData("prefix=J&max-keys=2", "max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")]
    public void Bucket_examples_sort_the_query_and_give_empty_values_an_equals_sign(string rawQuery, string expectedQuery, string expectedSignature)
    {
        var query = SigV4.CanonicalQuery(rawQuery);
        Assert.Equal(expectedQuery, query);
        var canonical = SigV4.CanonicalRequest("GET", "/", query,
            [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", SigV4.EmptySha256), ("x-amz-date", AmzDate)],
            "host;x-amz-content-sha256;x-amz-date", SigV4.EmptySha256);
        Assert.Equal(expectedSignature, Signature(canonical));
    }

    private const string PresignedQuery =
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    [Fact]
    public void Presigned_example_leaves_the_signature_out_of_the_canonical_query()
    {
        var query = SigV4.CanonicalQuery(PresignedQuery, exclude: "X-Amz-Signature");
        Assert.DoesNotContain("X-Amz-Signature", query, StringComparison.Ordinal);
        var canonical = SigV4.CanonicalRequest("GET", "/test.txt", query,
            [("host", "examplebucket.s3.amazonaws.com")], "host", SigV4.UnsignedPayload);
        Assert.Equal("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", Signature(canonical));
    }

    [Theory]
    [InlineData("/a b/c+d", "/a%20b/c%2Bd")]
    [InlineData("/photos/2024%2F01/x", "/photos/2024%2F01/x")]
    [InlineData("/k%c3%a9y", "/k%C3%A9y")]
    [InlineData("/kéy~(1)!", "/k%C3%A9y~%281%29%21")]
    [InlineData("", "/")]
    [InlineData("/bucket//double", "/bucket//double")]
    public void Canonical_uri_is_encoded_once_per_segment_and_never_normalised(string raw, string expected) =>
        Assert.Equal(expected, SigV4.CanonicalUri(raw));

    [Fact]
    public void Header_values_are_trimmed_and_inner_spaces_collapsed() =>
        Assert.Equal("a b c", SigV4.CanonicalHeaderValue("  a   b \t c  "));

    [Fact]
    public async Task The_handler_accepts_the_get_object_example()
    {
        await using var host = await SigV4TestHost.StartAsync(now: ExampleTime.AddMinutes(5));
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, host.Url + "/test.txt");
        request.Headers.Host = "examplebucket.s3.amazonaws.com";
        request.Headers.TryAddWithoutValidation("Range", "bytes=0-9");
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", SigV4.EmptySha256);
        request.Headers.TryAddWithoutValidation("x-amz-date", AmzDate);
        request.Headers.TryAddWithoutValidation("Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode); // authenticated; the host stores nothing there
        var seen = Assert.Single(host.Requests);
        Assert.Equal("org-example", seen.ScopeId);
        Assert.Equal(SigV4TestHost.ExampleAccessKey, seen.AccessKeyId);
    }

    [Fact]
    public async Task The_handler_accepts_the_presigned_example_until_it_expires()
    {
        await using var host = await SigV4TestHost.StartAsync(now: ExampleTime.AddHours(23));
        using var http = new HttpClient();
        async Task<HttpResponseMessage> Get()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, host.Url + "/test.txt?" + PresignedQuery);
            request.Headers.Host = "examplebucket.s3.amazonaws.com";
            return await http.SendAsync(request);
        }

        using (var ok = await Get())
            Assert.Equal(HttpStatusCode.NotFound, ok.StatusCode);
        Assert.Equal("org-example", Assert.Single(host.Requests).ScopeId);

        host.Clock.SetUtcNow(ExampleTime.AddSeconds(86400 + 1));
        using var expired = await Get();
        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
        var xml = await expired.Content.ReadAsStringAsync();
        Assert.Contains("<Code>AccessDenied</Code><Message>Request has expired</Message>", xml, StringComparison.Ordinal);
        Assert.Single(host.Requests);
    }

    /// <summary>AWS's chunked-upload example: 66,560 bytes of 'a' in a 64 KiB and a 1 KiB chunk.</summary>
    private static (HttpRequestMessage Request, byte[] Body) ChunkedExample(string url)
    {
        var body = new MemoryStream();
        void Write(string s) => body.Write(Encoding.ASCII.GetBytes(s));
        Write("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        Write(new string('a', 65536) + "\r\n");
        Write("400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        Write(new string('a', 1024) + "\r\n");
        Write("0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        var bytes = body.ToArray();
        Assert.Equal(66824, bytes.Length);

        var request = new HttpRequestMessage(HttpMethod.Put, url + "/examplebucket/chunkObject.txt");
        request.Headers.Host = "s3.amazonaws.com";
        request.Headers.TryAddWithoutValidation("x-amz-date", AmzDate);
        request.Headers.TryAddWithoutValidation("x-amz-storage-class", "REDUCED_REDUNDANCY");
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", SigV4.StreamingSigned);
        request.Headers.TryAddWithoutValidation("x-amz-decoded-content-length", "66560");
        request.Headers.TryAddWithoutValidation("Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class," +
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
        return (request, bytes);
    }

    private static ByteArrayContent ChunkedContent(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentEncoding.Add("aws-chunked");
        return content;
    }

    [Fact]
    public async Task The_handler_decodes_the_chunked_upload_example()
    {
        await using var host = await SigV4TestHost.StartAsync(now: ExampleTime);
        using var http = new HttpClient();
        var (request, body) = ChunkedExample(host.Url);
        using (request)
        {
            request.Content = ChunkedContent(body);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        var seen = Assert.Single(host.Requests);
        Assert.Null(seen.Error);
        Assert.Equal(66560, seen.DecodedLength);
        Assert.Equal(SigV4.HexSha256(new string('a', 66560)), seen.DecodedSha256);
        Assert.Equal(66560, seen.ContentLength); // the decoded length, for what follows
        Assert.Equal("", seen.ContentEncoding); // aws-chunked is framing, not the object's encoding
    }

    [Theory]
    [InlineData(100)]    // inside the first chunk's data
    [InlineData(66000)]  // inside the second chunk's data
    public async Task A_tampered_chunk_is_SignatureDoesNotMatch(int offset)
    {
        await using var host = await SigV4TestHost.StartAsync(now: ExampleTime);
        using var http = new HttpClient();
        var (request, body) = ChunkedExample(host.Url);
        body[offset] = (byte)'b';
        using (request)
        {
            request.Content = ChunkedContent(body);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Contains("<Code>SignatureDoesNotMatch</Code>", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Equal("SignatureDoesNotMatch", Assert.Single(host.Requests).Error?.Code);
    }
}
