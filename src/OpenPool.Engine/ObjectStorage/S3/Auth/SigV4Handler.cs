using System.Globalization;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace OpenPool.Engine.ObjectStorage.S3.Auth;

internal sealed class SigV4Options : AuthenticationSchemeOptions
{
    /// <summary>How far a request's time may be from the server's (S3: 15 minutes).</summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>
/// The "SigV4" authentication scheme of the S3 endpoint: verifies AWS Signature Version 4 in the
/// Authorization header or a presigned URL, then replaces the request body with one that verifies
/// the payload (signed hash or aws-chunked signatures) as it is read and sets
/// <see cref="IS3PayloadFeature"/>. Failures are <see cref="S3Exception"/>s, answered by the
/// challenge as S3's XML error body.
/// </summary>
internal sealed class SigV4Handler(
    IOptionsMonitor<SigV4Options> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TimeProvider time,
    IOptionsMonitor<ObjectStorageOptions> storage)
    : AuthenticationHandler<SigV4Options>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        try
        {
            return await AuthenticateRequestAsync();
        }
        catch (S3Exception e)
        {
            return AuthenticateResult.Fail(e);
        }
    }

    private async Task<AuthenticateResult> AuthenticateRequestAsync()
    {
        var request = Request;
        var (rawPath, rawQuery) = RawTarget();
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in SigV4.ParseQuery(rawQuery))
            query.TryAdd(name, value);

        var authorization = request.Headers.Authorization.ToString();
        var presigned = query.ContainsKey("X-Amz-Algorithm");
        if (authorization.Length > 0 && presigned)
            throw new S3Exception(400, "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified");
        if (authorization.Length == 0 && !presigned)
        {
            // A SigV2 presigned URL (AWSAccessKeyId=…&Signature=…) is a mechanism, just not one we take.
            if (query.ContainsKey("AWSAccessKeyId") || query.ContainsKey("Signature"))
                throw SigV4Errors.UnsupportedMechanism();
            return AuthenticateResult.NoResult();
        }

        var amzDateHeader = request.Headers["x-amz-date"].ToString();
        var claimed = presigned
            ? SigV4Request.FromQuery(query)
            : SigV4Request.FromHeader(authorization, amzDateHeader.Length > 0 ? amzDateHeader : null);
        CheckScope(claimed);

        var credentials = Context.RequestServices.GetRequiredService<IS3CredentialSource>();
        var credential = await credentials.FindAsync(claimed.AccessKeyId, Context.RequestAborted)
            ?? throw SigV4Errors.InvalidAccessKeyId(claimed.AccessKeyId);

        CheckTime(claimed);

        var contentSha256 = presigned
            ? query.GetValueOrDefault("X-Amz-Content-Sha256") ?? SigV4.UnsignedPayload
            : request.Headers["x-amz-content-sha256"].ToString();
        if (contentSha256.Length == 0)
            throw new S3Exception(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
        if (!IsKnownPayload(contentSha256))
            throw new S3Exception(400, "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
            {
                Details = [new("ArgumentName", "x-amz-content-sha256"), new("ArgumentValue", contentSha256)],
            };
        if (presigned && contentSha256.StartsWith("STREAMING-", StringComparison.Ordinal))
            throw new S3Exception(400, "InvalidRequest", "A presigned URL cannot carry an aws-chunked payload.");

        CheckSignedHeaders(claimed);

        var canonicalRequest = SigV4.CanonicalRequest(
            request.Method,
            SigV4.CanonicalUri(rawPath),
            SigV4.CanonicalQuery(rawQuery, presigned ? "X-Amz-Signature" : null),
            claimed.SignedHeaderNames.Select(name => (name, HeaderValue(name))).ToList(),
            claimed.SignedHeaders,
            contentSha256);
        var stringToSign = SigV4.StringToSign(claimed.AmzDate, claimed.Scope, canonicalRequest);
        var signingKey = SigV4.SigningKey(credential.SecretAccessKey, claimed.Date, claimed.Region);
        var signature = SigV4.Sign(signingKey, stringToSign);
        if (!SigV4.SignatureEquals(signature, claimed.Signature))
        {
            throw SigV4Errors.SignatureDoesNotMatch(
            [
                new("AWSAccessKeyId", claimed.AccessKeyId),
                new("StringToSign", stringToSign),
                new("SignatureProvided", claimed.Signature),
                new("CanonicalRequest", canonicalRequest),
            ]);
        }

        SetUpPayload(contentSha256, new ChunkSigning(signingKey, claimed.AmzDate, claimed.Scope, signature));

        var identity = new ClaimsIdentity(
            [new Claim(S3Claims.ScopeId, credential.ScopeId), new Claim(S3Claims.AccessKeyId, credential.AccessKeyId)],
            Scheme.Name);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    /// <summary>
    /// The request target exactly as the client sent it: the client signed its own encoding of the
    /// path, which the decoded <see cref="HttpRequest.Path"/> no longer has (e.g. <c>%2F</c> in a key).
    /// </summary>
    private (string Path, string Query) RawTarget()
    {
        var raw = Context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (!string.IsNullOrEmpty(raw) && raw[0] != '/' && Uri.TryCreate(raw, UriKind.Absolute, out var absolute))
            raw = absolute.PathAndQuery; // absolute-form (via a proxy)
        if (string.IsNullOrEmpty(raw) || raw[0] != '/')
            raw = (Request.PathBase + Request.Path).ToUriComponent() + Request.QueryString.ToUriComponent();
        var q = raw.IndexOf('?');
        return q < 0 ? (raw, "") : (raw[..q], raw[(q + 1)..]);
    }

    private void CheckScope(SigV4Request claimed)
    {
        var region = storage.CurrentValue.Region;
        if (claimed.Presigned)
        {
            if (claimed.Region != region)
                throw SigV4Errors.QueryMalformed($"Error parsing the X-Amz-Credential parameter; the region '{claimed.Region}' is wrong; expecting '{region}'");
            if (claimed.Service != SigV4.Service)
                throw SigV4Errors.QueryMalformed($"Error parsing the X-Amz-Credential parameter; incorrect service \"{claimed.Service}\". This endpoint belongs to \"{SigV4.Service}\".");
            if (claimed.Terminator != SigV4.Terminator)
                throw SigV4Errors.QueryMalformed($"Error parsing the X-Amz-Credential parameter; incorrect terminal \"{claimed.Terminator}\". This endpoint uses \"{SigV4.Terminator}\".");
            return;
        }
        if (claimed.Region != region)
            throw SigV4Errors.HeaderMalformed($"the region '{claimed.Region}' is wrong; expecting '{region}'", [new("Region", region)]);
        if (claimed.Service != SigV4.Service)
            throw SigV4Errors.HeaderMalformed($"incorrect service \"{claimed.Service}\". This endpoint belongs to \"{SigV4.Service}\".");
        if (claimed.Terminator != SigV4.Terminator)
            throw SigV4Errors.HeaderMalformed($"incorrect terminal \"{claimed.Terminator}\". This endpoint uses \"{SigV4.Terminator}\".");
    }

    private void CheckTime(SigV4Request claimed)
    {
        var now = time.GetUtcNow();
        var skew = Options.MaxClockSkew;
        if (claimed.Presigned)
        {
            if (claimed.RequestTime - now > skew)
                throw SigV4Errors.AccessDenied("Request is not valid yet");
            var expiresAt = claimed.RequestTime.AddSeconds(claimed.ExpiresSeconds!.Value);
            if (now > expiresAt)
            {
                throw SigV4Errors.AccessDenied("Request has expired",
                [
                    new("X-Amz-Expires", claimed.ExpiresSeconds.Value.ToString(CultureInfo.InvariantCulture)),
                    new("Expires", expiresAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)),
                    new("ServerTime", now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)),
                ]);
            }
            return;
        }
        if ((claimed.RequestTime - now).Duration() > skew)
        {
            throw new S3Exception(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
            {
                Details =
                [
                    new("RequestTime", claimed.AmzDate),
                    new("ServerTime", now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)),
                    new("MaxAllowedSkewMilliseconds", ((long)skew.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)),
                ],
            };
        }
    }

    /// <summary>
    /// Host must be signed (else a signature could be replayed against another endpoint) and so
    /// must every <c>x-amz-*</c> header, as S3 requires: an unsigned one could be added by whoever
    /// holds a presigned URL or sits in the path, and would change what the request does.
    /// </summary>
    private void CheckSignedHeaders(SigV4Request claimed)
    {
        var signed = claimed.SignedHeaderNames.ToHashSet(StringComparer.Ordinal);
        if (!signed.Contains("host"))
            throw claimed.Presigned
                ? SigV4Errors.QueryMalformed("X-Amz-SignedHeaders must include the host header.")
                : SigV4Errors.HeaderMalformed("the SignedHeaders must include the host header.");
        var unsigned = Request.Headers.Keys
            .Select(k => k.ToLowerInvariant())
            .Where(k => k.StartsWith("x-amz-", StringComparison.Ordinal) && !signed.Contains(k))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (unsigned.Count > 0)
            throw SigV4Errors.AccessDenied("There were headers present in the request which were not signed",
                [new("HeadersNotSigned", string.Join(", ", unsigned))]);
    }

    private string HeaderValue(string name) =>
        string.Join(',', Request.Headers[name].Select(v => SigV4.CanonicalHeaderValue(v ?? "")));

    private static bool IsKnownPayload(string contentSha256) =>
        contentSha256 is SigV4.UnsignedPayload or SigV4.StreamingSigned or SigV4.StreamingSignedTrailer or SigV4.StreamingUnsignedTrailer
        || SigV4.IsHexSha256(contentSha256);

    private void SetUpPayload(string contentSha256, ChunkSigning signing)
    {
        var request = Request;
        long? decodedLength = request.ContentLength;
        var streaming = contentSha256.StartsWith("STREAMING-", StringComparison.Ordinal);
        if (streaming)
        {
            var declared = request.Headers["x-amz-decoded-content-length"].ToString();
            decodedLength = null;
            if (declared.Length > 0)
            {
                if (!long.TryParse(declared, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                    throw new S3Exception(400, "InvalidArgument", "x-amz-decoded-content-length is not a number.");
                decodedLength = value;
            }
        }
        var feature = new S3PayloadFeature(contentSha256, decodedLength);
        Context.Features.Set<IS3PayloadFeature>(feature);

        switch (contentSha256)
        {
            case SigV4.UnsignedPayload:
                break;
            case SigV4.StreamingSigned:
            case SigV4.StreamingSignedTrailer:
            case SigV4.StreamingUnsignedTrailer:
                request.Body = new AwsChunkedStream(
                    request.Body,
                    contentSha256 == SigV4.StreamingUnsignedTrailer ? null : signing,
                    trailers: contentSha256 != SigV4.StreamingSigned,
                    decodedLength,
                    feature.TrailerSink);
                // What follows sees the object as stored: its length, and its own content coding
                // without the aws-chunked transfer framing.
                request.ContentLength = decodedLength;
                var encodings = request.Headers.ContentEncoding.ToString()
                    .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Where(e => !e.Equals("aws-chunked", StringComparison.OrdinalIgnoreCase))
                    .ToArray();
                if (encodings.Length == 0)
                    request.Headers.Remove("Content-Encoding");
                else
                    request.Headers.ContentEncoding = string.Join(',', encodings);
                break;
            default:
                request.Body = new Sha256VerifyingStream(request.Body, contentSha256, request.ContentLength);
                break;
        }
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        await S3ErrorXml.WriteAsync(Context, result.Failure as S3Exception ?? SigV4Errors.AccessDenied());
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        S3ErrorXml.WriteAsync(Context, SigV4Errors.AccessDenied());
}
