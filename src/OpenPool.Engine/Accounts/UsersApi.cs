using System.Globalization;
using System.Text;
using OpenPool.Contracts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Http;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.ObjectStorage.Management;
using OpenPool.Engine.OpenApi;

namespace OpenPool.Engine.Accounts;

/// <summary>The caller's own account: <c>/user/info</c>, organization, preferences and SSH keys.</summary>
internal static class UsersApi
{
    public static void MapUsers(this WebApplication app)
    {
        app.MapGet("/user/info", UserInfoAsync).WithTags("user").WithSummary("Get user information").Produces<UserInfoResponse>();
        app.MapGet("/user/organization/info", OrganizationAsync).WithTags("user").WithSummary("Get organization information")
            .Produces<OrganizationInfoResponse>().Produces<ErrorResponse>(404);
        app.MapGet("/user/preferences", async (HttpContext context, AccountStore accounts) =>
                Results.Json(await accounts.GetPreferencesAsync(context.Caller(), context.RequestAborted), ApiJson.Options))
            .WithTags("user").WithSummary("Get user preferences").Produces<UserPreferences>();
        app.MapPatch("/user/preferences", UpdatePreferencesAsync).WithTags("user").WithSummary("Update user preferences")
            .AcceptsJson<UserPreferences>().Produces<UserPreferences>().Produces<ErrorResponse>(422);

        app.MapPost("/user/ssh-key/add", AddKeyAsync).WithTags("ssh").WithSummary("Add an SSH public key")
            .AcceptsJson<SshKeyAddRequest>().Produces<SshKeyAddResponse>().Produces<ErrorResponse>(409).Produces<ErrorResponse>(422);
        app.MapGet("/user/ssh-key/list", ListKeysAsync).WithTags("ssh").WithSummary("List SSH keys").Produces<SshKeyListResponse>();
        app.MapDelete("/user/ssh-key/remove/{key_id}", async (string key_id, HttpContext context, SshKeyStore keys) =>
            {
                await keys.RemoveAsync(context.Caller(), key_id, context.RequestAborted);
                return Results.Json(new MessageResponse { Message = $"SSH key {key_id} removed. Clusters created before keep it until destroyed." }, ApiJson.Options);
            })
            .WithTags("ssh").WithSummary("Remove an SSH key").Produces<MessageResponse>().Produces<ErrorResponse>(404);
    }

    private static async Task<IResult> UserInfoAsync(HttpContext context, AccountStore accounts, ObjectStorageMeter objectStorage)
    {
        var caller = context.Caller();
        var user = await accounts.GetUserInfoAsync(caller, context.RequestAborted);
        // Object storage's usage since its last sweep is owed already: the balance shows it, as it shows running clusters'.
        var usage = await objectStorage.SummaryAsync(ObjectStorageScope.Of(caller), context.RequestAborted);
        if (usage is not null)
            user = user with { BalanceUsd = user.BalanceUsd - Ledger.ToUsd(usage.PendingMicros) };
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Email:            {user.Email}\n");
        text.Append(CultureInfo.InvariantCulture, $"Organization:     {user.Org ?? "-"}\n");
        text.Append(CultureInfo.InvariantCulture, $"Role:             {user.Role}\n");
        text.Append(CultureInfo.InvariantCulture, $"Balance:          ${user.BalanceUsd:0.00}{(user.Org is null ? "" : " (organization)")}\n");
        text.Append(CultureInfo.InvariantCulture, $"Running clusters: {user.RunningClusters}\n");
        text.Append(CultureInfo.InvariantCulture, $"Storage volumes:  {user.Volumes}\n");
        text.Append(CultureInfo.InvariantCulture, $"Object storage:   {ObjectStorageLine(usage)}");
        return Results.Json(new UserInfoResponse { Message = text.ToString(), User = user }, ApiJson.Options);
    }

    private static string ObjectStorageLine(ObjectStorageUsageSummary? usage) => usage is null
        ? "not enabled"
        : string.Create(CultureInfo.InvariantCulture,
            $"{ManagementApi.Size(usage.StoredBytes)} stored (peak {ManagementApi.Size(usage.PeakBytes)}), {usage.Requests:N0} requests, ${Ledger.ToUsd(usage.ChargedMicros):0.00} this month");

