using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>Two replicas on one PostgreSQL database: keys they share, and a replica with the wrong key file.</summary>
public sealed class CredentialReplicaTests
{
    private static async Task<HttpClient> AdminOfOrgAsync(EngineFactory engine)
    {
        var response = await engine.Admin().PostAsJsonAsync("/admin/users", new { email = "admin@a.example", org_name = "lab-a", role = "admin" });
        response.EnsureSuccessStatusCode();
        return engine.ClientWithKey((await response.Json()).GetProperty("api_key").GetString());
    }

    [Fact]
    public async Task A_rotation_on_one_replica_is_seen_by_the_other_on_its_next_lookup()
    {
        var database = PostgresServer.Instance.CreateDatabase();
        using var a = new EngineFactory(Backend.Sqlite, new() { ["database"] = database });
        var admin = await AdminOfOrgAsync(a);
        var old = await (await admin.PostAsync("/object-storage/enable", null)).Json();
        var oldKeyId = old.GetProperty("access_key_id").GetString()!;

        using var b = new EngineFactory(Backend.Sqlite, new()
        {
            ["database"] = database,
            ["ObjectStorage:CredentialKeyFile"] = Path.Combine(a.DataDir, "object-storage.key"),
        });
        var sourceB = b.Services.GetRequiredService<IS3CredentialSource>();
        Assert.Equal(old.GetProperty("secret_access_key").GetString(), (await sourceB.FindAsync(oldKeyId, default))!.SecretAccessKey);

        var rotated = await (await admin.PostAsync("/object-storage/rotate-keys", null)).Json();
        Assert.Null(await sourceB.FindAsync(oldKeyId, default));
        Assert.Equal(rotated.GetProperty("secret_access_key").GetString(),
            (await sourceB.FindAsync(rotated.GetProperty("access_key_id").GetString()!, default))!.SecretAccessKey);
    }

    [Fact]
    public async Task A_replica_without_the_key_file_refuses_to_start_and_says_which_file()
    {
        var database = PostgresServer.Instance.CreateDatabase();
        using var a = new EngineFactory(Backend.Sqlite, new() { ["database"] = database });
        var admin = await AdminOfOrgAsync(a);
        (await admin.PostAsync("/object-storage/enable", null)).EnsureSuccessStatusCode();

        // Real processes: the engine reports a startup failure as one line and exit code 2 (Program.cs).
        using var dirB = new TempDir();
        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => EngineProcess.StartAsync(dirB.Path, "--database", database, "--ObjectStorage:Url", "http://127.0.0.1:0"));
        Assert.Contains($"openpool: Object storage is unavailable: {Path.Combine(dirB.Path, "object-storage.key")} is missing", missing.Message);

        // Another key file (not the one the secrets were sealed with) is refused too.
        using var dirC = new TempDir();
        var wrong = Path.Combine(dirC.Path, "wrong.key");
        await File.WriteAllTextAsync(wrong, Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        var mismatch = await Assert.ThrowsAsync<InvalidOperationException>(() => EngineProcess.StartAsync(dirC.Path, "--database", database,
            "--ObjectStorage:Url", "http://127.0.0.1:0", "--ObjectStorage:CredentialKeyFile", wrong));
        Assert.Contains($"{wrong} is not the key this database's object storage secrets were sealed with", mismatch.Message);
    }
}
