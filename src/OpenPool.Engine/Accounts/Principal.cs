namespace OpenPool.Engine.Accounts;

/// <summary>Who is calling: resolved from the bearer key once per request.</summary>
internal sealed record Principal(string UserId, string Email, string? OrgId, string? OrgName, string Role, bool IsOperator);

internal static class PrincipalAccess
{
    private const string ItemKey = "openpool.principal";

    public static void SetPrincipal(this HttpContext context, Principal principal) => context.Items[ItemKey] = principal;

    /// <summary>The caller, set by the Bearer scheme; there is one on every endpoint that needs a key.</summary>
    public static Principal Caller(this HttpContext context) =>
        context.Items[ItemKey] as Principal ?? throw Http.ApiError.Unauthorized("Missing or invalid API key.");
}
