using System.Globalization;
using System.Text;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// Signs hand-made requests for the handler's negative cases (skew, tampered chunks, truncation).
/// The primitives it uses are pinned by AWS's published examples and real clients elsewhere; this
/// only assembles requests that real clients would not send.
/// </summary>
internal static class SigV4TestSigner
{
    public const string Region = "us-east-1";

    public sealed record Signed(string Signature, byte[] SigningKey, string AmzDate, string Scope);

    public static string AmzDate(DateTimeOffset when) => when.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    public static Signed SignHeaders(
        HttpRequestMessage request, string payloadHash, DateTimeOffset when,
        string accessKey = SigV4TestHost.AccessKey, string secret = SigV4TestHost.SecretKey, string region = Region)
    {
        var amzDate = AmzDate(when);
        var date = amzDate[..8];
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", payloadHash);
        var uri = request.RequestUri!;
        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["host"] = request.Headers.Host ?? uri.Authority,
        };
        foreach (var (name, values) in request.Headers)
        {
            if (name.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase))
                headers[name.ToLowerInvariant()] = string.Join(',', values.Select(SigV4.CanonicalHeaderValue));
        }
        if (request.Content is { } content)
        {
            _ = content.Headers.ContentLength; // computed on first look; it must be among the headers signed
            foreach (var (name, values) in content.Headers)
            {
                if (name is "Content-Length" or "Content-Encoding" or "Content-Type")
                    headers[name.ToLowerInvariant()] = string.Join(',', values.Select(SigV4.CanonicalHeaderValue));
            }
        }
        var signedHeaders = string.Join(';', headers.Keys);
        var canonical = SigV4.CanonicalRequest(
            request.Method.Method,
            SigV4.CanonicalUri(uri.GetComponents(UriComponents.Path | UriComponents.KeepDelimiter, UriFormat.UriEscaped)),
            SigV4.CanonicalQuery(uri.Query),
            headers.Select(h => (h.Key, h.Value)).ToList(),
            signedHeaders,
            payloadHash);
        var scope = SigV4.Scope(date, region);
        var key = SigV4.SigningKey(secret, date, region);
        var signature = SigV4.Sign(key, SigV4.StringToSign(amzDate, scope, canonical));
        request.Headers.TryAddWithoutValidation("Authorization",
            $"AWS4-HMAC-SHA256 Credential={accessKey}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
        return new Signed(signature, key, amzDate, scope);
    }

    /// <summary>An aws-chunked body; with <paramref name="signed"/> each chunk's signature chains from the seed.</summary>
    public static byte[] ChunkedBody(
        byte[] data, int chunkSize, Signed? signed, IReadOnlyList<(string Name, string Value)>? trailers = null)
    {
        using var body = new MemoryStream();
        var previous = signed?.Signature;
        void Chunk(ReadOnlySpan<byte> chunk)
        {
            var header = chunk.Length.ToString("x", CultureInfo.InvariantCulture);
            if (signed is not null)
            {
                var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(chunk));
                previous = SigV4.Sign(signed.SigningKey, SigV4.ChunkStringToSign(signed.AmzDate, signed.Scope, previous!, hash));
                header += ";chunk-signature=" + previous;
            }
            body.Write(Encoding.ASCII.GetBytes(header + "\r\n"));
            if (chunk.Length > 0)
                body.Write(chunk);
            if (chunk.Length > 0 || trailers is null)
                body.Write("\r\n"u8);
        }
        for (var offset = 0; offset < data.Length; offset += chunkSize)
            Chunk(data.AsSpan(offset, Math.Min(chunkSize, data.Length - offset)));
        Chunk([]);
        if (trailers is not null)
        {
            var canonical = new StringBuilder();
            foreach (var (name, value) in trailers)
            {
                body.Write(Encoding.ASCII.GetBytes($"{name}:{value}\r\n"));
                canonical.Append(name).Append(':').Append(value).Append('\n');
            }
            if (signed is not null)
            {
                var trailerSignature = SigV4.Sign(signed.SigningKey,
                    SigV4.TrailerStringToSign(signed.AmzDate, signed.Scope, previous!, SigV4.HexSha256(canonical.ToString())));
                body.Write(Encoding.ASCII.GetBytes($"x-amz-trailer-signature:{trailerSignature}\r\n"));
            }
            body.Write("\r\n"u8);
        }
        return body.ToArray();
    }
}