    private static async Task<IResult> OrganizationAsync(HttpContext context, AccountStore accounts, ObjectStorageMeter objectStorage)
    {
        var org = await accounts.GetOrganizationAsync(context.Caller(), context.RequestAborted)
            ?? throw ApiError.NotFound("org_not_found", "You are not a member of an organization.");
        if (await objectStorage.SummaryAsync(org.Id, context.RequestAborted) is { } usage)
            org = org with { BalanceUsd = org.BalanceUsd - Ledger.ToUsd(usage.PendingMicros) };
        var table = new TextTable("EMAIL", "ROLE", "USER ID");
        foreach (var m in org.Members)
            table.Add(m.Email, m.Role, m.UserId);
        var message = string.Create(CultureInfo.InvariantCulture, $"Organization {org.Name} ({org.Id})\nBalance: ${org.BalanceUsd:0.00}\n\n{table}");
        return Results.Json(new OrganizationInfoResponse { Message = message, Organization = org }, ApiJson.Options);
    }

    private static async Task<IResult> UpdatePreferencesAsync(HttpContext context, AccountStore accounts)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var current = await accounts.GetPreferencesAsync(context.Caller(), context.RequestAborted);
        var warning = body.Has("balance_warning_threshold") ? body.Decimal("balance_warning_threshold", min: -Ledger.MaxAmountUsd, max: Ledger.MaxAmountUsd) : current.BalanceWarningThreshold;
        var reload = body.Has("autopay_reload_threshold") ? body.Decimal("autopay_reload_threshold", min: -Ledger.MaxAmountUsd, max: Ledger.MaxAmountUsd) : current.AutopayReloadThreshold;
        var updated = new UserPreferences
        {
            NotifyEmailClusterCreate = body.Bool("notify_email_cluster_create") ?? current.NotifyEmailClusterCreate,
            NotifyEmailClusterDestroy = body.Bool("notify_email_cluster_destroy") ?? current.NotifyEmailClusterDestroy,
            AutopayEnabled = body.Bool("autopay_enabled") ?? current.AutopayEnabled,
            BalanceWarningThreshold = warning,
            AutopayReloadThreshold = reload,
        };
        if (warning is <= 0)
            body.Reject("balance_warning_threshold", "greater_than", "Input should be greater than 0");
        if (reload is < 20)
            body.Reject("autopay_reload_threshold", "greater_than_equal", "Input should be greater than or equal to 20");
        if (updated.AutopayEnabled && reload is null)
            body.Reject("autopay_reload_threshold", "missing", "Autopay needs autopay_reload_threshold (at least 20)");
        if (reload is { } r && warning is { } w && r >= w)
            body.Reject("autopay_reload_threshold", "value_error", "autopay_reload_threshold must be below balance_warning_threshold");
        body.ThrowIfInvalid();
        return Results.Json(await accounts.SavePreferencesAsync(context.Caller(), updated, context.RequestAborted), ApiJson.Options);
    }

    private static async Task<IResult> AddKeyAsync(HttpContext context, SshKeyStore keys)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var text = body.String("public_key", required: true, maxLength: 16384);
        var name = body.String("name", maxLength: 128);
        SshPublicKey? key = null;
        if (text is not null && !SshPublicKey.TryParse(text, out key, out var error))
            body.Reject("public_key", "value_error", error);
        ResourceNames.Check(body, "name", name);
        body.ThrowIfInvalid();
        var saved = await keys.AddAsync(context.Caller(), key!, name, context.RequestAborted);
        return Results.Json(new SshKeyAddResponse
        {
            Message = $"SSH key '{saved.Name}' added ({saved.Fingerprint}). It will be installed on every new cluster.",
            Key = saved,
        }, ApiJson.Options);
    }

    private static async Task<IResult> ListKeysAsync(HttpContext context, SshKeyStore keys)
    {
        var includeOrg = Query.Bool(context.Request, "include_org");
        var list = await keys.ListAsync(context.Caller(), includeOrg, context.RequestAborted);
        string message;
        if (list.Count == 0)
        {
            message = includeOrg ? "Your organization has no SSH keys." : "You have no SSH keys. Add one with: tp me sshkey add ~/.ssh/id_ed25519.pub";
        }
        else
        {
            var table = new TextTable("KEY ID", "NAME", "TYPE", "FINGERPRINT", "OWNER");
            foreach (var k in list)
                table.Add(k.KeyId, k.Name, k.KeyType, k.Fingerprint, k.Owner);
            message = table.ToString();
        }
        return Results.Json(new SshKeyListResponse { Message = message, Keys = list }, ApiJson.Options);
    }
}
