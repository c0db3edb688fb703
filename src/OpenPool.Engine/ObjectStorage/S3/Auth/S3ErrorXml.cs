using System.Security;
using System.Text;

namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>
/// Writes S3's XML error body. Lives beside the SigV4 handler because its challenge must answer
/// in S3's format before any S3 route runs; the S3 endpoint's own error handling may reuse it.
/// </summary>
internal static class S3ErrorXml
{
    public const string RequestIdHeader = "x-amz-request-id";

    public static string Render(S3Exception error, string requestId)
    {
        var sb = new StringBuilder(256);
        sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        sb.Append("<Error>");
        Element(sb, "Code", error.Code);
        Element(sb, "Message", error.Message);
        foreach (var (name, value) in error.Details)
            Element(sb, name, value);
        Element(sb, "RequestId", requestId);
        sb.Append("</Error>");
        return sb.ToString();
    }

    /// <summary>
    /// Answers <paramref name="error"/> unless the response has started (then nothing can be said
    /// in-band; the caller aborts). HEAD answers carry the status and headers only, as S3's do.
    /// </summary>
    public static async Task WriteAsync(HttpContext context, S3Exception error)
    {
        var response = context.Response;
        if (response.HasStarted)
            return;
        var requestId = RequestId(context);
        response.Clear();
        response.StatusCode = error.Status;
        response.Headers[RequestIdHeader] = requestId;
        response.ContentType = "application/xml";
        if (HttpMethods.IsHead(context.Request.Method))
            return;
        var body = Encoding.UTF8.GetBytes(Render(error, requestId));
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>The request's id: the one the endpoint already answered with, else the trace identifier.</summary>
    public static string RequestId(HttpContext context)
    {
        var existing = context.Response.Headers[RequestIdHeader].ToString();
        return existing.Length > 0 ? existing : context.TraceIdentifier;
    }

    private static void Element(StringBuilder sb, string name, string value) =>
        sb.Append('<').Append(name).Append('>').Append(SecurityElement.Escape(value)).Append("</").Append(name).Append('>');
}
