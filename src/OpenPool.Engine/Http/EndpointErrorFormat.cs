namespace OpenPool.Engine.Http;

/// <summary>
/// Endpoint metadata: the endpoint answers its errors in a format of its own instead of the API's
/// JSON <c>{message, error}</c> (the S3 endpoint answers S3's XML <c>&lt;Error&gt;</c>). Attach it with
/// <see cref="EndpointErrorFormats.WithErrorFormat{TBuilder}"/> (or <c>WithMetadata</c>) on the endpoint
/// or its route group. Every shared place that answers a failure looks for it on the matched endpoint:
/// the middleware that catches expected exceptions, the exception handler (faults, answered as 500),
/// the status-code pages (bodiless framework answers such as 405 or 415), and the Bearer scheme's
/// challenge (401) and forbid (403). A request that matched no endpoint (an unknown route) gets
/// JSON; a listener that wants its own 404 maps a catch-all endpoint carrying its format.
/// </summary>
internal interface IEndpointErrorFormat
{
    /// <summary>
    /// The status to answer when <paramref name="exception"/>, thrown while handling a request on
    /// this endpoint, is one of the endpoint's own expected errors (for S3: an <c>S3Exception</c>,
    /// with its <c>Status</c>); null when the format does not know it, and the shared handling
    /// treats it as it would on the API (an <see cref="ApiError"/> keeps its status, unreadable
    /// input is 400 or 413, anything else is a fault: logged and answered as 500). Expected errors
    /// are not logged. Either way the answer is written by <see cref="WriteAsync"/>.
    /// </summary>
    int? ExpectedStatus(Exception exception);

    /// <summary>
    /// Writes the error answer. Called only before the response has started, with
    /// <c>Response.StatusCode</c> already set to <see cref="EndpointError.Status"/>; the format writes
    /// the body and its Content-Type (nothing for HEAD if it so chooses). Headers the endpoint set
    /// before failing are still there: clear any that must not go out with an error.
    /// </summary>
    Task WriteAsync(HttpContext context, EndpointError error);
}

/// <summary>One failed request, as the shared error handling describes it to an <see cref="IEndpointErrorFormat"/>.</summary>
/// <param name="Status">The HTTP status being answered (401, 403, 404, 405, 413, 500…).</param>
/// <param name="Code">
/// The engine's stable error code for it, what the JSON <c>error</c> would say: <c>unauthorized</c>,
/// <c>forbidden</c>, <c>not_found</c>, <c>method_not_allowed</c>, <c>bad_request</c> (unreadable input,
/// body too large), <c>internal_error</c>, <c>http_&lt;status&gt;</c>, or an <see cref="ApiError"/>'s own.
/// For an expected exception it is <c>http_&lt;status&gt;</c>: the exception itself says more.
/// </param>
/// <param name="Message">A message for people, safe to send (never a fault's details).</param>
/// <param name="Exception">
/// What was thrown, when something was: an exception the format expects (see
/// <see cref="IEndpointErrorFormat.ExpectedStatus"/>), an <see cref="ApiError"/>, a
/// <see cref="BadHttpRequestException"/>, or a fault (then <paramref name="Status"/> is 500 and the
/// exception's details must not be answered). Null when the status came from the framework or from
/// authentication: missing or invalid credentials, not allowed, wrong method, unsupported media type.
/// </param>
internal sealed record EndpointError(int Status, string Code, string Message, Exception? Exception);

internal static class EndpointErrorFormats
{
    /// <summary>Makes the endpoint (or every endpoint of a group) answer its errors with <paramref name="format"/>.</summary>
    public static TBuilder WithErrorFormat<TBuilder>(this TBuilder builder, IEndpointErrorFormat format)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(format);

    /// <summary>The error format of <paramref name="endpoint"/>, when it has one (the last one attached wins).</summary>
    public static IEndpointErrorFormat? Of(Endpoint? endpoint) => endpoint?.Metadata.GetMetadata<IEndpointErrorFormat>();
}
