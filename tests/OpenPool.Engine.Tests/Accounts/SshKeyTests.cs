using System.Net;
using System.Net.Http.Json;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Accounts;

public abstract class SshKeyTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Theory]
    [InlineData(TestKeys.Ed25519, "ssh-ed25519", TestKeys.Ed25519Fingerprint)]
    [InlineData(TestKeys.Rsa2048, "ssh-rsa", TestKeys.Rsa2048Fingerprint)]
    [InlineData(TestKeys.EcdsaP256, "ecdsa-sha2-nistp256", TestKeys.EcdsaP256Fingerprint)]
    [InlineData(TestKeys.EcdsaP384, "ecdsa-sha2-nistp384", TestKeys.EcdsaP384Fingerprint)]
    public void Real_keys_parse_with_ssh_keygens_fingerprint(string line, string type, string fingerprint)
    {
        Assert.True(SshPublicKey.TryParse(line, out var key, out var error), error);
        Assert.Equal(type, key!.Type);
        Assert.Equal(fingerprint, key.Fingerprint);
    }

    public static TheoryData<string, string> BrokenKeys => new()
    {
        { "", "expected" },
        { "ssh-ed25519", "expected" },
        { "ssh-ed25519 not*base64", "base64" },
        { TestKeys.Ed25519.Replace("ssh-ed25519 ", "ssh-rsa ", StringComparison.Ordinal), "does not match" },
        { "ssh-ed25519 " + TestKeys.Ed25519.Split(' ')[1][..40], "malformed" },
        { "ssh-ed25519 " + Convert.ToBase64String([.. Convert.FromBase64String(TestKeys.Ed25519.Split(' ')[1]), 0, 0, 0, 0]), "malformed" },
        { TestKeys.Rsa1024, "2048" },
        { "ssh-rsa " + TestKeys.Rsa2048.Split(' ')[1][..200], "malformed" },
        { "ecdsa-sha2-nistp384 " + TestKeys.EcdsaP384.Split(' ')[1][..100], "malformed" },
        { "ssh-dss AAAAB3NzaC1kc3MAAAA=", "Unsupported" },
        { "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA", "private key" },
        { TestKeys.EcdsaP256.Replace("AAAAIbmlzdHAyNTYAAABBBIaB", "AAAAIbmlzdHAzODQAAABBBIaB", StringComparison.Ordinal), "malformed" },
    };

    [Theory]
    [MemberData(nameof(BrokenKeys))]
    public async Task Broken_keys_are_422_with_a_reason(string line, string reason)
    {
        var response = await _engine.Admin().PostAsJsonAsync("/user/ssh-key/add", new { public_key = line });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var body = await response.Json();
        Assert.Contains(reason, body.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Keys_are_added_listed_deduplicated_and_removed()
    {
        var client = await _engine.NewUserAsync("ada@example.com", "lab");
        var added = await client.PostAsJsonAsync("/user/ssh-key/add", new { public_key = TestKeys.Ed25519 });
        Assert.Equal(HttpStatusCode.OK, added.StatusCode);
        var key = (await added.Json()).GetProperty("key");
        Assert.Equal("ada@example.com", key.GetProperty("name").GetString()); // the name defaults to the email
        Assert.Equal(TestKeys.Ed25519Fingerprint, key.GetProperty("fingerprint").GetString());
        var keyId = key.GetProperty("key_id").GetString()!;
        Assert.StartsWith("key_", keyId);

        var duplicate = await client.PostAsJsonAsync("/user/ssh-key/add", new { public_key = TestKeys.Ed25519, name = "again" });
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Contains(keyId, (await duplicate.Json()).GetProperty("message").GetString());

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/user/ssh-key/add", new { public_key = TestKeys.Rsa2048, name = "laptop" })).StatusCode);
        var list = await (await client.GetAsync("/user/ssh-key/list")).Json();
        Assert.Equal(2, list.GetProperty("keys").GetArrayLength());
        Assert.Contains("laptop", list.GetProperty("message").GetString());

        // Org members see each other's keys with include_org; an outsider cannot remove them.
        var colleague = await _engine.NewUserAsync("bo@example.com", "lab");
        var orgList = await (await colleague.GetAsync("/user/ssh-key/list?include_org=True")).Json();
        Assert.Equal(2, orgList.GetProperty("keys").GetArrayLength());
        Assert.Equal(0, (await (await colleague.GetAsync("/user/ssh-key/list")).Json()).GetProperty("keys").GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await colleague.DeleteAsync($"/user/ssh-key/remove/{keyId}")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"/user/ssh-key/remove/{keyId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"/user/ssh-key/remove/{keyId}")).StatusCode);
        Assert.Equal(1, (await (await client.GetAsync("/user/ssh-key/list")).Json()).GetProperty("keys").GetArrayLength());
    }

    [Fact]
    public async Task New_clusters_carry_saved_keys_and_request_keys_are_saved_unless_asked_not_to()
    {
        var client = await _engine.NewUserAsync("cy@example.com");
        await client.PostAsJsonAsync("/user/ssh-key/add", new { public_key = TestKeys.Ed25519, name = "saved" });

        var (clusterId, _, _) = await client.CreateClusterAsync(extra: new { public_keys = new[] { TestKeys.Rsa2048 } });
        var info = await (await client.GetAsync($"/cluster/info/{clusterId}")).Json();
        var fingerprints = info.GetProperty("cluster").GetProperty("ssh_keys").EnumerateArray().Select(k => k.GetProperty("fingerprint").GetString()).Order().ToList();
        Assert.Equal(new[] { TestKeys.Ed25519Fingerprint, TestKeys.Rsa2048Fingerprint }.Order(), fingerprints);
        Assert.Contains(TestKeys.Rsa2048Fingerprint, info.GetProperty("message").GetString());
        Assert.Equal(2, (await (await client.GetAsync("/user/ssh-key/list")).Json()).GetProperty("keys").GetArrayLength());

        var (second, _, _) = await client.CreateClusterAsync(extra: new { public_keys = new[] { TestKeys.EcdsaP256 }, save_keys = false });
        var secondInfo = await (await client.GetAsync($"/cluster/info/{second}")).Json();
        Assert.Equal(3, secondInfo.GetProperty("cluster").GetProperty("ssh_keys").GetArrayLength());
        Assert.Equal(2, (await (await client.GetAsync("/user/ssh-key/list")).Json()).GetProperty("keys").GetArrayLength());

        var bad = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100", public_keys = new[] { "ssh-rsa nope" } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.StatusCode);
    }
}

public sealed class SshKeyOnSqlite() : SshKeyTests(Backend.Sqlite);

public sealed class SshKeyOnPostgres() : SshKeyTests(Backend.Postgres);
