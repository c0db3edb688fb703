namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// An S3 error: answered on the S3 endpoint as S3's XML error body (<c>&lt;Error&gt;&lt;Code&gt;…</c>)
/// with <see cref="Status"/>. <see cref="Code"/> is S3's error code (<c>NoSuchKey</c>,
/// <c>SignatureDoesNotMatch</c>…); the message is for people.
/// </summary>
internal sealed class S3Exception(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;

    /// <summary>Extra elements of the error body (<c>BucketName</c>, <c>Key</c>, <c>StringToSign</c>…).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Details { get; init; } = [];
}
