using System.Net;
using System.Net.Http.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

/// <summary>Another tenant's ids answer 404, never 403, on every endpoint, so ids cannot be probed.</summary>
public abstract class TenantIsolationTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task Another_users_cluster_request_and_instance_are_404_everywhere()
    {
        var alice = await _engine.NewUserAsync("alice@example.com", "alice-lab");
        var bob = await _engine.NewUserAsync("bob@example.com", "bob-lab");
        var (clusterId, requestId, body) = await alice.CreateClusterAsync();
        var instanceId = body.GetProperty("instance_ids")[0].GetString();

        var probes = new (HttpMethod Method, string Path, object? Body)[]
        {
            (HttpMethod.Get, $"/cluster/info/{clusterId}", null),
            (HttpMethod.Get, $"/cluster/operations/{clusterId}", null),
            (HttpMethod.Patch, $"/cluster/edit/{clusterId}", new { deletion_protection = true }),
            (HttpMethod.Delete, $"/cluster/{clusterId}", null),
            (HttpMethod.Get, $"/request/info/{requestId}", null),
            (HttpMethod.Get, $"/request/info/{requestId}?wait=1", null),
            (HttpMethod.Get, $"/ssh/{instanceId}", null),
        };
        foreach (var (method, path, payload) in probes)
        {
            var request = new HttpRequestMessage(method, path) { Content = payload is null ? null : JsonContent.Create(payload) };
            var response = await bob.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path} answered {(int)response.StatusCode}");
            Assert.False(string.IsNullOrEmpty((await response.Json()).GetProperty("message").GetString()));
        }

        foreach (var path in new[] { "/cluster/list", "/cluster/list?include_org=true", "/request/list", "/request/list?include_org=true" })
        {
            var text = await (await bob.GetAsync(path)).Content.ReadAsStringAsync();
            Assert.DoesNotContain(clusterId, text);
            Assert.DoesNotContain(requestId, text);
        }

        // Alice's cluster is untouched by Bob's attempts.
        var info = await (await alice.GetAsync($"/cluster/info/{clusterId}")).Json();
        Assert.False(info.GetProperty("cluster").GetProperty("deletion_protection").GetBoolean());
        Assert.NotEqual("DESTROYING", info.GetProperty("cluster").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Organization_members_see_org_clusters_with_include_org()
    {
        var first = await _engine.NewUserAsync("one@example.com", "shared-lab");
        var second = await _engine.NewUserAsync("two@example.com", "shared-lab");
        var (clusterId, _, _) = await first.CreateClusterAsync();

        var personal = await (await second.GetAsync("/cluster/list")).Json();
        Assert.DoesNotContain(personal.GetProperty("clusters").EnumerateArray(), c => c.GetProperty("cluster_id").GetString() == clusterId);
        var org = await (await second.GetAsync("/cluster/list?include_org=True")).Json();
        Assert.Contains(org.GetProperty("clusters").EnumerateArray(), c => c.GetProperty("cluster_id").GetString() == clusterId);
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync($"/cluster/info/{clusterId}")).StatusCode);
    }
}

public sealed class TenantIsolationOnSqlite() : TenantIsolationTests(Backend.Sqlite);

public sealed class TenantIsolationOnPostgres() : TenantIsolationTests(Backend.Postgres);
