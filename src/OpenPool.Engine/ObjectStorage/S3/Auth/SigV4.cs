using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>
/// The pieces of AWS Signature Version 4 the S3 endpoint recomputes: canonical URI, query and
/// headers, the canonical request, the string to sign, the signing key and the chunk and trailer
/// strings to sign of aws-chunked uploads. Pure functions, so they are tested against AWS's
/// published example values.
/// </summary>
internal static class SigV4
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string ChunkAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD";
    public const string TrailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER";
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";
    public const string StreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    public const string StreamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
    public const string StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    public const string EmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    public const string Service = "s3";
    public const string Terminator = "aws4_request";

    /// <summary>
    /// The canonical URI of a raw request path. S3 does not normalise or double-encode: each segment
    /// (split on a literal '/', so an encoded <c>%2F</c> stays inside its segment) is decoded once and
    /// re-encoded per AWS's rules, which turns any valid client encoding (lower-case hex, unencoded
    /// sub-delimiters) into the one form the client hashed.
    /// </summary>
    public static string CanonicalUri(string rawPath)
    {
        if (rawPath.Length == 0)
            return "/";
        var sb = new StringBuilder(rawPath.Length + 16);
        var first = true;
        foreach (var segment in rawPath.Split('/'))
        {
            if (!first)
                sb.Append('/');
            first = false;
            AppendEncoded(sb, PercentDecode(segment), encodeSlash: true);
        }
        var result = sb.ToString();
        return result.StartsWith('/') ? result : "/" + result;
    }

    /// <summary>
    /// The canonical query string: every parameter decoded once and re-encoded, sorted by name then
    /// value (ordinal, on the encoded form), <paramref name="exclude"/> left out (the presigned
    /// <c>X-Amz-Signature</c>). A parameter without '=' has an empty value.
    /// </summary>
    public static string CanonicalQuery(string rawQuery, string? exclude = null)
    {
        var pairs = new List<(string Name, string Value)>();
        foreach (var (name, value) in ParseQuery(rawQuery))
        {
            if (exclude is not null && name == exclude)
                continue;
            pairs.Add((Encode(name), Encode(value)));
        }
        pairs.Sort((a, b) =>
        {
            var c = string.CompareOrdinal(a.Name, b.Name);
            return c != 0 ? c : string.CompareOrdinal(a.Value, b.Value);
        });
        return string.Join('&', pairs.Select(p => p.Name + "=" + p.Value));
    }

    /// <summary>The raw query's parameters, percent-decoded once ('+' is a literal plus, as S3 reads it).</summary>
    public static IEnumerable<(string Name, string Value)> ParseQuery(string rawQuery)
    {
        var query = rawQuery.StartsWith('?') ? rawQuery[1..] : rawQuery;
        if (query.Length == 0)
            yield break;
        foreach (var part in query.Split('&'))
        {
            if (part.Length == 0)
                continue;
            var eq = part.IndexOf('=');
            yield return eq < 0
                ? (PercentDecode(part), "")
                : (PercentDecode(part[..eq]), PercentDecode(part[(eq + 1)..]));
        }
    }

    /// <summary>A header value as SigV4 canonicalises it: trimmed, runs of spaces collapsed to one.</summary>
    public static string CanonicalHeaderValue(string value)
    {
        var trimmed = value.Trim();
        if (!trimmed.Contains("  ", StringComparison.Ordinal) && !trimmed.Contains('\t'))
            return trimmed;
        var sb = new StringBuilder(trimmed.Length);
        var space = false;
        foreach (var c in trimmed)
        {
            if (c is ' ' or '\t')
            {
                if (!space)
                    sb.Append(' ');
                space = true;
            }
            else
            {
                sb.Append(c);
                space = false;
            }
        }
        return sb.ToString();
    }

    /// <summary>The canonical request; <paramref name="headers"/> are (lower-case name, canonical value) in signed order.</summary>
    public static string CanonicalRequest(
        string method, string canonicalUri, string canonicalQuery,
        IReadOnlyList<(string Name, string Value)> headers, string signedHeaders, string hashedPayload)
    {
        var sb = new StringBuilder(256);
        sb.Append(method).Append('\n');
        sb.Append(canonicalUri).Append('\n');
        sb.Append(canonicalQuery).Append('\n');
        foreach (var (name, value) in headers)
            sb.Append(name).Append(':').Append(value).Append('\n');
        sb.Append('\n');
        sb.Append(signedHeaders).Append('\n');
        sb.Append(hashedPayload);
        return sb.ToString();
    }

    public static string Scope(string date, string region) => $"{date}/{region}/{Service}/{Terminator}";

    public static string StringToSign(string amzDate, string scope, string canonicalRequest) =>
        $"{Algorithm}\n{amzDate}\n{scope}\n{HexSha256(canonicalRequest)}";

    public static string ChunkStringToSign(string amzDate, string scope, string previousSignature, string chunkSha256Hex) =>
        $"{ChunkAlgorithm}\n{amzDate}\n{scope}\n{previousSignature}\n{EmptySha256}\n{chunkSha256Hex}";

    public static string TrailerStringToSign(string amzDate, string scope, string previousSignature, string trailerSha256Hex) =>
        $"{TrailerAlgorithm}\n{amzDate}\n{scope}\n{previousSignature}\n{trailerSha256Hex}";

    public static byte[] SigningKey(string secretAccessKey, string date, string region)
    {
        var kDate = HmacSha256(Encoding.UTF8.GetBytes("AWS4" + secretAccessKey), date);
        var kRegion = HmacSha256(kDate, region);
        var kService = HmacSha256(kRegion, Service);
        return HmacSha256(kService, Terminator);
    }

    /// <summary>The lower-case hex signature of <paramref name="stringToSign"/>.</summary>
    public static string Sign(byte[] signingKey, string stringToSign) =>
        Convert.ToHexStringLower(HmacSha256(signingKey, stringToSign));

    /// <summary>
    /// Compares a computed signature with the one the client sent in constant time, so the time an
    /// answer takes tells an attacker nothing about how many leading characters were right.
    /// </summary>
    public static bool SignatureEquals(string computed, string provided)
    {
        var a = Encoding.ASCII.GetBytes(computed);
        var b = Encoding.ASCII.GetBytes(provided.ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(a, b);
    }

    public static string HexSha256(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));

    public static bool IsHexSha256(string value) =>
        value.Length == 64 && value.All(char.IsAsciiHexDigit);

    private static byte[] HmacSha256(byte[] key, string data) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(data));

    /// <summary>URI-encodes per AWS: unreserved characters as they are, every other UTF-8 byte as upper-case %XX.</summary>
    public static string Encode(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        AppendEncoded(sb, value, encodeSlash: true);
        return sb.ToString();
    }

    private static void AppendEncoded(StringBuilder sb, string value, bool encodeSlash)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        var rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            var n = Encoding.UTF8.GetBytes(value, rented);
            foreach (var b in rented.AsSpan(0, n))
            {
                var c = (char)b;
                if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~' || (c == '/' && !encodeSlash))
                    sb.Append(c);
                else
                    sb.Append('%').Append(HexUpper[b >> 4]).Append(HexUpper[b & 0xF]);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private const string HexUpper = "0123456789ABCDEF";

    /// <summary>
    /// Decodes %XX escapes once into UTF-8 bytes; a '%' not followed by two hex digits stays literal
    /// (then re-encoded as %25), as a lenient server must rather than fail the whole request.
    /// </summary>
    public static string PercentDecode(string value)
    {
        if (!value.Contains('%'))
            return value;
        var bytes = new List<byte>(value.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%' && i + 2 < value.Length
                && char.IsAsciiHexDigit(value[i + 1]) && char.IsAsciiHexDigit(value[i + 2]))
            {
                bytes.Add((byte)((HexValue(value[i + 1]) << 4) | HexValue(value[i + 2])));
                i += 2;
            }
            else
            {
                var rune = char.IsSurrogatePair(value, i) ? new Rune(value[i], value[i + 1]) : new Rune(char.IsSurrogate(c) ? '\uFFFD' : c);
                if (rune.Utf16SequenceLength == 2)
                    i++;
                var n = rune.EncodeToUtf8(utf8);
                for (var k = 0; k < n; k++)
                    bytes.Add(utf8[k]);
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
