using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using OpenPool.Engine.Data;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>The TensorPool object-storage API (spec §2.8, §4.4): every route and code, roles, scopes.</summary>
public abstract class ManagementApiTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    private async Task<HttpClient> UserAsync(string email, string? org, string role = "member")
    {
        var response = await _engine.Admin().PostAsJsonAsync("/admin/users", new { email, org_name = org, role });
        response.EnsureSuccessStatusCode();
        return _engine.ClientWithKey((await response.Json()).GetProperty("api_key").GetString());
    }

    private IS3CredentialSource Source => _engine.Services.GetRequiredService<IS3CredentialSource>();

    private static async Task<JsonElement> OkAsync(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<string> ErrorAsync(HttpResponseMessage response, HttpStatusCode expected, string error)
    {
        var body = await OkAsync(response, expected);
        Assert.Equal(error, body.GetProperty("error").GetString());
        var message = body.GetProperty("message").GetString();
        Assert.False(string.IsNullOrWhiteSpace(message));
        return message!;
    }

    [Fact]
    public async Task Before_enable_every_route_says_to_run_tp_object_storage_enable()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var probes = new (HttpMethod Method, string Path)[]
        {
            (HttpMethod.Get, "/object-storage/credentials"),
            (HttpMethod.Post, "/object-storage/rotate-keys"),
            (HttpMethod.Delete, "/object-storage/disable"),
            (HttpMethod.Get, "/object-storage/configure/aws"),
            (HttpMethod.Get, "/object-storage/configure/rclone"),
            (HttpMethod.Get, "/object-storage/bucket/list"),
            (HttpMethod.Put, "/object-storage/bucket/create/my-bucket"),
            (HttpMethod.Delete, "/object-storage/bucket/delete/my-bucket"),
        };
        foreach (var (method, path) in probes)
        {
            var message = await ErrorAsync(await admin.SendAsync(new HttpRequestMessage(method, path)), HttpStatusCode.NotFound, "object_storage_not_enabled");
            Assert.Contains("tp object-storage enable", message);
        }
    }

    [Fact]
    public async Task Enable_returns_the_credentials_model_and_enabling_again_returns_the_same_keys()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var first = await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        foreach (var field in new[] { "org_id", "access_key_id", "secret_access_key", "endpoint", "region", "iam_username", "status", "created_at", "updated_at", "message" })
            Assert.Equal(JsonValueKind.String, first.GetProperty(field).ValueKind);
        Assert.Equal(JsonValueKind.Null, first.GetProperty("profile_id").ValueKind);
        var keyId = first.GetProperty("access_key_id").GetString()!;
        var secret = first.GetProperty("secret_access_key").GetString()!;
        Assert.Matches("^OPKI[A-Z0-9]{16}$", keyId);
        Assert.Matches("^[A-Za-z0-9+/]{40}$", secret);
        Assert.Equal(ObjectStorageOptions.DefaultUrl, first.GetProperty("endpoint").GetString());
        Assert.Equal("us-east-1", first.GetProperty("region").GetString());
        Assert.Equal("active", first.GetProperty("status").GetString());
        Assert.DoesNotContain(secret, first.GetProperty("message").GetString()); // tp prints the fields after the message

        var again = await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        Assert.Equal(keyId, again.GetProperty("access_key_id").GetString());
        Assert.Equal(secret, again.GetProperty("secret_access_key").GetString());
        Assert.Contains("already enabled", again.GetProperty("message").GetString());

        var read = await OkAsync(await admin.GetAsync("/object-storage/credentials"));
        Assert.Equal(keyId, read.GetProperty("access_key_id").GetString());
        Assert.Equal(secret, read.GetProperty("secret_access_key").GetString());
        Assert.Equal(first.GetProperty("created_at").GetString(), read.GetProperty("created_at").GetString());

        var found = await Source.FindAsync(keyId, default);
        Assert.NotNull(found);
        Assert.Equal(secret, found.SecretAccessKey);
        Assert.Equal(first.GetProperty("org_id").GetString(), found.ScopeId);
        Assert.Null(await Source.FindAsync("OPKI" + new string('Z', 16), default));
        Assert.Null(await Source.FindAsync("not-a-key", default));
    }

    [Fact]
    public async Task Members_read_keys_and_manage_buckets_but_only_admins_enable_rotate_and_disable()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var member = await UserAsync("member@a.example", "lab-a");
        Assert.Contains("admin", await ErrorAsync(await member.PostAsync("/object-storage/enable", null), HttpStatusCode.Forbidden, "forbidden"));
        var keys = await OkAsync(await admin.PostAsync("/object-storage/enable", null));

        var seen = await OkAsync(await member.GetAsync("/object-storage/credentials"));
        Assert.Equal(keys.GetProperty("access_key_id").GetString(), seen.GetProperty("access_key_id").GetString());
        await ErrorAsync(await member.PostAsync("/object-storage/rotate-keys", null), HttpStatusCode.Forbidden, "forbidden");
        await ErrorAsync(await member.DeleteAsync("/object-storage/disable"), HttpStatusCode.Forbidden, "forbidden");
        await OkAsync(await member.GetAsync("/object-storage/configure/rclone"));

        await OkAsync(await member.PutAsync("/object-storage/bucket/create/member-made", null), HttpStatusCode.Created);
        var list = await OkAsync(await admin.GetAsync("/object-storage/bucket/list"));
        Assert.Equal(["member-made"], list.GetProperty("buckets").EnumerateArray().Select(b => b.GetString()));
        var deleted = await member.DeleteAsync("/object-storage/bucket/delete/member-made");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);

        // Still enabled, and still the same keys: nothing a member did changed them.
        var after = await OkAsync(await admin.GetAsync("/object-storage/credentials"));
        Assert.Equal(keys.GetProperty("secret_access_key").GetString(), after.GetProperty("secret_access_key").GetString());
    }

    [Fact]
    public async Task A_user_without_an_organization_is_their_own_scope_and_admin()
    {
        var solo = await UserAsync("solo@example.com", null);
        var keys = await OkAsync(await solo.PostAsync("/object-storage/enable", null));
        Assert.StartsWith("user:", keys.GetProperty("org_id").GetString());
        await OkAsync(await solo.PostAsync("/object-storage/rotate-keys", null));
        await OkAsync(await solo.DeleteAsync("/object-storage/disable"));
    }

    [Fact]
    public async Task Rotate_returns_new_keys_and_the_old_ones_are_not_found_at_once()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var member = await UserAsync("member@a.example", "lab-a");
        var old = await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        var oldKeyId = old.GetProperty("access_key_id").GetString()!;
        Assert.NotNull(await Source.FindAsync(oldKeyId, default));

        var rotated = await OkAsync(await admin.PostAsync("/object-storage/rotate-keys", null));
        var newKeyId = rotated.GetProperty("access_key_id").GetString()!;
        Assert.NotEqual(oldKeyId, newKeyId);
        Assert.NotEqual(old.GetProperty("secret_access_key").GetString(), rotated.GetProperty("secret_access_key").GetString());
        Assert.Null(await Source.FindAsync(oldKeyId, default));
        Assert.Equal(rotated.GetProperty("secret_access_key").GetString(), (await Source.FindAsync(newKeyId, default))!.SecretAccessKey);
        Assert.Equal(old.GetProperty("created_at").GetString(), rotated.GetProperty("created_at").GetString());
        var hint = "tp object-storage configure rclone";
        var rotateMessage = rotated.GetProperty("message").GetString()!;
        Assert.Equal(rotateMessage.IndexOf(hint, StringComparison.Ordinal), rotateMessage.LastIndexOf(hint, StringComparison.Ordinal));
        Assert.Contains(hint, rotateMessage);

        var memberView = await OkAsync(await member.GetAsync("/object-storage/credentials"));
        Assert.Equal(newKeyId, memberView.GetProperty("access_key_id").GetString());
    }

    [Fact]
    public async Task Disable_is_refused_while_buckets_exist_naming_them_and_afterwards_the_keys_stop_working()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var keys = await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        var keyId = keys.GetProperty("access_key_id").GetString()!;
        await OkAsync(await admin.PutAsync("/object-storage/bucket/create/keep-me-one", null), HttpStatusCode.Created);
        await OkAsync(await admin.PutAsync("/object-storage/bucket/create/keep-me-two", null), HttpStatusCode.Created);

        var message = await ErrorAsync(await admin.DeleteAsync("/object-storage/disable"), HttpStatusCode.Conflict, "buckets_exist");
        Assert.Contains("keep-me-one", message);
        Assert.Contains("keep-me-two", message);
        Assert.NotNull(await Source.FindAsync(keyId, default));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/object-storage/bucket/delete/keep-me-one")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/object-storage/bucket/delete/keep-me-two")).StatusCode);
        var disabled = await OkAsync(await admin.DeleteAsync("/object-storage/disable"));
        Assert.False(string.IsNullOrWhiteSpace(disabled.GetProperty("message").GetString()));
        Assert.Null(await Source.FindAsync(keyId, default));
        await ErrorAsync(await admin.GetAsync("/object-storage/credentials"), HttpStatusCode.NotFound, "object_storage_not_enabled");
        await ErrorAsync(await admin.DeleteAsync("/object-storage/disable"), HttpStatusCode.NotFound, "object_storage_not_enabled");

        // Enabling again issues fresh keys; the old ones stay dead.
        var again = await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        Assert.NotEqual(keyId, again.GetProperty("access_key_id").GetString());
        Assert.Null(await Source.FindAsync(keyId, default));
    }

    [Fact]
    public async Task Bucket_routes_answer_spec_codes()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        await OkAsync(await admin.PostAsync("/object-storage/enable", null));

        var created = await admin.PutAsync("/object-storage/bucket/create/datasets", null);
        Assert.Contains("datasets", (await OkAsync(created, HttpStatusCode.Created)).GetProperty("message").GetString());
        await ErrorAsync(await admin.PutAsync("/object-storage/bucket/create/datasets", null), HttpStatusCode.Conflict, "bucket_already_owned_by_you");
        foreach (var bad in new[] { "UPPER", "ab", "has_underscore", "-dash-first", "192.168.5.4", new string('a', 64) })
        {
            var body = await OkAsync(await admin.PutAsync($"/object-storage/bucket/create/{bad}", null), HttpStatusCode.UnprocessableEntity);
            Assert.Equal("validation_error", body.GetProperty("error").GetString());
            Assert.Contains("Bucket names", body.GetProperty("message").GetString());
        }
        await OkAsync(await admin.PutAsync("/object-storage/bucket/create/checkpoints", null), HttpStatusCode.Created);

        var list = await OkAsync(await admin.GetAsync("/object-storage/bucket/list"));
        Assert.Equal(["checkpoints", "datasets"], list.GetProperty("buckets").EnumerateArray().Select(b => b.GetString()));
        var details = list.GetProperty("bucket_details").EnumerateArray().ToList();
        Assert.Equal("checkpoints", details[0].GetProperty("name").GetString());
        Assert.Equal(0, details[0].GetProperty("object_count").GetInt64());
        Assert.Equal(0, details[0].GetProperty("size_bytes").GetInt64());
        Assert.True(DateTimeOffset.TryParse(details[0].GetProperty("created_at").GetString(), out _));
        Assert.Contains("checkpoints", list.GetProperty("message").GetString());

        // An object in the bucket (as the S3 endpoint would commit it): delete is refused.
        var db = _engine.Services.GetRequiredService<Database>();
        await db.WriteAsync((c, t) => c.ExecuteAsync(
            "INSERT INTO s3_objects (bucket, key, size, etag, blob_id, last_modified) VALUES ('datasets', 'train.csv', 5, 'e', 'blob-1', 0)", transaction: t));
        await ErrorAsync(await admin.DeleteAsync("/object-storage/bucket/delete/datasets"), HttpStatusCode.Conflict, "bucket_not_empty");
        await db.WriteAsync((c, t) => c.ExecuteAsync("DELETE FROM s3_objects WHERE bucket = 'datasets'", transaction: t));

        var gone = await admin.DeleteAsync("/object-storage/bucket/delete/datasets");
        Assert.Equal(HttpStatusCode.NoContent, gone.StatusCode);
        Assert.Empty(await gone.Content.ReadAsByteArrayAsync());
        await ErrorAsync(await admin.DeleteAsync("/object-storage/bucket/delete/datasets"), HttpStatusCode.NotFound, "bucket_not_found");
        await ErrorAsync(await admin.DeleteAsync("/object-storage/bucket/delete/never-was"), HttpStatusCode.NotFound, "bucket_not_found");
    }

    [Fact]
    public async Task Scopes_are_isolated_between_two_organizations_and_a_user_without_one()
    {
        var a = await UserAsync("admin@a.example", "lab-a", "admin");
        var b = await UserAsync("admin@b.example", "lab-b", "admin");
        var solo = await UserAsync("solo@example.com", null);
        var keys = new List<JsonElement>();
        foreach (var client in new[] { a, b, solo })
            keys.Add(await OkAsync(await client.PostAsync("/object-storage/enable", null)));
        Assert.Equal(3, keys.Select(k => k.GetProperty("org_id").GetString()).Distinct().Count());
        Assert.Equal(3, keys.Select(k => k.GetProperty("access_key_id").GetString()).Distinct().Count());
        for (var i = 0; i < 3; i++)
            Assert.Equal(keys[i].GetProperty("org_id").GetString(), (await Source.FindAsync(keys[i].GetProperty("access_key_id").GetString()!, default))!.ScopeId);

        await OkAsync(await a.PutAsync("/object-storage/bucket/create/a-private", null), HttpStatusCode.Created);
        // Bucket names are global: taken by anyone is a 409, but the other tenant's bucket does not show.
        await ErrorAsync(await b.PutAsync("/object-storage/bucket/create/a-private", null), HttpStatusCode.Conflict, "bucket_already_exists");
        await ErrorAsync(await solo.PutAsync("/object-storage/bucket/create/a-private", null), HttpStatusCode.Conflict, "bucket_already_exists");
        foreach (var other in new[] { b, solo })
        {
            var list = await OkAsync(await other.GetAsync("/object-storage/bucket/list"));
            Assert.Empty(list.GetProperty("buckets").EnumerateArray());
            await ErrorAsync(await other.DeleteAsync("/object-storage/bucket/delete/a-private"), HttpStatusCode.NotFound, "bucket_not_found");
        }
        Assert.Equal(["a-private"], (await OkAsync(await a.GetAsync("/object-storage/bucket/list"))).GetProperty("buckets").EnumerateArray().Select(x => x.GetString()));

        // Rotating one scope's keys leaves the others' working; B can disable (it has no buckets), A cannot.
        await OkAsync(await b.PostAsync("/object-storage/rotate-keys", null));
        Assert.NotNull(await Source.FindAsync(keys[0].GetProperty("access_key_id").GetString()!, default));
        Assert.NotNull(await Source.FindAsync(keys[2].GetProperty("access_key_id").GetString()!, default));
        await OkAsync(await b.DeleteAsync("/object-storage/disable"));
        await ErrorAsync(await a.DeleteAsync("/object-storage/disable"), HttpStatusCode.Conflict, "buckets_exist");
    }

    [Fact]
    public async Task Configure_aws_and_rclone_hand_out_the_current_keys_in_ini_sections()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var keys = await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        var keyId = keys.GetProperty("access_key_id").GetString();
        var secret = keys.GetProperty("secret_access_key").GetString();

        var aws = await OkAsync(await admin.GetAsync("/object-storage/configure/aws"));
        Assert.Equal("tp", aws.GetProperty("profile_name").GetString());
        Assert.Equal(ObjectStorageOptions.DefaultUrl, aws.GetProperty("endpoint").GetString());
        var credentials = Ini.Parse(aws.GetProperty("credentials_file").GetString()!);
        Assert.Equal(keyId, credentials["tp"]["aws_access_key_id"]);
        Assert.Equal(secret, credentials["tp"]["aws_secret_access_key"]);
        var config = Ini.Parse(aws.GetProperty("config_file").GetString()!);
        Assert.Equal("us-east-1", config["profile tp"]["region"]);
        Assert.Equal(ObjectStorageOptions.DefaultUrl, config["profile tp"]["endpoint_url"]);
        Assert.Contains("addressing_style = path", aws.GetProperty("config_file").GetString());
        // awscli v1 presigns with SigV2 unless told; the endpoint only accepts SigV4.
        Assert.Contains("signature_version = s3v4", aws.GetProperty("config_file").GetString());

        var rclone = await OkAsync(await admin.GetAsync("/object-storage/configure/rclone"));
        Assert.Equal("tp", rclone.GetProperty("remote_name").GetString());
        var remote = Ini.Parse(rclone.GetProperty("rclone_config").GetString()!)["tp"];
        Assert.Equal("s3", remote["type"]);
        Assert.Equal("Other", remote["provider"]);
        Assert.Equal(keyId, remote["access_key_id"]);
        Assert.Equal(secret, remote["secret_access_key"]);
        Assert.Equal(ObjectStorageOptions.DefaultUrl, remote["endpoint"]);
        Assert.Equal("true", remote["force_path_style"]);

        // After a rotation the sections carry the new keys.
        var rotated = await OkAsync(await admin.PostAsync("/object-storage/rotate-keys", null));
        var after = Ini.Parse((await OkAsync(await admin.GetAsync("/object-storage/configure/rclone"))).GetProperty("rclone_config").GetString()!)["tp"];
        Assert.Equal(rotated.GetProperty("access_key_id").GetString(), after["access_key_id"]);
    }

    [Fact]
    public async Task The_secret_is_not_in_the_database_in_clear()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var secret = (await OkAsync(await admin.PostAsync("/object-storage/enable", null))).GetProperty("secret_access_key").GetString()!;
        var db = _engine.Services.GetRequiredService<Database>();
        var stored = await db.ReadAsync(c => c.QuerySingleAsync<string>("SELECT secret_sealed FROM object_storage_accounts"));
        Assert.DoesNotContain(secret, stored);
        Assert.StartsWith("v1:", stored);
        if (db.SqlitePath is { } path)
        {
            // Nowhere in the file or its write-ahead log either (the idempotency store included).
            foreach (var file in new[] { path, path + "-wal" }.Where(File.Exists))
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var copy = new MemoryStream();
                await stream.CopyToAsync(copy);
                Assert.DoesNotContain(secret, Encoding.Latin1.GetString(copy.ToArray()));
            }
        }
        var keyFile = Path.Combine(_engine.DataDir, "object-storage.key");
        Assert.True(File.Exists(keyFile));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
    }

    [Fact]
    public async Task An_idempotency_key_on_enable_does_not_keep_the_secret()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        var request = new HttpRequestMessage(HttpMethod.Post, "/object-storage/enable");
        request.Headers.Add("Idempotency-Key", "enable-once");
        var secret = (await OkAsync(await admin.SendAsync(request))).GetProperty("secret_access_key").GetString()!;
        var db = _engine.Services.GetRequiredService<Database>();
        var kept = await db.ReadAsync(c => c.QueryAsync<byte[]?>("SELECT response_body FROM idempotency_keys"));
        Assert.All(kept, body => Assert.DoesNotContain(secret, body is null ? "" : Encoding.UTF8.GetString(body)));
    }

    [Fact]
    public async Task A_retried_rotate_with_the_same_idempotency_key_rotates_once_and_says_where_the_keys_are()
    {
        var admin = await UserAsync("admin@a.example", "lab-a", "admin");
        await OkAsync(await admin.PostAsync("/object-storage/enable", null));
        HttpRequestMessage Rotate()
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/object-storage/rotate-keys");
            request.Headers.Add("Idempotency-Key", "rotate-once");
            return request;
        }
        var rotated = await OkAsync(await admin.SendAsync(Rotate()));

        var message = await ErrorAsync(await admin.SendAsync(Rotate()), HttpStatusCode.Conflict, "secret_not_replayed");
        Assert.Contains("GET /object-storage/credentials", message);
        Assert.DoesNotContain("API key", message);
        var current = await OkAsync(await admin.GetAsync("/object-storage/credentials"));
        Assert.Equal(rotated.GetProperty("access_key_id").GetString(), current.GetProperty("access_key_id").GetString());
        Assert.Equal(rotated.GetProperty("secret_access_key").GetString(), current.GetProperty("secret_access_key").GetString());
    }
}

public sealed class ManagementApiOnSqlite() : ManagementApiTests(Backend.Sqlite);

public sealed class ManagementApiOnPostgres() : ManagementApiTests(Backend.Postgres);

/// <summary>Just enough INI for the tests: sections of key = value lines (continuation lines skipped).</summary>
internal static class Ini
{
    public static Dictionary<string, Dictionary<string, string>> Parse(string text)
    {
        var sections = new Dictionary<string, Dictionary<string, string>>();
        Dictionary<string, string>? current = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith('['))
                sections[line.Trim('[', ']', ' ')] = current = new Dictionary<string, string>();
            else if (current is not null && !line.StartsWith(' ') && line.IndexOf('=') is var eq and > 0)
                current[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        return sections;
    }
}
