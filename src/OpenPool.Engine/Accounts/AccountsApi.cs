using OpenPool.Engine.OpenApi;
using OpenPool.Contracts;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Accounts;

internal static class AccountsApi
{
    private static readonly string[] Roles = ["member", "admin"];

    public static void MapAccounts(this WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Json(new { status = "ok" }))
            .NoKeyRequired().WithTags("health").WithSummary("Liveness check; needs no key.");

        // The official CLI calls this before every command with its version and platform; a good key
        // gets 200 and a null message (nothing to print).
        app.MapPost("/health", () => Results.Json(new HealthResponse { Message = null }, ApiJson.Options))
            .WithTags("health").WithSummary("Key check the tp CLI runs before every command.")
            .Produces<HealthResponse>();

        app.MapPost("/admin/users", CreateUserAsync).RequireOperator()
            .WithTags("admin").WithSummary("Create a user (and its organization) with an API key.")
            .AcceptsJson<CreateUserRequest>().Produces<CreateUserResponse>();
    }

    private static async Task<IResult> CreateUserAsync(HttpRequest request, AccountStore accounts)
    {
        var body = await JsonBody.ReadAsync(request);
        var email = body.String("email", required: true, maxLength: 254)?.Trim();
        var orgName = body.String("org_name", maxLength: 128)?.Trim();
        var role = body.String("role", maxLength: 16)?.Trim().ToLowerInvariant() ?? "member";
        if (email is not null && !LooksLikeEmail(email))
            body.Reject("email", "value_error", "value is not a valid email address");
        if (orgName is { Length: 0 })
            body.Reject("org_name", "string_too_short", "String should have at least 1 character");
        if (!Roles.Contains(role))
            body.Reject("role", "enum", "Input should be 'member' or 'admin'");
        body.ThrowIfInvalid();

        var (userId, key) = await accounts.CreateUserAsync(email!.ToLowerInvariant(), orgName, role, isOperator: false, request.HttpContext.RequestAborted);
        return Results.Json(new CreateUserResponse
        {
            UserId = userId,
            ApiKey = key,
            Message = $"Created {email}{(orgName is null ? "" : $" in {orgName}")}. The API key is shown only once.",
        }, ApiJson.Options);
    }

    private static bool LooksLikeEmail(string email)
    {
        var at = email.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && at == email.LastIndexOf('@') && at < email.Length - 1 && !email.Any(char.IsWhiteSpace);
    }
}
