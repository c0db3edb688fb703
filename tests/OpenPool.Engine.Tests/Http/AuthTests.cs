using System.Net;
using System.Net.Http.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

public abstract class AuthTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Theory]
    [InlineData("POST", "/health")]
    [InlineData("GET", "/cluster/list")]
    [InlineData("GET", "/request/info/req_x")]
    [InlineData("POST", "/cluster/create")]
    [InlineData("DELETE", "/cluster/c-x")]
    [InlineData("GET", "/admin/simulated/effects")]
    public async Task Missing_or_bad_keys_get_401_with_a_message(string method, string path)
    {
        foreach (var key in new string?[] { null, "tpk_not-a-real-key", "garbage" })
        {
            var response = await _engine.ClientWithKey(key).SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var body = await response.Json();
            Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
            Assert.Equal("unauthorized", body.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task The_401_and_403_answers_keep_their_exact_bodies()
    {
        var missing = await _engine.ClientWithKey(null).GetAsync("/cluster/list");
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("application/json; charset=utf-8", missing.Content.Headers.ContentType?.ToString());
        Assert.Equal("{\"message\":\"Missing API key. Send it as 'Authorization: Bearer <TENSORPOOL_KEY>'.\",\"error\":\"unauthorized\"}",
            await missing.Content.ReadAsStringAsync());
        Assert.False(missing.Headers.Contains("WWW-Authenticate"));

        foreach (var header in new[] { "Bearer tpk_not-a-real-key", "bearer garbage" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/cluster/list");
            request.Headers.TryAddWithoutValidation("Authorization", header);
            var invalid = await _engine.CreateClient().SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, invalid.StatusCode);
            Assert.Equal("{\"message\":\"Invalid API key. Check TENSORPOOL_KEY.\",\"error\":\"unauthorized\"}", await invalid.Content.ReadAsStringAsync());
        }

        // Another scheme, or an empty bearer, is no key at all.
        foreach (var header in new[] { "Basic dXNlcjpwYXNz", "Bearer  ", "AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-east-1/s3/aws4_request" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/cluster/list");
            request.Headers.TryAddWithoutValidation("Authorization", header);
            var response = await _engine.CreateClient().SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.StartsWith("Missing API key.", (await response.Json()).GetProperty("message").GetString());
        }

        var user = await _engine.NewUserAsync("exact@example.com");
        var forbidden = await user.GetAsync("/admin/users");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Equal("{\"message\":\"This endpoint needs the operator's admin key.\",\"error\":\"forbidden\"}", await forbidden.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Healthz_needs_no_key()
    {
        var response = await _engine.ClientWithKey(null).GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // A key that is wrong does not matter where none is needed.
        Assert.Equal(HttpStatusCode.OK, (await _engine.ClientWithKey("tpk_not-a-real-key").GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task Unknown_routes_answer_the_json_404_with_or_without_a_key()
    {
        foreach (var key in new string?[] { null, "tpk_not-a-real-key" })
        {
            var response = await _engine.ClientWithKey(key).GetAsync("/no/such/route");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", (await response.Json()).GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task Operator_endpoints_refuse_ordinary_users()
    {
        var user = await _engine.NewUserAsync("member@example.com", "acme");
        var response = await user.PostAsJsonAsync("/admin/users", new { email = "x@example.com" });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.NotNull((await response.Json()).GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/admin/simulated/effects")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _engine.Admin().GetAsync("/admin/simulated/effects")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _engine.Admin().GetAsync("/admin/users")).StatusCode);
    }

    [Fact]
    public async Task Admin_key_file_is_owner_only_and_keys_are_stored_hashed()
    {
        var key = _engine.AdminKey;
        Assert.StartsWith("tpk_", key);
        Assert.True(key.Length >= 4 + 43, "a key carries at least 32 random bytes");
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_engine.DataDir, "admin.key")));
        var db = _engine.Services.GetRequiredService<Database>();
        var stored = (await db.ReadAsync(c => c.QueryAsync<(string Hash, string Prefix)>("SELECT key_hash, prefix FROM api_keys"))).ToList();
        Assert.Contains(stored, k => k.Hash == Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key))));
        Assert.DoesNotContain(stored, k => k.Hash.Contains(key, StringComparison.Ordinal) || k.Prefix.Length >= key.Length);
        if (db.SqlitePath is { } file)
            Assert.DoesNotContain(key, System.Text.Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)));
    }

    [Fact]
    public async Task New_users_get_a_working_key_and_their_org_is_created()
    {
        var response = await _engine.Admin().PostAsJsonAsync("/admin/users", new { email = "new@example.com", org_name = "lab", role = "admin" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        Assert.StartsWith("u-", body.GetProperty("user_id").GetString());
        var client = _engine.ClientWithKey(body.GetProperty("api_key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/health", null)).StatusCode);

        var again = await _engine.Admin().PostAsJsonAsync("/admin/users", new { email = "new@example.com" });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }
}

public sealed class AuthOnSqlite() : AuthTests(Backend.Sqlite);

public sealed class AuthOnPostgres() : AuthTests(Backend.Postgres);
