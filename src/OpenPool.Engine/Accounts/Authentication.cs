using OpenPool.Engine.Http;

namespace OpenPool.Engine.Accounts;

/// <summary>Marks an endpoint that answers without a key (<c>GET /healthz</c>, the API docs).</summary>
internal sealed class AnonymousEndpoint
{
    public static readonly AnonymousEndpoint Instance = new();
}

/// <summary>Marks an endpoint only the operator's admin key may call.</summary>
internal sealed class OperatorOnlyEndpoint
{
    public static readonly OperatorOnlyEndpoint Instance = new();
}

internal static class Authentication
{
    public static TBuilder NoKeyRequired<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(AnonymousEndpoint.Instance);

    public static TBuilder RequireOperator<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(OperatorOnlyEndpoint.Instance);

    /// <summary>
    /// Bearer auth for every matched endpoint unless marked anonymous. Runs after routing so it can
    /// read the endpoint's metadata; unknown routes fall through to a JSON 404.
    /// </summary>
    public static void UseBearerAuth(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            var endpoint = context.GetEndpoint();
            if (endpoint is null || endpoint.Metadata.GetMetadata<AnonymousEndpoint>() is not null)
            {
                await next(context);
                return;
            }
            var key = ReadBearer(context.Request);
            if (key is null)
                throw ApiError.Unauthorized("Missing API key. Send it as 'Authorization: Bearer <TENSORPOOL_KEY>'.");
            var store = context.RequestServices.GetRequiredService<AccountStore>();
            var principal = await store.AuthenticateAsync(key, context.RequestAborted)
                ?? throw ApiError.Unauthorized("Invalid API key. Check TENSORPOOL_KEY.");
            if (endpoint.Metadata.GetMetadata<OperatorOnlyEndpoint>() is not null && !principal.IsOperator)
                throw ApiError.Forbidden("This endpoint needs the operator's admin key.");
            context.SetPrincipal(principal);
            await next(context);
        });
    }

    private static string? ReadBearer(HttpRequest request)
    {
        var header = request.Headers.Authorization;
        if (header.Count != 1)
            return null;
        var value = header[0];
        const string scheme = "Bearer ";
        if (value is null || !value.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return null;
        var key = value[scheme.Length..].Trim();
        return key.Length == 0 ? null : key;
    }
}
