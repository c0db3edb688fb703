using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// The bucket and key a request addresses. Read from the raw request target, not the decoded path:
/// Kestrel keeps <c>%2F</c> encoded and collapses dot segments, while in S3 a key is exactly the
/// bytes sent (<c>a/../b</c> is a key of its own). Virtual-hosted style (<c>bucket.domain</c>) when
/// <see cref="ObjectStorageOptions.Domain"/> is set, path style always.
/// </summary>
internal sealed record S3Request(string? Bucket, string? Key)
{
    public const int MaxKeyBytes = 1024;

    public static S3Request Parse(HttpContext context, string? domain)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/";
        var query = raw.IndexOf('?', StringComparison.Ordinal);
        var path = query >= 0 ? raw[..query] : raw;
        if (path.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || path.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            path = new Uri(path).AbsolutePath; // absolute-form request target
        var decoded = Decode(path);
        if (decoded.StartsWith('/'))
            decoded = decoded[1..];

        string? hostBucket = null;
        if (!string.IsNullOrEmpty(domain))
        {
            var host = context.Request.Host.Host.ToLowerInvariant();
            var suffix = "." + domain.ToLowerInvariant().TrimStart('.');
            if (host.EndsWith(suffix, StringComparison.Ordinal) && host.Length > suffix.Length)
                hostBucket = host[..^suffix.Length];
        }
        if (hostBucket is not null)
            return new S3Request(hostBucket, decoded.Length == 0 ? null : Checked(decoded));
        if (decoded.Length == 0)
            return new S3Request(null, null);
        var slash = decoded.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
            return new S3Request(decoded, null);
        var key = decoded[(slash + 1)..];
        return new S3Request(decoded[..slash], key.Length == 0 ? null : Checked(key));
    }

    /// <summary>Keys are at most 1,024 bytes of UTF-8 and never hold NUL (which no database text column keeps).</summary>
    public static string Checked(string key)
    {
        if (Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
            throw new S3Exception(400, "KeyTooLongError", "Your key is too long") { Details = [new("Size", Encoding.UTF8.GetByteCount(key).ToString(System.Globalization.CultureInfo.InvariantCulture)), new("MaxSizeAllowed", "1024")] };
        if (key.Contains('\0'))
            throw S3Errors.InvalidArgument("Object keys must not contain the NUL character.", "key", "");
        return key;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Percent-decoding into UTF-8 bytes, strictly: bytes that are not UTF-8 are a bad URI.</summary>
    public static string Decode(string value)
    {
        if (!value.Contains('%'))
            return value;
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '%' && i + 2 < value.Length && Uri.IsHexDigit(value[i + 1]) && Uri.IsHexDigit(value[i + 2]))
            {
                bytes.Add(Convert.ToByte(value.Substring(i + 1, 2), 16));
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(value[i].ToString()));
            }
        }
        try
        {
            return StrictUtf8.GetString(bytes.ToArray());
        }
        catch (DecoderFallbackException)
        {
            throw new S3Exception(400, "InvalidURI", "Couldn't parse the specified URI.");
        }
    }
}
