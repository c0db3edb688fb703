using System.Net.Http.Json;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// A real engine process with its S3 endpoint on a free loopback port, and tenants whose keys come
/// from <c>POST /object-storage/enable</c>, as a user gets them.
/// </summary>
internal sealed class S3Engine : IAsyncDisposable
{
    private readonly TempDir _dir;

    private S3Engine(TempDir dir, EngineProcess engine)
    {
        _dir = dir;
        Engine = engine;
    }

    public EngineProcess Engine { get; private set; }

    public string DataDir => _dir.Path;

    public Uri S3Url => Engine.S3Url;

    public static async Task<S3Engine> StartAsync(params string[] args)
    {
        var dir = new TempDir();
        return new S3Engine(dir, await EngineProcess.StartAsync(dir.Path, args));
    }

    /// <summary>SIGKILL, then the same data directory again (the S3 port changes).</summary>
    public async Task KillAndRestartAsync(params string[] args)
    {
        await Engine.KillAsync();
        await Engine.DisposeAsync();
        Engine = await EngineProcess.StartAsync(_dir.Path, args);
    }

    public string AdminKey => File.ReadAllText(Path.Combine(_dir.Path, "admin.key")).Trim();

    /// <summary>A new organization's admin, with object storage enabled: their S3 key pair.</summary>
    public async Task<Tenant> TenantAsync(string name)
    {
        using var admin = Engine.Client(AdminKey);
        var created = await admin.PostAsJsonAsync("/admin/users", new { email = $"{name}@example.com", org_name = name, role = "admin" });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var apiKey = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("api_key").GetString()!;
        using var user = Engine.Client(apiKey);
        var enabled = await user.PostAsync("/object-storage/enable", null);
        var body = await enabled.Content.ReadAsStringAsync();
        Assert.True(enabled.IsSuccessStatusCode, body);
        var json = JsonDocument.Parse(body).RootElement;
        // The endpoint the credentials name is the bound S3 listener.
        Assert.Equal(S3Url.ToString().TrimEnd('/'), json.GetProperty("endpoint").GetString());
        return new Tenant(json.GetProperty("access_key_id").GetString()!, json.GetProperty("secret_access_key").GetString()!, apiKey);
    }

    public AmazonS3Client Client(Tenant tenant) => new(
        new BasicAWSCredentials(tenant.AccessKeyId, tenant.SecretAccessKey),
        new AmazonS3Config { ServiceURL = S3Url.ToString(), ForcePathStyle = true, AuthenticationRegion = "us-east-1", Timeout = TimeSpan.FromMinutes(5) });

    public async ValueTask DisposeAsync()
    {
        await Engine.DisposeAsync();
        _dir.Dispose();
    }
}

internal sealed record Tenant(string AccessKeyId, string SecretAccessKey, string ApiKey);
