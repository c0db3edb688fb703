namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>
/// What the SigV4 scheme learnt about the request's payload. After authentication the request body
/// is the decoded payload: aws-chunked framing removed, and every chunk signature or the signed
/// payload hash verified as it is read (a mismatch throws an <see cref="S3Exception"/> from the read).
/// </summary>
internal interface IS3PayloadFeature
{
    /// <summary>The payload's length once decoded: <c>x-amz-decoded-content-length</c>, or Content-Length.</summary>
    long? DecodedLength { get; }

    /// <summary>The <c>x-amz-content-sha256</c> value as sent (a hex hash, <c>UNSIGNED-PAYLOAD</c>, <c>STREAMING-…</c>).</summary>
    string ContentSha256 { get; }

    /// <summary>
    /// Trailing headers of a <c>STREAMING-*-TRAILER</c> upload (lower-case names, e.g.
    /// <c>x-amz-checksum-crc32</c>), complete once the body has been read to its end; empty otherwise.
    /// </summary>
    IReadOnlyDictionary<string, string> Trailers { get; }
}
