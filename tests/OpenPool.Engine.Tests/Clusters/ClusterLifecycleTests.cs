using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Clusters;

public abstract class ClusterLifecycleTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task The_official_cli_flow_creates_polls_lists_edits_and_destroys_a_cluster()
    {
        var client = _engine.Admin();
        client.DefaultRequestHeaders.Add("X-Client-Type", "cli");

        var health = await client.PostAsJsonAsync("/health", new { package_version = "0.0.8", uname = new[] { "Linux" } });
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(JsonValueKind.Null, (await health.Json()).GetProperty("message").ValueKind);

        var (clusterId, requestId, created) = await client.CreateClusterAsync("2xH100", new { tp_cluster_name = "train", num_nodes = (int?)null });
        Assert.StartsWith("c-", clusterId);
        Assert.StartsWith("req_", requestId);
        Assert.Single(created.GetProperty("instance_ids").EnumerateArray());
        Assert.StartsWith("i-", created.GetProperty("instance_ids")[0].GetString());
        Assert.Contains(clusterId, created.GetProperty("message").GetString());

        var claim = await client.PollLikeCliAsync(requestId);
        Assert.Equal("COMPLETED", claim.Final.GetProperty("status").GetString());
        Assert.Equal("CLUSTER_CLAIM", claim.Final.GetProperty("request_type").GetString());
        Assert.Equal(clusterId, claim.Final.GetProperty("object_id").GetString());
        Assert.True(DateTimeOffset.TryParse(claim.Final.GetProperty("created_at").GetString(), out _));
        // A 1-second provision takes a poll to see it started and one to see it done.
        Assert.InRange(claim.Polls, 1, 3);

        var info = await (await client.GetAsync($"/cluster/info/{clusterId}")).Json();
        Assert.Equal("RUNNING", info.GetProperty("cluster").GetProperty("status").GetString());
        Assert.Contains("RUNNING", info.GetProperty("message").GetString());
        var instance = info.GetProperty("cluster").GetProperty("instances")[0];
        Assert.Equal("RUNNING", instance.GetProperty("status").GetString());

        var ssh = await client.GetAsync($"/ssh/{instance.GetProperty("instance_id").GetString()}?system=Linux");
        Assert.Equal(HttpStatusCode.OK, ssh.StatusCode);
        Assert.StartsWith("ssh ", (await ssh.Json()).GetProperty("command").GetString());

        var list = await (await client.GetAsync("/cluster/list")).Json();
        Assert.Contains(clusterId, list.GetProperty("message").GetString());
        Assert.Contains(list.GetProperty("clusters").EnumerateArray(), c => c.GetProperty("cluster_id").GetString() == clusterId);
        var withInstances = await (await client.GetAsync("/cluster/list?instances=True")).Json();
        Assert.Single(withInstances.GetProperty("instances").EnumerateArray());

        var edit = await client.PatchJson($"/cluster/edit/{clusterId}", new { cluster_name = "renamed" });
        Assert.Equal(HttpStatusCode.Accepted, edit.StatusCode);
        var editBody = await edit.Json();
        Assert.NotNull(editBody.GetProperty("message").GetString());
        var editRequest = await client.PollLikeCliAsync(editBody.GetProperty("request_id").GetString()!);
        Assert.Equal("CLUSTER_EDIT", editRequest.Final.GetProperty("request_type").GetString());
        Assert.Equal("COMPLETED", editRequest.Final.GetProperty("status").GetString());

        var destroy = await client.DeleteAsync($"/cluster/{clusterId}");
        Assert.Equal(HttpStatusCode.Accepted, destroy.StatusCode);
        var release = await client.PollLikeCliAsync((await destroy.Json()).GetProperty("request_id").GetString()!);
        Assert.Equal("COMPLETED", release.Final.GetProperty("status").GetString());
        Assert.Equal("CLUSTER_RELEASE", release.Final.GetProperty("request_type").GetString());

        var gone = await (await client.GetAsync($"/cluster/info/{clusterId}")).Json();
        Assert.Equal("DESTROYED", gone.GetProperty("cluster").GetProperty("status").GetString());
        var listAfter = await (await client.GetAsync("/cluster/list")).Json();
        Assert.DoesNotContain(listAfter.GetProperty("clusters").EnumerateArray(), c => c.GetProperty("cluster_id").GetString() == clusterId);

        var operations = await (await client.GetAsync($"/cluster/operations/{clusterId}")).Json();
        var types = operations.GetProperty("requests").EnumerateArray().Select(r => r.GetProperty("request_type").GetString()).ToList();
        Assert.Equal(["CLUSTER_RELEASE", "CLUSTER_EDIT", "CLUSTER_CLAIM"], types);

        var effects = await (await client.GetAsync($"/admin/simulated/effects?object_id={clusterId}")).Json();
        var kinds = effects.GetProperty("effects").EnumerateArray().Select(e => e.GetProperty("kind").GetString()).ToList();
        Assert.Equal(["provision", "release"], kinds);
    }

    [Fact]
    public async Task Deletion_protection_refuses_destroy_until_turned_off()
    {
        // Slow provisioning keeps the claim in flight while the destroy arrives.
        using var engine = new EngineFactory(backend, new() { ["Simulated:ProvisionSeconds"] = "30" });
        var client = engine.Admin();
        var (clusterId, requestId, _) = await client.CreateClusterAsync(extra: new { deletion_protection = true });

        var refused = await client.DeleteAsync($"/cluster/{clusterId}");
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var body = await refused.Json();
        Assert.Equal("deletion_protected", body.GetProperty("error").GetString());
        Assert.Contains("deletion protection", body.GetProperty("message").GetString());

        Assert.Equal(HttpStatusCode.Accepted, (await client.PatchJson($"/cluster/edit/{clusterId}", new { deletion_protection = false })).StatusCode);
        var destroy = await client.DeleteAsync($"/cluster/{clusterId}");
        Assert.Equal(HttpStatusCode.Accepted, destroy.StatusCode);
        var release = await client.PollLikeCliAsync((await destroy.Json()).GetProperty("request_id").GetString()!);
        Assert.Equal("COMPLETED", release.Final.GetProperty("status").GetString());

        // The claim was still provisioning when the destroy came, so it was superseded.
        var claim = await (await client.GetAsync($"/request/info/{requestId}")).Json();
        Assert.Equal("FAILED", claim.GetProperty("status").GetString());
        Assert.Equal("cluster destroyed before provisioning finished", claim.GetProperty("external_message").GetString());
        var effects = await (await client.GetAsync($"/admin/simulated/effects?object_id={clusterId}")).Json();
        Assert.DoesNotContain(effects.GetProperty("effects").EnumerateArray(), e => e.GetProperty("kind").GetString() == "provision");
    }

    [Fact]
    public async Task Cluster_names_are_unique_per_owner()
    {
        var client = _engine.Admin();
        await client.CreateClusterAsync(extra: new { tp_cluster_name = "alpha" });
        var duplicate = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100", tp_cluster_name = "alpha" });
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Equal("cluster_name_taken", (await duplicate.Json()).GetProperty("error").GetString());

        var other = await _engine.NewUserAsync("other@example.com");
        await other.CreateClusterAsync(extra: new { tp_cluster_name = "alpha" });
    }

    [Fact]
    public async Task Unknown_instance_types_are_rejected_with_the_valid_ones_listed()
    {
        var response = await _engine.Admin().PostAsJsonAsync("/cluster/create", new { instance_type = "1xA100" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var message = (await response.Json()).GetProperty("message").GetString()!;
        Assert.Contains("1xA100", message);
        Assert.Contains("8xB200", message);
    }

    [Fact]
    public async Task Multi_node_is_refused_for_single_node_types()
    {
        var refused = await _engine.Admin().PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100", num_nodes = 2 });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        var (clusterId, _, body) = await _engine.Admin().CreateClusterAsync("8xH100", new { num_nodes = 2 });
        Assert.Equal(2, body.GetProperty("instance_ids").GetArrayLength());
        Assert.StartsWith("c-", clusterId);
    }

    [Fact]
    public async Task Ssh_to_an_instance_that_is_not_running_is_a_conflict()
    {
        var (_, _, body) = await _engine.Admin().CreateClusterAsync();
        var instanceId = body.GetProperty("instance_ids")[0].GetString();
        var response = await _engine.Admin().GetAsync($"/ssh/{instanceId}");
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("instance_not_running", (await response.Json()).GetProperty("error").GetString());
    }
}

public sealed class ClusterLifecycleOnSqlite() : ClusterLifecycleTests(Backend.Sqlite);

public sealed class ClusterLifecycleOnPostgres() : ClusterLifecycleTests(Backend.Postgres);
