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
        var listUsers = new Command("list", "List users");
        listUsers.Aliases.Add("ls");
        listUsers.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.ListUsersAsync(ct);
            c.Print(result, result.Message);
            return 0;
        }));

        var keyEmail = new Option<string?>("--email") { Description = "Only this user's keys" };
        var createKey = new Command("create", "Create another API key for a user (shown once)") { email };
        createKey.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.CreateApiKeyAsync(p.GetValue(email)!, ct);
            c.Print(result, $"{result.Message}\napi_key: {result.ApiKey}");
            return 0;
        }));
        var listKeys = new Command("list", "List API keys") { keyEmail };
        listKeys.Aliases.Add("ls");
        listKeys.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.ListApiKeysAsync(p.GetValue(keyEmail), ct);
            c.Print(result, result.Message);
            return 0;
        }));
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

        var orgs = new Command("orgs", "List organizations and their balances");
        orgs.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.ListOrganizationsAsync(ct);
            c.Print(result, result.Message);
            return 0;
        }));

        return Group("admin", "Operator commands (need the admin key)",
            Group("users", "Manage users", createUser, listUsers), Group("keys", "Manage API keys", createKey, listKeys, revoke), credit, orgs);
    }
}
