using System.Net;
using System.Net.Http.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Accounts;

public abstract class UserAndOperatorTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task User_info_shows_the_balance_the_user_draws_from()
    {
        var admin = _engine.Admin();
        var created = await admin.PostAsJsonAsync("/admin/users", new { email = "lead@example.com", org_name = "vision", role = "admin", balance_usd = 250 });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var member = await _engine.NewUserAsync("member@example.com", "vision");
        var solo = await _engine.NewUserAsync("solo@example.com");

        var info = await (await member.GetAsync("/user/info")).Json();
        var user = info.GetProperty("user");
        Assert.Equal("member@example.com", user.GetProperty("email").GetString());
        Assert.Equal("vision", user.GetProperty("org").GetString());
        Assert.Equal("member", user.GetProperty("role").GetString());
        Assert.Equal(250m, user.GetProperty("balance_usd").GetDecimal()); // the org's balance
        Assert.Contains("250.00", info.GetProperty("message").GetString());

        var soloInfo = await (await solo.GetAsync("/user/info")).Json();
        Assert.Equal(1000m, soloInfo.GetProperty("user").GetProperty("balance_usd").GetDecimal()); // Billing:InitialBalanceUsd

        var org = await (await member.GetAsync("/user/organization/info")).Json();
        Assert.Equal("vision", org.GetProperty("organization").GetProperty("name").GetString());
        Assert.Equal(2, org.GetProperty("organization").GetProperty("members").GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await solo.GetAsync("/user/organization/info")).StatusCode);

        var joinExisting = await admin.PostAsJsonAsync("/admin/users", new { email = "late@example.com", org_name = "vision", balance_usd = 5 });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, joinExisting.StatusCode);
    }

    [Fact]
    public async Task Operators_credit_and_charge_accounts()
    {
        var admin = _engine.Admin();
        await _engine.NewUserAsync("a@example.com", "team");
        var credit = await admin.PostAsJsonAsync("/admin/credit", new { org_name = "team", amount_usd = 12.5 });
        Assert.Equal(HttpStatusCode.OK, credit.StatusCode);
        Assert.Equal(1012.5m, (await credit.Json()).GetProperty("balance_usd").GetDecimal());

        var charge = await admin.PostAsJsonAsync("/admin/credit", new { email = "a@example.com", amount_usd = -1012.5 });
        Assert.Equal(0m, (await charge.Json()).GetProperty("balance_usd").GetDecimal());

        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await admin.PostAsJsonAsync("/admin/credit", new { amount_usd = 1 })).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await admin.PostAsJsonAsync("/admin/credit", new { email = "a@example.com", org_name = "team", amount_usd = 1 })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsJsonAsync("/admin/credit", new { org_name = "nobody", amount_usd = 1 })).StatusCode);

        var orgs = await (await admin.GetAsync("/admin/orgs")).Json();
        Assert.Contains(orgs.GetProperty("orgs").EnumerateArray(), o => o.GetProperty("name").GetString() == "team" && o.GetProperty("balance_usd").GetDecimal() == 0m);
        var users = await (await admin.GetAsync("/admin/users")).Json();
        Assert.Contains(users.GetProperty("users").EnumerateArray(), u => u.GetProperty("email").GetString() == "a@example.com");
    }

    [Fact]
    public async Task Keys_can_be_added_and_revoked_and_a_revoked_key_stops_at_once()
    {
        var admin = _engine.Admin();
        var user = await _engine.NewUserAsync("k@example.com");
        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/user/info")).StatusCode);

        var second = await (await admin.PostAsJsonAsync("/admin/keys", new { email = "k@example.com" })).Json();
        var secondClient = _engine.ClientWithKey(second.GetProperty("api_key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await secondClient.GetAsync("/user/info")).StatusCode);

        var keys = await (await admin.GetAsync("/admin/keys?email=k@example.com")).Json();
        Assert.Equal(2, keys.GetProperty("keys").GetArrayLength());
        Assert.DoesNotContain(second.GetProperty("api_key").GetString()!, keys.ToString());

        Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/admin/keys/{second.GetProperty("key_id").GetString()}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await secondClient.GetAsync("/user/info")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync("/user/info")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync("/admin/keys/ak-nope")).StatusCode);
    }

    [Fact]
    public async Task Preferences_have_defaults_persist_and_enforce_their_rules()
    {
        var user = await _engine.NewUserAsync("p@example.com");
        var defaults = await (await user.GetAsync("/user/preferences")).Json();
        Assert.True(defaults.GetProperty("notify_email_cluster_create").GetBoolean());
        Assert.False(defaults.GetProperty("autopay_enabled").GetBoolean());

        async Task Rejected(object body, string field)
        {
            var response = await user.PatchJson("/user/preferences", body);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
            Assert.Contains(field, (await response.Json()).GetProperty("message").GetString());
        }
        await Rejected(new { balance_warning_threshold = 0 }, "balance_warning_threshold");
        await Rejected(new { autopay_reload_threshold = 19.99 }, "autopay_reload_threshold");
        await Rejected(new { autopay_enabled = true }, "autopay_reload_threshold");
        await Rejected(new { balance_warning_threshold = 50, autopay_reload_threshold = 60 }, "autopay_reload_threshold");
        await Rejected(new { notify_email_cluster_create = "sometimes" }, "notify_email_cluster_create");

        var saved = await user.PatchJson("/user/preferences", new { notify_email_cluster_destroy = false, balance_warning_threshold = 100, autopay_reload_threshold = 25, autopay_enabled = true });
        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);
        var after = await (await user.GetAsync("/user/preferences")).Json();
        Assert.False(after.GetProperty("notify_email_cluster_destroy").GetBoolean());
        Assert.True(after.GetProperty("autopay_enabled").GetBoolean());
        Assert.Equal(100m, after.GetProperty("balance_warning_threshold").GetDecimal());
        Assert.Equal(25m, after.GetProperty("autopay_reload_threshold").GetDecimal());
    }

    [Fact]
    public async Task Claims_and_volumes_are_refused_when_the_balance_cannot_cover_them()
    {
        var admin = _engine.Admin();
        var created = await (await admin.PostAsJsonAsync("/admin/users", new { email = "broke@example.com", balance_usd = 2 })).Json();
        var broke = _engine.ClientWithKey(created.GetProperty("api_key").GetString());

        var claim = await broke.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" });
        Assert.Equal(HttpStatusCode.PaymentRequired, claim.StatusCode);
        var message = (await claim.Json()).GetProperty("message").GetString();
        Assert.Contains("balance", message);
        Assert.Contains("$2.00", message);

        // 100 GB for 24 h is about $0.33; 1000 GB for 24 h is about $3.29.
        Assert.Equal(HttpStatusCode.Accepted, (await broke.PostAsJsonAsync("/storage/create", new { size = 100 })).StatusCode);
        var big = await broke.PostAsJsonAsync("/storage/create", new { size = 1000 });
        Assert.Equal(HttpStatusCode.PaymentRequired, big.StatusCode);
        Assert.Equal("insufficient_balance", (await big.Json()).GetProperty("error").GetString());

        await admin.PostAsJsonAsync("/admin/credit", new { email = "broke@example.com", amount_usd = 10 });
        Assert.Equal(HttpStatusCode.Accepted, (await broke.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" })).StatusCode);
    }
}

public sealed class UserAndOperatorOnSqlite() : UserAndOperatorTests(Backend.Sqlite);

public sealed class UserAndOperatorOnPostgres() : UserAndOperatorTests(Backend.Postgres);
