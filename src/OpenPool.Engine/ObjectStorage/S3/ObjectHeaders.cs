namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// What an object carries besides its bytes and returns on every GET and HEAD: the standard content
/// headers and the user's x-amz-meta-* (as JSON). A multipart upload holds them from its create
/// until its complete, and a copy takes them from its source, so both rows share this one shape.
/// </summary>
internal abstract class ObjectHeaders
{
    public string? ContentType { get; set; }
    public string? ContentEncoding { get; set; }
    public string? ContentDisposition { get; set; }
    public string? ContentLanguage { get; set; }
    public string? CacheControl { get; set; }
    public string? Expires { get; set; }
    public string? UserMetadata { get; set; }

    public void CopyHeadersFrom(ObjectHeaders source)
    {
        ContentType = source.ContentType;
        ContentEncoding = source.ContentEncoding;
        ContentDisposition = source.ContentDisposition;
        ContentLanguage = source.ContentLanguage;
        CacheControl = source.CacheControl;
        Expires = source.Expires;
        UserMetadata = source.UserMetadata;
    }
}
