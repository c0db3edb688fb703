using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Accounts;

/// <summary>Claim types the Bearer scheme puts on the caller (the resolved <see cref="Principal"/> is also at <see cref="PrincipalAccess.Caller"/>).</summary>
internal static class EngineClaims
{
    public const string UserId = ClaimTypes.NameIdentifier;
    public const string Email = ClaimTypes.Email;
    public const string Role = ClaimTypes.Role;
    public const string OrgId = "openpool:org_id";
    /// <summary>"true" on the operator's admin key only.</summary>
    public const string Operator = "openpool:operator";
}

/// <summary>
/// The TensorPool API key: <c>Authorization: Bearer tpk_…</c>, resolved by <see cref="AccountStore"/>.
/// No header (or another scheme's) is no result, so the request stays anonymous for endpoints that
/// allow it and for other schemes (SigV4); a key that resolves to nobody is a failure. The challenge
/// and forbid answers are the API's 401 and 403, in the endpoint's error format when it has one.
/// </summary>
internal sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, AccountStore accounts)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string MissingKey = "Missing API key. Send it as 'Authorization: Bearer <TENSORPOOL_KEY>'.";
    public const string InvalidKey = "Invalid API key. Check TENSORPOOL_KEY.";
    public const string NotOperator = "This endpoint needs the operator's admin key.";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = ReadBearer(Request);
        if (key is null)
            return AuthenticateResult.NoResult();
        // A database fault propagates (a logged 500), rather than turning into "invalid key".
        var principal = await accounts.AuthenticateAsync(key, Context.RequestAborted);
        if (principal is null)
            return AuthenticateResult.Fail(InvalidKey);
        Context.SetPrincipal(principal);
        List<Claim> claims =
        [
            new(EngineClaims.UserId, principal.UserId),
            new(EngineClaims.Email, principal.Email),
            new(EngineClaims.Role, principal.Role),
        ];
        if (principal.OrgId is { } org)
            claims.Add(new(EngineClaims.OrgId, org));
        if (principal.IsOperator)
            claims.Add(new(EngineClaims.Operator, "true"));
        var identity = new ClaimsIdentity(claims, Scheme.Name, EngineClaims.UserId, EngineClaims.Role);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        // The cached result of this request's authentication: no key at all, or one that failed.
        var result = await HandleAuthenticateOnceAsync();
        await ErrorHandling.WriteAsync(Context, ApiError.Unauthorized(result is null || result.None ? MissingKey : InvalidKey));
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ErrorHandling.WriteAsync(Context, ApiError.Forbidden(NotOperator));

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

internal static class Authentication
{
    public const string BearerScheme = "Bearer";
    public const string OperatorPolicy = "Operator";

    /// <summary>
    /// Bearer is the default scheme (so <c>UseAuthentication</c> resolves the key on every request,
    /// and challenges and forbids go to it). Other schemes (SigV4) are added with
    /// <c>AddAuthentication().AddScheme(…)</c> and used by the endpoints whose policy names them;
    /// the policies here name Bearer explicitly, so they never run another scheme.
    /// </summary>
    public static void AddEngineAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication(BearerScheme)
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerScheme, null);
        services.AddAuthorizationBuilder()
            // Every endpoint without policies of its own needs a key. A request that matched no
            // endpoint passes: it answers the JSON 404 whatever key it carries, as before.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder(BearerScheme)
                .RequireAssertion(ctx => ctx.User.Identity?.IsAuthenticated == true || ctx.Resource is HttpContext { } http && http.GetEndpoint() is null)
                .Build())
            .AddPolicy(OperatorPolicy, policy => policy
                .AddAuthenticationSchemes(BearerScheme)
                .RequireAuthenticatedUser()
                .RequireClaim(EngineClaims.Operator, "true"));
    }

    /// <summary>Authentication and authorization; after routing, so both see the endpoint's metadata.</summary>
    public static void UseEngineAuth(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
    }

    /// <summary>The endpoint answers without a key (<c>GET /healthz</c>, the API docs, signed URLs, WebSockets that read the key from a frame).</summary>
    public static TBuilder NoKeyRequired<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AllowAnonymous();

    /// <summary>Only the operator's admin key may call the endpoint: others get 403, no key 401.</summary>
    public static TBuilder RequireOperator<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(OperatorPolicy);
}
