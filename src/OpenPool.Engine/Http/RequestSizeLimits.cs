using Microsoft.AspNetCore.Http.Metadata;

namespace OpenPool.Engine.Http;

/// <summary>
/// Per-endpoint request body limits through ASP.NET Core's own <see cref="IRequestSizeLimitMetadata"/>,
/// which endpoint routing applies to the server's <c>IHttpMaxRequestBodySizeFeature</c> once it has
/// matched the endpoint, before any middleware or handler reads the body. Without it an endpoint gets
/// Kestrel's global limit (1 MiB, <c>EngineHosting</c>). A body beyond the limit fails its read with a
/// 413 <see cref="BadHttpRequestException"/>, answered by <see cref="ErrorHandling"/> (JSON, or the
/// endpoint's <see cref="IEndpointErrorFormat"/>).
/// </summary>
internal static class RequestSizeLimits
{
    /// <summary>Accepts request bodies of at most <paramref name="maxBytes"/> bytes on the endpoint (or group).</summary>
    public static TBuilder WithRequestSizeLimit<TBuilder>(this TBuilder builder, long maxBytes) where TBuilder : IEndpointConventionBuilder
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        return builder.WithMetadata(new RequestSizeLimit(maxBytes));
    }

    /// <summary>No body limit on the endpoint (or group): it bounds what it reads itself, streaming.</summary>
    public static TBuilder DisableRequestSizeLimit<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequestSizeLimit(null));

    private sealed record RequestSizeLimit(long? MaxRequestBodySize) : IRequestSizeLimitMetadata;
}
