namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>The S3 errors SigV4 verification answers, with S3's codes, statuses and wording.</summary>
internal static class SigV4Errors
{
    public static S3Exception AccessDenied(string message = "Access Denied", IReadOnlyList<KeyValuePair<string, string>>? details = null) =>
        new(403, "AccessDenied", message) { Details = details ?? [] };

    public static S3Exception HeaderMalformed(string message, IReadOnlyList<KeyValuePair<string, string>>? details = null) =>
        new(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; " + message) { Details = details ?? [] };

    public static S3Exception QueryMalformed(string message) =>
        new(400, "AuthorizationQueryParametersError", message);

    public static S3Exception UnsupportedMechanism() =>
        new(400, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");

    public static S3Exception InvalidAccessKeyId(string accessKeyId) =>
        new(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        {
            Details = [new("AWSAccessKeyId", accessKeyId)],
        };

    public static S3Exception SignatureDoesNotMatch(IReadOnlyList<KeyValuePair<string, string>>? details = null) =>
        new(403, "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
        {
            Details = details ?? [],
        };

    public static S3Exception ContentSha256Mismatch(string provided, string computed) =>
        new(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
        {
            Details = [new("ClientComputedContentSHA256", provided), new("S3ComputedContentSHA256", computed)],
        };

    public static S3Exception IncompleteBody(string message = "The request body terminated unexpectedly") =>
        new(400, "IncompleteBody", message);

    public static S3Exception MalformedChunk(string message) =>
        new(400, "InvalidRequest", "Malformed aws-chunked body: " + message);
}
