using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Storage;

public abstract class VolumeLifecycleTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend, new()
    {
        ["Simulated:ProvisionSeconds"] = "2",
        ["Simulated:VolumeSeconds"] = "0.5",
        ["Simulated:RestartSeconds"] = "0.5",
    });

    public void Dispose() => _engine.Dispose();

    private static async Task<(string StorageId, string RequestId)> CreateVolumeAsync(HttpClient client, int size = 100, string? name = null)
    {
        var response = await client.PostAsJsonAsync("/storage/create", new { size, name });
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body.ToString());
        return (body.GetProperty("storage_id").GetString()!, body.GetProperty("request_id").GetString()!);
    }

    private static async Task<JsonElement> VolumeAsync(HttpClient client, string storageId) =>
        (await (await client.GetAsync($"/storage/info/{storageId}")).Json()).GetProperty("storage");

    [Fact]
    public async Task A_volume_lives_through_attach_while_claiming_grow_detach_and_destroy()
    {
        var client = await _engine.NewUserAsync("vol@example.com");
        var (storageId, createRequest) = await CreateVolumeAsync(client, 100, "datasets");
        Assert.StartsWith("s-", storageId);
        var (clusterId, claimId, _) = await client.CreateClusterAsync();

        // Attach while the claim is still provisioning: the attach waits for it, then completes.
        var attach = await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { clusterId } });
        Assert.Equal(HttpStatusCode.Accepted, attach.StatusCode);
        var attachIds = (await attach.Json()).GetProperty("request_ids").EnumerateArray().Select(e => e.GetString()!).ToList();
        var attachId = Assert.Single(attachIds);
        var early = await (await client.GetAsync($"/request/info/{attachId}")).Json();
        Assert.Equal("PENDING", early.GetProperty("status").GetString());
        Assert.Contains(claimId, early.GetProperty("external_message").GetString());

        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(createRequest)).Final.GetProperty("status").GetString());
        var attached = await client.PollLikeCliAsync(attachId);
        Assert.Equal("COMPLETED", attached.Final.GetProperty("status").GetString());
        Assert.Equal("STORAGE_ATTACH", attached.Final.GetProperty("request_type").GetString());
        var volume = await VolumeAsync(client, storageId);
        Assert.Equal("READY", volume.GetProperty("status").GetString());
        Assert.Equal($"/mnt/nfs-{storageId}", volume.GetProperty("mount_path").GetString());
        var attachment = Assert.Single(volume.GetProperty("attached_clusters").EnumerateArray());
        Assert.Equal(clusterId, attachment.GetProperty("cluster_id").GetString());
        Assert.Equal("attached", attachment.GetProperty("status").GetString());
        Assert.Equal("RUNNING", (await (await client.GetAsync($"/cluster/info/{clusterId}")).Json()).GetProperty("cluster").GetProperty("status").GetString());

        // Destroying an attached volume is refused, naming the cluster.
        var refused = await client.DeleteAsync($"/storage/{storageId}");
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains(clusterId, (await refused.Json()).GetProperty("message").GetString());

        // Volumes only grow.
        var shrink = await client.PatchJson($"/storage/edit/{storageId}", new { size_gb = 50 });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, shrink.StatusCode);
        var grow = await client.PatchJson($"/storage/edit/{storageId}", new { size_gb = 250, tp_storage_name = "datasets-v2" });
        Assert.Equal(HttpStatusCode.Accepted, grow.StatusCode);
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync((await grow.Json()).GetProperty("request_id").GetString()!)).Final.GetProperty("status").GetString());
        volume = await VolumeAsync(client, storageId);
        Assert.Equal(250, volume.GetProperty("size_gb").GetInt32());
        Assert.Equal("datasets-v2", volume.GetProperty("name").GetString());

        var detach = await client.PostAsJsonAsync("/storage/detach", new { storage_id = storageId, cluster_id = clusterId });
        Assert.Equal(HttpStatusCode.Accepted, detach.StatusCode);
        var detached = await client.PollLikeCliAsync((await detach.Json()).GetProperty("request_id").GetString()!);
        Assert.Equal("STORAGE_DETACH", detached.Final.GetProperty("request_type").GetString());
        Assert.Equal("COMPLETED", detached.Final.GetProperty("status").GetString());
        Assert.Empty((await VolumeAsync(client, storageId)).GetProperty("attached_clusters").EnumerateArray());

        var destroy = await client.DeleteAsync($"/storage/{storageId}");
        Assert.Equal(HttpStatusCode.Accepted, destroy.StatusCode);
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync((await destroy.Json()).GetProperty("request_id").GetString()!)).Final.GetProperty("status").GetString());
        Assert.Equal("DESTROYED", (await VolumeAsync(client, storageId)).GetProperty("status").GetString());
        var list = await (await client.GetAsync("/storage/list")).Json();
        Assert.DoesNotContain(list.GetProperty("volumes").EnumerateArray(), v => v.GetProperty("storage_id").GetString() == storageId);

        var effects = await (await _engine.Admin().GetAsync($"/admin/simulated/effects?object_id={clusterId}")).Json();
        Assert.Equal(["provision", "attach", "detach"], effects.GetProperty("effects").EnumerateArray().Select(e => e.GetProperty("kind").GetString()));
    }

    [Fact]
    public async Task Cluster_info_lists_its_attached_volumes_with_name_and_mount_path()
    {
        var client = await _engine.NewUserAsync("info@example.com");
        var (storageId, createRequest) = await CreateVolumeAsync(client, 100, "checkpoints");
        var (clusterId, claimId, _) = await client.CreateClusterAsync();
        await client.PollLikeCliAsync(createRequest);
        await client.PollLikeCliAsync(claimId);
        var before = (await (await client.GetAsync($"/cluster/info/{clusterId}")).Json()).GetProperty("message").GetString()!;
        Assert.DoesNotContain(storageId, before, StringComparison.Ordinal);

        var attach = await (await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { clusterId } })).Json();
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(attach.GetProperty("request_ids")[0].GetString()!)).Final.GetProperty("status").GetString());

        var message = (await (await client.GetAsync($"/cluster/info/{clusterId}")).Json()).GetProperty("message").GetString()!;
        var line = message.Split('\n').Single(l => l.StartsWith(storageId, StringComparison.Ordinal));
        Assert.Contains("checkpoints", line, StringComparison.Ordinal);
        Assert.Contains($"/mnt/nfs-{storageId}", line, StringComparison.Ordinal);
        Assert.Contains("attached", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Releasing_a_cluster_detaches_its_volumes_which_survive()
    {
        var client = await _engine.NewUserAsync("keep@example.com");
        var (storageId, _) = await CreateVolumeAsync(client);
        var (clusterId, claimId, _) = await client.CreateClusterAsync();
        var attachId = (await (await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { clusterId } })).Json())
            .GetProperty("request_ids")[0].GetString()!;
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(attachId)).Final.GetProperty("status").GetString());

        var release = (await (await client.DeleteAsync($"/cluster/{clusterId}")).Json()).GetProperty("request_id").GetString()!;
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(release)).Final.GetProperty("status").GetString());
        var volume = await VolumeAsync(client, storageId);
        Assert.Equal("READY", volume.GetProperty("status").GetString());
        Assert.Empty(volume.GetProperty("attached_clusters").EnumerateArray());
        Assert.Equal(HttpStatusCode.Accepted, (await client.DeleteAsync($"/storage/{storageId}")).StatusCode);
        Assert.Equal("COMPLETED", (await (await client.GetAsync($"/request/info/{claimId}")).Json()).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Attaching_to_a_cluster_being_destroyed_fails_clearly()
    {
        var client = await _engine.NewUserAsync("late@example.com");
        var (storageId, _) = await CreateVolumeAsync(client);
        var (clusterId, _, _) = await client.CreateClusterAsync();

        // Queued behind the claim, then the cluster is destroyed: the attach ends FAILED, saying why.
        var queued = (await (await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { clusterId } })).Json())
            .GetProperty("request_ids")[0].GetString()!;
        Assert.Equal(HttpStatusCode.Accepted, (await client.DeleteAsync($"/cluster/{clusterId}")).StatusCode);
        var failed = await client.PollLikeCliAsync(queued);
        Assert.Equal("FAILED", failed.Final.GetProperty("status").GetString());
        Assert.Contains("being destroyed", failed.Final.GetProperty("external_message").GetString());

        // Asked after the destroy was accepted: refused at once.
        var refused = await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { clusterId } });
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains(clusterId, (await refused.Json()).GetProperty("message").GetString());
        Assert.Empty((await VolumeAsync(client, storageId)).GetProperty("attached_clusters").EnumerateArray());
    }

    [Fact]
    public async Task Volumes_validate_size_name_and_protection()
    {
        var client = await _engine.NewUserAsync("rules@example.com");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsJsonAsync("/storage/create", new { size = 1 })).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsJsonAsync("/storage/create", new { name = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsJsonAsync("/storage/create", new { size = "big" })).StatusCode);
        var (storageId, _) = await CreateVolumeAsync(client, 100, "shared");
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsJsonAsync("/storage/create", new { size = 100, name = "shared" })).StatusCode);

        await client.PatchJson($"/storage/edit/{storageId}", new { deletion_protection = true });
        var protectedDelete = await client.DeleteAsync($"/storage/{storageId}");
        Assert.Equal(HttpStatusCode.Conflict, protectedDelete.StatusCode);
        Assert.Equal("deletion_protected", (await protectedDelete.Json()).GetProperty("error").GetString());

        var detachUnattached = await client.PostAsJsonAsync("/storage/detach", new { storage_id = storageId, cluster_id = "c-nope" });
        Assert.Equal(HttpStatusCode.NotFound, detachUnattached.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = Array.Empty<string>() })).StatusCode);
    }

    [Fact]
    public async Task Organization_volumes_are_shared_with_members_and_hidden_from_outsiders()
    {
        var owner = await _engine.NewUserAsync("owner@example.com", "shared");
        var member = await _engine.NewUserAsync("member@example.com", "shared");
        var outsider = await _engine.NewUserAsync("outsider@example.com", "elsewhere");
        var (storageId, requestId) = await CreateVolumeAsync(owner);

        Assert.DoesNotContain(storageId, await (await member.GetAsync("/storage/list")).Content.ReadAsStringAsync());
        Assert.Contains(storageId, await (await member.GetAsync("/storage/list?include_org=True")).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync($"/storage/info/{storageId}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync($"/request/info/{requestId}")).StatusCode);

        foreach (var response in new[]
        {
            await outsider.GetAsync($"/storage/info/{storageId}"),
            await outsider.DeleteAsync($"/storage/{storageId}"),
            await outsider.PatchJson($"/storage/edit/{storageId}", new { size_gb = 500 }),
            await outsider.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { "c-x" } }),
            await outsider.GetAsync($"/request/info/{requestId}"),
        })
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain(storageId, await (await outsider.GetAsync("/storage/list?include_org=true")).Content.ReadAsStringAsync());
    }
}

public sealed class VolumeLifecycleOnSqlite() : VolumeLifecycleTests(Backend.Sqlite);

public sealed class VolumeLifecycleOnPostgres() : VolumeLifecycleTests(Backend.Postgres);
