using OpenPool.Contracts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Http;
using OpenPool.Engine.OpenApi;

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

        var admin = app.MapGroup("/admin").RequireOperator().WithTags("admin");
        admin.MapPost("/users", CreateUserAsync).WithSummary("Create a user (and its organization) with an API key")
            .AcceptsJson<CreateUserRequest>().Produces<CreateUserResponse>().AnswerHoldsSecret();
        admin.MapGet("/users", ListUsersAsync).WithSummary("List users").Produces<AdminUserListResponse>();
        admin.MapGet("/orgs", ListOrgsAsync).WithSummary("List organizations").Produces<AdminOrgListResponse>();
        admin.MapPost("/credit", CreditAsync).WithSummary("Credit (or charge) an account")
            .AcceptsJson<CreditRequest>().Produces<CreditResponse>();
        admin.MapPost("/keys", CreateKeyAsync).WithSummary("Create another API key for a user")
            .Produces<ApiKeyCreatedResponse>().AnswerHoldsSecret();
        admin.MapGet("/keys", ListKeysAsync).WithSummary("List API keys (optionally ?email=)").Produces<ApiKeyListResponse>();
        admin.MapDelete("/keys/{key_id}", async (string key_id, HttpContext context, AccountStore accounts) =>
            {
                await accounts.RevokeKeyAsync(key_id, context.RequestAborted);
                return Results.Json(new MessageResponse { Message = $"API key {key_id} revoked." }, ApiJson.Options);
            }).WithSummary("Revoke an API key").Produces<MessageResponse>();
    }

    private static async Task<IResult> CreateUserAsync(HttpRequest request, AccountStore accounts)
    {
        var body = await JsonBody.ReadAsync(request);
        var email = ReadEmail(body, required: true);
        var orgName = body.String("org_name", maxLength: 128)?.Trim();
        var role = body.String("role", maxLength: 16)?.Trim().ToLowerInvariant() ?? "member";
        var balance = body.Decimal("balance_usd", min: 0, max: Ledger.MaxAmountUsd);
        if (orgName is { Length: 0 })
            body.Reject("org_name", "string_too_short", "String should have at least 1 character");
        if (!Roles.Contains(role))
            body.Reject("role", "enum", "Input should be 'member' or 'admin'");
        body.ThrowIfInvalid();

        var (userId, key) = await accounts.CreateUserAsync(email!, orgName, role, isOperator: false, request.HttpContext.RequestAborted, balance);
        return Results.Json(new CreateUserResponse
        {
            UserId = userId,
            ApiKey = key,
            Message = $"Created {email}{(orgName is null ? "" : $" in {orgName}")}. The API key is shown only once.",
        }, ApiJson.Options);
    }

    private static async Task<IResult> ListUsersAsync(HttpContext context, AccountStore accounts)
    {
        var users = await accounts.ListUsersAsync(context.RequestAborted);
        var table = new TextTable("USER ID", "EMAIL", "ORGANIZATION", "ROLE", "KEYS", "CREATED");
        foreach (var u in users)
            table.Add(u.UserId, u.Email + (u.IsOperator ? " (operator)" : ""), u.Org ?? "-", u.Role, u.ActiveKeys.ToString(System.Globalization.CultureInfo.InvariantCulture), u.CreatedAt);
        return Results.Json(new AdminUserListResponse { Message = table.ToString(), Users = users }, ApiJson.Options);
    }

    private static async Task<IResult> ListOrgsAsync(HttpContext context, AccountStore accounts)
    {
        var orgs = await accounts.ListOrgsAsync(context.RequestAborted);
        var table = new TextTable("ORG ID", "NAME", "MEMBERS", "BALANCE");
        foreach (var o in orgs)
            table.Add(o.OrgId, o.Name, o.Members.ToString(System.Globalization.CultureInfo.InvariantCulture), o.BalanceUsd.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture));
        return Results.Json(new AdminOrgListResponse { Message = orgs.Count == 0 ? "No organizations." : table.ToString(), Orgs = orgs }, ApiJson.Options);
    }

    private static async Task<IResult> CreditAsync(HttpContext context, AccountStore accounts)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var email = ReadEmail(body, required: false);
        var orgName = body.String("org_name", maxLength: 128)?.Trim();
        var amount = body.Decimal("amount_usd", min: -Ledger.MaxAmountUsd, max: Ledger.MaxAmountUsd, required: true);
        if ((email is null) == (orgName is null))
            body.Reject("email", "value_error", "Give exactly one of email and org_name");
        body.ThrowIfInvalid();
        var (account, balance) = await accounts.CreditAsync(email, orgName, amount!.Value, context.RequestAborted);
        return Results.Json(new CreditResponse
        {
            Message = FormattableString.Invariant($"{(amount >= 0 ? "Credited" : "Charged")} ${Math.Abs(amount.Value):0.00} to {account}. Balance: ${balance:0.00}"),
            BalanceUsd = balance,
        }, ApiJson.Options);
    }

    private static async Task<IResult> CreateKeyAsync(HttpContext context, AccountStore accounts)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var email = ReadEmail(body, required: true);
        body.ThrowIfInvalid();
        var (keyId, key) = await accounts.CreateKeyAsync(email!, context.RequestAborted);
        return Results.Json(new ApiKeyCreatedResponse { KeyId = keyId, ApiKey = key, Message = $"New API key {keyId} for {email}. It is shown only once." }, ApiJson.Options);
    }

    private static async Task<IResult> ListKeysAsync(HttpContext context, AccountStore accounts)
    {
        var keys = await accounts.ListKeysAsync(Query.String(context.Request, "email")?.ToLowerInvariant(), context.RequestAborted);
        var table = new TextTable("KEY ID", "PREFIX", "EMAIL", "CREATED", "REVOKED");
        foreach (var k in keys)
            table.Add(k.KeyId, k.Prefix, k.Email, k.CreatedAt, k.RevokedAt ?? "-");
        return Results.Json(new ApiKeyListResponse { Message = table.ToString(), Keys = keys }, ApiJson.Options);
    }

    private static string? ReadEmail(JsonBody body, bool required)
    {
        var email = body.String("email", required, maxLength: 254)?.Trim().ToLowerInvariant();
        if (email is not null && !LooksLikeEmail(email))
            body.Reject("email", "value_error", "value is not a valid email address");
        return email;
    }

    private static bool LooksLikeEmail(string email)
    {
        var at = email.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && at == email.LastIndexOf('@') && at < email.Length - 1 && !email.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch));
    }
}
