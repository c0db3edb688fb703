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

    public static TheoryData<string, int?, bool> KeygenTypes => new()
    {
        { "ed25519", null, false }, { "rsa", 2048, false }, { "rsa", 3072, false }, { "ecdsa", 256, false }, { "ecdsa", 384, false }, { "ecdsa", 521, false },
        { "ed25519", null, true }, { "rsa", 2048, true }, { "ecdsa", 256, true }, { "ecdsa", 384, true }, { "ecdsa", 521, true },
    };

    [Theory]
    [MemberData(nameof(KeygenTypes))]
    public async Task Every_key_and_certificate_type_ssh_keygen_makes_is_accepted_with_its_fingerprint(string type, int? bits, bool certificate)
    {
        using var keygen = new SshKeygen();
        var path = keygen.NewKey(type, bits);
        if (certificate)
            path = keygen.Certify(path);
        await AssertAcceptedAsync(path);
    }

    [Fact]
    public async Task Security_keys_and_their_certificates_are_accepted()
    {
        // No hardware here to make an sk key: build the public blobs from the wire format
        // (PROTOCOL.u2f), with real curve points, and let ssh-keygen fingerprint (and certify) them.
        using var keygen = new SshKeygen();
        var ed25519Point = Convert.FromBase64String(File.ReadAllText(keygen.NewKey("ed25519")).Split(' ')[1])[^32..];
        using var ec = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var q = ec.ExportParameters(false).Q;
        var skEd25519 = Blob("sk-ssh-ed25519@openssh.com", ed25519Point, "ssh:"u8.ToArray());
        var skEcdsa = Blob("sk-ecdsa-sha2-nistp256@openssh.com", "nistp256"u8.ToArray(), [0x04, .. q.X!, .. q.Y!], "ssh:"u8.ToArray());

        foreach (var (type, blob) in new[] { ("sk-ssh-ed25519@openssh.com", skEd25519), ("sk-ecdsa-sha2-nistp256@openssh.com", skEcdsa) })
        {
            var path = keygen.Write($"{type} {Convert.ToBase64String(blob)} yubikey@lab");
            await AssertAcceptedAsync(path);
            await AssertAcceptedAsync(keygen.Certify(path));
        }

        // The blob's inner type must be the line's, and the application must be there.
        var truncated = Blob("sk-ssh-ed25519@openssh.com", ed25519Point);
        await AssertRefusedAsync($"sk-ssh-ed25519@openssh.com {Convert.ToBase64String(truncated)}", "malformed");
        await AssertRefusedAsync($"sk-ecdsa-sha2-nistp256@openssh.com {Convert.ToBase64String(skEd25519)}", "does not match");
    }

    [Fact]
    public async Task A_certificate_whose_inner_key_does_not_match_its_type_is_refused()
    {
        using var keygen = new SshKeygen();
        var cert = File.ReadAllText(keygen.Certify(keygen.NewKey("ed25519"))).Split(' ');
        var renamed = Convert.FromBase64String(cert[1]);
        // Same length, another certificate type: the fields that follow are ed25519's, not ECDSA's.
        var forged = Blob("ecdsa-sha2-nistp256-cert-v01@openssh.com").Concat(renamed[(4 + "ssh-ed25519-cert-v01@openssh.com".Length)..]).ToArray();
        await AssertRefusedAsync($"ecdsa-sha2-nistp256-cert-v01@openssh.com {Convert.ToBase64String(forged)}", "malformed");
        await AssertRefusedAsync($"ssh-ed25519-cert-v01@openssh.com {cert[1][..^12]}", "malformed");
    }

    public static TheoryData<string, string> HostileEntries => new()
    {
        { TestKeys.Ed25519 + "\n" + TestKeys.Rsa2048, "one key per entry" },
        { TestKeys.Ed25519 + "\r\n" + TestKeys.Rsa2048 + "\n", "one key per entry" },
        { TestKeys.Ed25519 + "\nno-pty", "one key per entry" },
        { "no-pty " + TestKeys.Ed25519, "options" },
        { "command=\"x y\" " + TestKeys.Rsa2048, "options" },
        { "from=\"10.0.0.1\",no-agent-forwarding " + TestKeys.EcdsaP256, "options" },
        { TestKeys.Ed25519 + " evil\u001b[2Jcomment", "control characters" },
        { TestKeys.Ed25519 + " bell\u0007", "control characters" },
        { TestKeys.Ed25519 + " csi\u009b31m", "control characters" },
    };

    [Theory]
    [MemberData(nameof(HostileEntries))]
    public async Task Several_keys_options_and_control_characters_are_refused_with_the_reason(string text, string reason) =>
        await AssertRefusedAsync(text, reason);

    [Fact]
    public async Task A_trailing_newline_alone_is_fine()
    {
        var response = await _engine.Admin().PostAsJsonAsync("/user/ssh-key/add", new { public_key = TestKeys.Ed25519 + "\n", name = "pub-file" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(TestKeys.Ed25519Fingerprint, (await response.Json()).GetProperty("key").GetProperty("fingerprint").GetString());
    }

    [Theory]
    [InlineData("x\u001b[2Jy")]
    [InlineData("laptop\nssh-ed25519 AAAA")]
    [InlineData("tab\tname")]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("-starts-with-dash")]
    public async Task Key_names_follow_the_resource_naming_rule(string name)
    {
        var response = await _engine.Admin().PostAsJsonAsync("/user/ssh-key/add", new { public_key = TestKeys.Ed25519, name });
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, body.ToString());
        Assert.Equal("name", body.GetProperty("detail")[0].GetProperty("loc")[1].GetString());
        var list = await (await _engine.Admin().GetAsync("/user/ssh-key/list")).Json();
        Assert.Equal(0, list.GetProperty("keys").GetArrayLength());
        Assert.DoesNotContain('\u001b', list.GetProperty("message").GetString()!);
    }

    private async Task AssertAcceptedAsync(string path)
    {
        var line = File.ReadAllText(path);
        var response = await _engine.Admin().PostAsJsonAsync("/user/ssh-key/add", new { public_key = line, name = "k-" + Guid.NewGuid().ToString("N")[..8] });
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{line}: {body}");
        Assert.Equal(SshKeygen.Fingerprint(path), body.GetProperty("key").GetProperty("fingerprint").GetString());
        Assert.Equal(line.Split(' ')[0], body.GetProperty("key").GetProperty("key_type").GetString());
        // Certificates share their key's fingerprint: remove this one so the next (the certificate) is new.
        Assert.Equal(HttpStatusCode.OK, (await _engine.Admin().DeleteAsync($"/user/ssh-key/remove/{body.GetProperty("key").GetProperty("key_id").GetString()}")).StatusCode);
    }

    private async Task AssertRefusedAsync(string text, string reason)
    {
        var response = await _engine.Admin().PostAsJsonAsync("/user/ssh-key/add", new { public_key = text });
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, body.ToString());
        Assert.Contains(reason, body.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, (await (await _engine.Admin().GetAsync("/user/ssh-key/list")).Json()).GetProperty("keys").GetArrayLength());
    }

    /// <summary>SSH wire-format strings (uint32 length, bytes), the first being the type.</summary>
    private static byte[] Blob(string type, params byte[][] fields)
    {
        var buffer = new List<byte>();
        foreach (var field in new[] { System.Text.Encoding.ASCII.GetBytes(type) }.Concat(fields))
        {
            buffer.AddRange([(byte)(field.Length >> 24), (byte)(field.Length >> 16), (byte)(field.Length >> 8), (byte)field.Length]);
            buffer.AddRange(field);
        }
        return [.. buffer];
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
