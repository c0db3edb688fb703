using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>The database an in-process engine runs on.</summary>
public enum Backend
{
    Sqlite,
    Postgres,
}

/// <summary>
/// The whole engine in process over HTTP, on its own temporary data directory, with the simulated
/// cloud. Settings are the same configuration keys an operator passes on the command line.
/// </summary>
public sealed class EngineFactory : WebApplicationFactory<Program>
{
    private readonly TempDir _dir = new();
    private readonly Dictionary<string, string> _settings;

    public EngineFactory(Backend backend = Backend.Sqlite, Dictionary<string, string>? settings = null)
    {
        Backend = backend;
        _settings = new Dictionary<string, string>
        {
            ["Simulated:ProvisionSeconds"] = "1",
            ["Simulated:ReleaseSeconds"] = "0.5",
        };
        foreach (var (key, value) in settings ?? [])
            _settings[key] = value;
        if (backend == Backend.Postgres)
            _settings["database"] = PostgresServer.Instance.CreateDatabase();
    }

    public Backend Backend { get; }

    /// <summary>More host configuration, after the settings (test services, a startup filter).</summary>
    public Action<IWebHostBuilder>? WebHost { get; init; }

    public string DataDir => _dir.Path;

    public string AdminKey
    {
        get
        {
            _ = Services; // starts the engine (TestServer or Kestrel), which writes the admin key
            return File.ReadAllText(Path.Combine(DataDir, "admin.key")).Trim();
        }
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("data-dir", DataDir);
        foreach (var (key, value) in _settings)
            builder.UseSetting(key, value);
        WebHost?.Invoke(builder);
    }

    /// <summary>
    /// On Kestrel the factory points clients at the server's first address, which may be the S3
    /// listener (the engine binds two); API clients must reach the API's.
    /// </summary>
    private void PointAtApi(HttpClient client)
    {
        var addresses = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        if (addresses.Count < 2)
            return; // TestServer, or one listener
        // The API's listener is the one that answers GET /healthz without a key; the S3 one refuses it.
        using var probe = new HttpClient();
        foreach (var address in addresses)
        {
            var uri = new Uri(address.Replace("://[::]", "://localhost").Replace("://0.0.0.0", "://localhost"));
            if (probe.GetAsync(new Uri(uri, "/healthz")).GetAwaiter().GetResult().IsSuccessStatusCode)
            {
                client.BaseAddress = uri;
                return;
            }
        }
    }

    public HttpClient ClientWithKey(string? key)
    {
        var client = CreateClient();
        PointAtApi(client);
        if (key is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public HttpClient Admin() => ClientWithKey(AdminKey);

    /// <summary>Creates a user through the operator API and returns a client that calls as them.</summary>
    public async Task<HttpClient> NewUserAsync(string email, string? org = null)
    {
        var response = await Admin().PostAsJsonAsync("/admin/users", new { email, org_name = org });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return ClientWithKey(body.GetProperty("api_key").GetString());
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
            _dir.Dispose();
    }
}
