using System.CommandLine;
using OpenPool.Contracts;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

internal static class AdminCommands
{
    public static Command Build(Runner run)
    {
        var email = new Argument<string>("email");
        var org = new Option<string?>("--org") { Description = "Organization to join (created when new)" };
        var role = new Option<string?>("--role") { Description = "member (default) or admin" };
        var balance = new Option<decimal?>("--balance") { Description = "Starting balance of a new account, USD" };
        var createUser = new Command("create", "Create a user and print its API key (shown once)") { email, org, role, balance };
        createUser.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.CreateUserAsync(new CreateUserRequest { Email = p.GetValue(email)!, OrgName = p.GetValue(org), Role = p.GetValue(role), BalanceUsd = p.GetValue(balance) }, ct);
            c.Print(result, $"{result.Message}\nuser_id: {result.UserId}\napi_key: {result.ApiKey}");
            return 0;
        }));
        var listUsers = Show(run, "list", "List users", (c, p, ct) => c.Client.ListUsersAsync(ct), r => r.Message).WithAlias("ls");

        var keyEmail = new Option<string?>("--email") { Description = "Only this user's keys" };
        var createKey = new Command("create", "Create another API key for a user (shown once)") { email };
        createKey.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.CreateApiKeyAsync(p.GetValue(email)!, ct);
            c.Print(result, $"{result.Message}\napi_key: {result.ApiKey}");
            return 0;
        }));
        var listKeys = Show(run, "list", "List API keys", (c, p, ct) => c.Client.ListApiKeysAsync(p.GetValue(keyEmail), ct), r => r.Message, keyEmail).WithAlias("ls");
        var keyId = new Argument<string>("key_id");
        var revoke = new Command("revoke", "Revoke an API key") { keyId };
        revoke.SetAction(run(async (c, p, ct) =>
        {
            if (!c.Confirm($"Revoke API key {p.GetValue(keyId)}?"))
                return 1;
            var result = await c.Client.RevokeApiKeyAsync(p.GetValue(keyId)!, ct);
            c.Print(result, result.Message);
            return 0;
        }));

        var amount = new Argument<decimal>("amount_usd") { Description = "USD to add (negative to charge)" };
        var toEmail = new Option<string?>("--email") { Description = "The account this user draws from" };
        var toOrg = new Option<string?>("--org") { Description = "An organization" };
        var credit = new Command("credit", "Credit or charge an account") { amount, toEmail, toOrg };
        credit.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.CreditAsync(new CreditRequest { AmountUsd = p.GetValue(amount), Email = p.GetValue(toEmail), OrgName = p.GetValue(toOrg) }, ct);
            c.Print(result, result.Message);
            return 0;
        }));

        var orgs = Show(run, "orgs", "List organizations and their balances", (c, p, ct) => c.Client.ListOrganizationsAsync(ct), r => r.Message);

        return Group("admin", "Operator commands (need the admin key)",
            Group("users", "Manage users", createUser, listUsers), Group("keys", "Manage API keys", createKey, listKeys, revoke), credit, orgs);
    }
}
