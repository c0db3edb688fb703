using OpenPool.Engine.Http;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// The S3 endpoint's errors are S3's XML body wherever the shared handling answers them
/// (authentication's challenge and forbid, faults, framework statuses): clients parse nothing else.
/// </summary>
internal sealed class S3ErrorFormat : IEndpointErrorFormat
{
    public static readonly S3ErrorFormat Instance = new();

    public int? ExpectedStatus(Exception exception) => exception is S3Exception s3 ? s3.Status : null;

    public Task WriteAsync(HttpContext context, EndpointError error)
    {
        var s3 = error.Exception as S3Exception ?? error.Status switch
        {
            401 or 403 => S3Errors.AccessDenied(),
            405 => S3Errors.MethodNotAllowed(context.Request.Method),
            411 => S3Errors.MissingContentLength(),
            413 => S3Errors.EntityTooLarge(S3Endpoint.MaxUploadBytes),
            >= 500 => new S3Exception(error.Status, "InternalError", "We encountered an internal error. Please try again."),
            _ => new S3Exception(error.Status, "InvalidRequest", error.Message),
        };
        return S3Xml.WriteErrorAsync(context, s3);
    }
}
