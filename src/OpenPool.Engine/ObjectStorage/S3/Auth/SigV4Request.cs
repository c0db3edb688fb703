using System.Globalization;

namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>
/// What a request claims about its SigV4 signature, from the Authorization header or from a
/// presigned URL's query parameters, before anything is checked against a key.
/// </summary>
internal sealed record SigV4Request(
    bool Presigned,
    string AccessKeyId,
    string Date,
    string Region,
    string Service,
    string Terminator,
    string SignedHeaders,
    IReadOnlyList<string> SignedHeaderNames,
    string Signature,
    string AmzDate,
    DateTimeOffset RequestTime,
    int? ExpiresSeconds)
{
    public const int MaxPresignSeconds = 7 * 24 * 3600;

    public string Scope => $"{Date}/{Region}/{Service}/{Terminator}";

    /// <summary>Parses <c>AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…</c>.</summary>
    public static SigV4Request FromHeader(string authorization, string? amzDate)
    {
        var space = authorization.IndexOf(' ');
        var algorithm = space < 0 ? authorization : authorization[..space];
        if (algorithm != SigV4.Algorithm)
            throw SigV4Errors.UnsupportedMechanism();

        string? credential = null, signedHeaders = null, signature = null;
        foreach (var part in authorization[(space + 1)..].Split(','))
        {
            var item = part.Trim();
            var eq = item.IndexOf('=');
            if (eq <= 0)
                throw SigV4Errors.HeaderMalformed($"the authorization component \"{item}\" is malformed.");
            var value = item[(eq + 1)..].Trim();
            switch (item[..eq].Trim())
            {
                case "Credential": credential = value; break;
                case "SignedHeaders": signedHeaders = value; break;
                case "Signature": signature = value; break;
                default:
                    throw SigV4Errors.HeaderMalformed($"the authorization component \"{item}\" is malformed.");
            }
        }
        if (credential is null || signedHeaders is null || signature is null)
            throw SigV4Errors.HeaderMalformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.");

        var parts = credential.Split('/');
        if (parts.Length != 5 || parts.Any(p => p.Length == 0))
            throw SigV4Errors.HeaderMalformed("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
        if (amzDate is null || !TryParseAmzDate(amzDate, out var time))
            throw SigV4Errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header");
        if (parts[1] != amzDate[..8])
            throw SigV4Errors.HeaderMalformed($"Invalid credential date \"{parts[1]}\". This date is not the same as X-Amz-Date: \"{amzDate[..8]}\".");
        if (!IsHexSignature(signature))
            throw SigV4Errors.SignatureDoesNotMatch();

        return new SigV4Request(false, parts[0], parts[1], parts[2], parts[3], parts[4],
            signedHeaders, SplitSignedHeaders(signedHeaders), signature, amzDate, time, null);
    }

    /// <summary>Parses a presigned URL's <c>X-Amz-*</c> query parameters (already percent-decoded).</summary>
    public static SigV4Request FromQuery(IReadOnlyDictionary<string, string> query)
    {
        if (query.GetValueOrDefault("X-Amz-Algorithm") != SigV4.Algorithm)
            throw SigV4Errors.QueryMalformed("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
        if (!query.TryGetValue("X-Amz-Credential", out var credential) || !query.TryGetValue("X-Amz-Signature", out var signature)
            || !query.TryGetValue("X-Amz-Date", out var amzDate) || !query.TryGetValue("X-Amz-SignedHeaders", out var signedHeaders)
            || !query.TryGetValue("X-Amz-Expires", out var expiresText))
        {
            throw SigV4Errors.QueryMalformed("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
        }
        var parts = credential.Split('/');
        if (parts.Length != 5 || parts.Any(p => p.Length == 0))
            throw SigV4Errors.QueryMalformed("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
        if (!TryParseAmzDate(amzDate, out var time))
            throw SigV4Errors.QueryMalformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
        if (parts[1] != amzDate[..8])
            throw SigV4Errors.QueryMalformed($"Invalid credential date \"{parts[1]}\". This date is not the same as X-Amz-Date: \"{amzDate[..8]}\".");
        if (!long.TryParse(expiresText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var expires))
            throw SigV4Errors.QueryMalformed("X-Amz-Expires should be a number");
        if (expires < 0)
            throw SigV4Errors.QueryMalformed("X-Amz-Expires must be non-negative");
        if (expires > MaxPresignSeconds)
            throw SigV4Errors.QueryMalformed($"X-Amz-Expires must be less than a week (in seconds) that is {MaxPresignSeconds}");
        if (!IsHexSignature(signature))
            throw SigV4Errors.SignatureDoesNotMatch();

        return new SigV4Request(true, parts[0], parts[1], parts[2], parts[3], parts[4],
            signedHeaders, SplitSignedHeaders(signedHeaders), signature, amzDate, time, (int)expires);
    }

    private static string[] SplitSignedHeaders(string signedHeaders) =>
        signedHeaders.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(h => h.ToLowerInvariant()).ToArray();

    private static bool IsHexSignature(string signature) => SigV4.IsHexSha256(signature);

    public static bool TryParseAmzDate(string value, out DateTimeOffset time) =>
        DateTimeOffset.TryParseExact(value, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);
}
