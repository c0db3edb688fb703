using Dapper;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Requests;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Requests;

/// <summary>The request model's rules (DESIGN.md §2), one at a time, on a fake clock.</summary>
public sealed class WorkerRuleTests
{
    [Fact]
    public async Task An_expired_lease_is_reclaimed_by_another_worker()
    {
        using var h = await WorkerHarness.CreateAsync();
        var (clusterId, requestId) = await h.CreateClusterAsync();

        // A worker claims the request and dies without a word.
        var claimed = await h.Requests.ClaimAsync("dead-worker", 10, h.Clock.Now(), h.LeaseMs);
        Assert.Single(claimed);

        var survivor = h.NewWorker();
        Assert.Equal(0, await survivor.RunOnceAsync());
        Assert.Equal("PROCESSING", (await h.RequestAsync(requestId)).Status);

        h.Clock.Advance(TimeSpan.FromMilliseconds(h.LeaseMs + 1));
        Assert.Equal(1, await survivor.RunOnceAsync());
        var row = await h.RequestAsync(requestId);
        Assert.Equal("COMPLETED", row.Status);
        Assert.Equal(2, row.LeaseToken);
        Assert.Equal(1, await h.EffectsAsync("provision", clusterId));
    }

    [Fact]
    public async Task A_claim_carries_its_nodes_and_one_queued_without_them_reads_its_cluster()
    {
        using var h = await WorkerHarness.CreateAsync();
        var (current, currentRequest) = await h.CreateClusterAsync(type: "8xH100", nodes: 2);
        var payload = (await h.RequestAsync(currentRequest)).Payload;
        Assert.Contains("\"instance_type\":\"8xH100\"", payload);
        var instances = (await h.Clusters.GetAsync(current, CancellationToken.None))!.Instances.Select(i => i.Id).ToList();
        Assert.All(instances, id => Assert.Contains(id, payload));

        // An engine from before claims carried their nodes queued this one: an empty payload.
        var (older, olderRequest) = await h.CreateClusterAsync(type: "8xH100", nodes: 2);
        await h.Db.WriteAsync((c, t) => c.ExecuteAsync("UPDATE requests SET payload = '{}' WHERE id = @olderRequest", new { olderRequest }, t));

        Assert.Equal(2, await h.NewWorker().RunOnceAsync());
        foreach (var (clusterId, requestId) in new[] { (current, currentRequest), (older, olderRequest) })
        {
            Assert.Equal("COMPLETED", (await h.RequestAsync(requestId)).Status);
            var cluster = (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!;
            Assert.Equal("RUNNING", cluster.Status);
            Assert.All(cluster.Instances, node => Assert.False(string.IsNullOrEmpty(node.IpAddress)));
            Assert.Equal(2, await h.CountAsync("SELECT COUNT(*) FROM sim_nodes WHERE cluster_id = @clusterId", new { clusterId }));
        }
    }

    [Fact]
    public async Task A_stale_workers_writes_are_rejected_by_the_fencing_token()
    {
        using var h = await WorkerHarness.CreateAsync();
        var (clusterId, requestId) = await h.CreateClusterAsync();
        var stale = h.NewWorker();
        var staleRow = (await h.Requests.ClaimAsync(stale.Owner, 10, h.Clock.Now(), h.LeaseMs)).Single();

        // The stale worker pauses past its lease; another takes the request over and finishes it.
        h.Clock.Advance(TimeSpan.FromMilliseconds(h.LeaseMs + 1));
        await h.NewWorker().RunOnceAsync();
        var finished = await h.RequestAsync(requestId);
        Assert.Equal("COMPLETED", finished.Status);

        // The stale worker wakes up and carries on with its old token: nothing it does sticks.
        await stale.ProcessAsync(staleRow, CancellationToken.None);
        var after = await h.RequestAsync(requestId);
        Assert.Equal("COMPLETED", after.Status);
        Assert.Equal(finished.ExternalMessage, after.ExternalMessage);
        Assert.Equal(finished.Step, after.Step);
        Assert.Equal(finished.UpdatedAt, after.UpdatedAt);
        Assert.Equal(1, await h.EffectsAsync("provision", clusterId));
        Assert.Equal("RUNNING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);

        var forged = staleRow.Clone();
        forged.Status = "FAILED";
        await Assert.ThrowsAsync<GuardFailedException>(() =>
            h.Db.WriteAsync(write => RequestStore.AddFencedUpdate(write, forged, staleRow.LeaseToken)));
        Assert.Equal("COMPLETED", (await h.RequestAsync(requestId)).Status);
    }

    [Fact]
    public async Task Transient_faults_back_off_exponentially_and_end_failed_with_a_message()
    {
        using var h = await WorkerHarness.CreateAsync(
            new SimulatedOptions { ProvisionSeconds = 0, TransientFailureRate = 1, Seed = 7 },
            new RequestOptions { MaxAttempts = 5, BackoffBaseSeconds = 1, BackoffMaxSeconds = 60 });
        var (clusterId, requestId) = await h.CreateClusterAsync();
        var worker = h.NewWorker();

        var delays = new List<long>();
        RequestRow row;
        while (true)
        {
            await worker.RunOnceAsync();
            row = await h.RequestAsync(requestId);
            if (row.IsFinished)
                break;
            Assert.Equal("RETRYING", row.Status);
            Assert.Contains("transient fault", row.ExternalMessage);
            Assert.Contains($"attempt {row.Attempts} of 5", row.ExternalMessage);
            var delay = row.NextRunAt - h.Clock.Now();
            delays.Add(delay);
            // Not due a moment before its backoff ends.
            h.Clock.Advance(TimeSpan.FromMilliseconds(delay - 1));
            Assert.Equal(0, await worker.RunOnceAsync());
            h.Clock.Advance(TimeSpan.FromMilliseconds(1));
        }

        Assert.Equal(4, delays.Count);
        for (var i = 1; i < delays.Count; i++)
            Assert.True(delays[i] > delays[i - 1], $"backoff must grow: {string.Join(", ", delays)}");
        Assert.InRange(delays[0], 750, 1250);
        Assert.Equal("FAILED", row.Status);
        Assert.Equal(5, row.Attempts);
        Assert.Contains("Gave up after 5 attempts", row.ExternalMessage);
        Assert.Equal("FAILED", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
        Assert.Equal(0, await h.EffectsAsync("provision", clusterId));
    }

    [Fact]
    public async Task A_restarted_worker_resumes_from_the_checkpoint_instead_of_starting_over()
    {
        using var h = await WorkerHarness.CreateAsync(new SimulatedOptions { ProvisionSeconds = 10 });
        var (clusterId, requestId) = await h.CreateClusterAsync();

        await h.NewWorker().RunOnceAsync();
        var checkpoint = await h.RequestAsync(requestId);
        Assert.Equal("provision", checkpoint.Step);
        Assert.Equal("PROCESSING", checkpoint.Status);
        Assert.Null(checkpoint.LeaseOwner);
        Assert.Equal("PROVISIONING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);

        // The process dies here. A new one, with nothing but the database, carries on.
        h.Clock.Advance(TimeSpan.FromSeconds(10));
        var restarted = h.NewWorker();
        Assert.Equal(1, await restarted.RunOnceAsync());

        var done = await h.RequestAsync(requestId);
        Assert.Equal("COMPLETED", done.Status);
        // Had it started over, provisioning would need another 10 s and a second operation.
        Assert.Equal(1, await h.CountAsync("SELECT COUNT(*) FROM sim_operations WHERE request_id = @requestId", new { requestId }));
        Assert.Equal(1, await h.EffectsAsync("provision", clusterId));
        Assert.Equal("RUNNING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
    }

    [Fact]
    public async Task Requests_on_one_object_run_one_at_a_time_in_order()
    {
        using var h = await WorkerHarness.CreateAsync(new SimulatedOptions { ProvisionSeconds = 5 });
        var (clusterId, claimId) = await h.CreateClusterAsync();
        var edit = await h.Clusters.EditAsync(h.Owner, clusterId, new OpenPool.Engine.Clusters.ClusterEdit("renamed", null), CancellationToken.None);
        Assert.Equal($"waiting for {claimId} (CLUSTER_CLAIM) on {clusterId}", edit.ExternalMessage);
        var (_, otherClaim) = await h.CreateClusterAsync();

        var worker = h.NewWorker();
        Assert.Equal(2, await worker.RunOnceAsync()); // both claims start; the edit waits
        Assert.Equal("PENDING", (await h.RequestAsync(edit.Id)).Status);
        // The edit is due when the claim it waits behind is: after 5 s of provisioning.
        Assert.Equal(5, await RequestsApi.RetryAfterAsync(await h.RequestAsync(edit.Id), h.Requests, h.Clock, CancellationToken.None));

        h.Clock.Advance(TimeSpan.FromSeconds(5));
        await worker.RunOnceAsync();
        Assert.Equal("COMPLETED", (await h.RequestAsync(claimId)).Status);
        Assert.Equal("COMPLETED", (await h.RequestAsync(otherClaim)).Status);
        Assert.Equal("PENDING", (await h.RequestAsync(edit.Id)).Status);

        Assert.Equal(1, await worker.RunOnceAsync());
        var editDone = await h.RequestAsync(edit.Id);
        Assert.Equal("COMPLETED", editDone.Status);
        Assert.True(editDone.FinishedAt >= (await h.RequestAsync(claimId)).FinishedAt);
    }

    [Fact]
    public async Task A_release_supersedes_an_unfinished_claim_and_leaves_no_node()
    {
        using var h = await WorkerHarness.CreateAsync(new SimulatedOptions { ProvisionSeconds = 10, ReleaseSeconds = 2 });
        var (clusterId, claimId) = await h.CreateClusterAsync("8xH100", nodes: 2);
        var slowWorker = h.NewWorker();
        await slowWorker.RunOnceAsync(); // provisioning has begun: nodes exist at the provider
        Assert.Equal(2, await h.CountAsync("SELECT COUNT(*) FROM sim_nodes WHERE cluster_id = @clusterId AND state = 'provisioning'", new { clusterId }));

        // Provisioning is due to finish; a worker picks the claim up but is slow to act on it.
        h.Clock.Advance(TimeSpan.FromSeconds(10));
        var inFlight = (await h.Requests.ClaimAsync(slowWorker.Owner, 10, h.Clock.Now(), h.LeaseMs)).Single();

        var (release, superseded) = await h.Clusters.DestroyAsync(h.Owner, clusterId, CancellationToken.None);
        Assert.Equal([claimId], superseded);
        var claim = await h.RequestAsync(claimId);
        Assert.Equal("FAILED", claim.Status);
        Assert.Equal("cluster destroyed before provisioning finished", claim.ExternalMessage);

        var releaser = h.NewWorker();
        await releaser.RunOnceAsync();
        h.Clock.Advance(TimeSpan.FromSeconds(2));
        await releaser.RunOnceAsync();
        Assert.Equal("COMPLETED", (await h.RequestAsync(release.Id)).Status);
        Assert.Equal("DESTROYED", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);

        // The slow worker finally finishes its provisioning step: too late, and harmless.
        h.Clock.Advance(TimeSpan.FromSeconds(5));
        await slowWorker.ProcessAsync(inFlight, CancellationToken.None);
        var late = await h.NewCloud().ProvisionAsync(new ProvisionOrder(claimId, clusterId, "8xH100", ["i-x", "i-y"], 0), CancellationToken.None);
        Assert.Equal(ProgressState.PermanentFailure, late.State);

        Assert.Equal("FAILED", (await h.RequestAsync(claimId)).Status);
        Assert.Equal("DESTROYED", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
        Assert.Equal(0, await h.CountAsync("SELECT COUNT(*) FROM sim_nodes WHERE cluster_id = @clusterId AND state <> 'released'", new { clusterId }));
        Assert.Equal(0, await h.EffectsAsync("provision", clusterId));
        Assert.Equal(1, await h.EffectsAsync("release", clusterId));
    }

    [Fact]
    public async Task Claims_beyond_capacity_wait_in_retrying_and_say_so()
    {
        using var h = await WorkerHarness.CreateAsync(
            new SimulatedOptions { ProvisionSeconds = 0, Capacity = { ["1xH100"] = 1 } },
            new RequestOptions { MaxAttempts = 3 });
        var (_, first) = await h.CreateClusterAsync();
        var (secondCluster, second) = await h.CreateClusterAsync();
        var worker = h.NewWorker();
        await worker.RunOnceAsync();

        Assert.Equal("COMPLETED", (await h.RequestAsync(first)).Status);
        var waiting = await h.RequestAsync(second);
        Assert.Equal("RETRYING", waiting.Status);
        Assert.Contains("No capacity", waiting.ExternalMessage);
        Assert.Contains("0 of 1 nodes free", waiting.ExternalMessage);

        for (var i = 0; i < 5 && !(await h.RequestAsync(second)).IsFinished; i++)
        {
            h.Clock.Advance(TimeSpan.FromSeconds(60));
            await worker.RunOnceAsync();
        }
        var gaveUp = await h.RequestAsync(second);
        Assert.Equal("FAILED", gaveUp.Status);
        Assert.Contains("Gave up after 3 attempts", gaveUp.ExternalMessage);
        Assert.Equal("FAILED", (await h.Clusters.GetAsync(secondCluster, CancellationToken.None))!.Status);
    }

    [Fact]
    public async Task Finished_requests_are_swept_after_retention_and_not_before()
    {
        using var h = await WorkerHarness.CreateAsync(requests: new RequestOptions { RetentionDays = 30 });
        var (_, requestId) = await h.CreateClusterAsync();
        await h.NewWorker().RunOnceAsync();
        var sweeper = new RetentionSweeper(h.Requests, new OpenPool.Engine.Http.Idempotency(h.Db, h.Clock, Microsoft.Extensions.Options.Options.Create(h.RequestOptions)), Microsoft.Extensions.Options.Options.Create(h.RequestOptions), h.Clock,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<RetentionSweeper>.Instance);

        h.Clock.Advance(TimeSpan.FromDays(29));
        Assert.Equal(0, await sweeper.SweepOnceAsync());
        Assert.NotNull(await h.Requests.GetAsync(requestId));

        h.Clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, await sweeper.SweepOnceAsync());
        Assert.Null(await h.Requests.GetAsync(requestId));
    }

    [Fact]
    public async Task Retry_after_follows_the_providers_estimate()
    {
        using var h = await WorkerHarness.CreateAsync(new SimulatedOptions { ProvisionSeconds = 12 });
        var (_, requestId) = await h.CreateClusterAsync();
        Assert.Equal(1, await RequestsApi.RetryAfterAsync(await h.RequestAsync(requestId), h.Requests, h.Clock, CancellationToken.None));
        await h.NewWorker().RunOnceAsync();
        Assert.Equal(12, await RequestsApi.RetryAfterAsync(await h.RequestAsync(requestId), h.Requests, h.Clock, CancellationToken.None));
        h.Clock.Advance(TimeSpan.FromSeconds(10.5));
        Assert.Equal(2, await RequestsApi.RetryAfterAsync(await h.RequestAsync(requestId), h.Requests, h.Clock, CancellationToken.None));
        h.Clock.Advance(TimeSpan.FromSeconds(1.45));
        Assert.Equal(1, await RequestsApi.RetryAfterAsync(await h.RequestAsync(requestId), h.Requests, h.Clock, CancellationToken.None));
        Assert.Equal(30, RequestsApi.RetryAfterSeconds(600_000));
        Assert.Equal(1, RequestsApi.RetryAfterSeconds(-5));
    }
}
