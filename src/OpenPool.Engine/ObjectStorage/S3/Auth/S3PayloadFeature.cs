namespace OpenPool.Engine.ObjectStorage.S3.Auth;

internal sealed class S3PayloadFeature(string contentSha256, long? decodedLength) : IS3PayloadFeature
{
    private readonly Dictionary<string, string> _trailers = new(StringComparer.Ordinal);

    public long? DecodedLength { get; } = decodedLength;

    public string ContentSha256 { get; } = contentSha256;

    public IReadOnlyDictionary<string, string> Trailers => _trailers;

    /// <summary>Where the aws-chunked decoder records trailing headers as it reads them.</summary>
    internal Dictionary<string, string> TrailerSink => _trailers;
}
