using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Replicas;

/// <summary>Two replicas (two connection pools on one real PostgreSQL) racing for the same request.</summary>
public sealed class FencingRaceTests
{
    [Fact]
    public async Task Concurrent_claims_of_one_request_give_it_to_exactly_one_replica()
    {
        var connection = PostgresServer.Instance.CreateDatabase();
        using var replicaA = Database.Postgres(connection);
        using var replicaB = Database.Postgres(connection);
        using var h = await WorkerHarness.CreateAsync(db: replicaA);
        var storeA = new OpenPool.Engine.Requests.RequestStore(replicaA);
        var storeB = new OpenPool.Engine.Requests.RequestStore(replicaB);

        for (var round = 0; round < 20; round++)
        {
            var (_, requestId) = await h.CreateClusterAsync();
            var now = h.Clock.Now();
            var claims = await Task.WhenAll(
                storeA.ClaimAsync("replica-a", 10, now, h.LeaseMs),
                storeB.ClaimAsync("replica-b", 10, now, h.LeaseMs));
            var winners = claims.SelectMany(c => c).Where(r => r.Id == requestId).ToList();
            Assert.Single(winners);
            Assert.Equal(1, winners[0].LeaseToken);
            // Clear the board for the next round.
            h.Clock.Advance(TimeSpan.FromMilliseconds(h.LeaseMs + 1));
            await h.NewWorker(replicaA).RunOnceAsync();
            Assert.Equal("COMPLETED", (await h.RequestAsync(requestId)).Status);
        }
    }

    [Fact]
    public async Task A_lapsed_lease_raced_by_its_old_holder_and_a_new_replica_takes_effect_once()
    {
        var connection = PostgresServer.Instance.CreateDatabase();
        using var replicaA = Database.Postgres(connection);
        using var replicaB = Database.Postgres(connection);
        using var h = await WorkerHarness.CreateAsync(db: replicaA);
        var (clusterId, requestId) = await h.CreateClusterAsync();

        var slow = h.NewWorker(replicaA);
        var staleRow = (await new OpenPool.Engine.Requests.RequestStore(replicaA).ClaimAsync(slow.Owner, 10, h.Clock.Now(), h.LeaseMs)).Single();
        h.Clock.Advance(TimeSpan.FromMilliseconds(h.LeaseMs + 1));

        // Replica B takes the lapsed request over while replica A wakes up and carries on at the same time.
        var fast = h.NewWorker(replicaB);
        await Task.WhenAll(fast.RunOnceAsync(), slow.ProcessAsync(staleRow, CancellationToken.None));

        // Either replica may win (the old holder keeps its token until someone claims over it);
        // whichever does, the request ends once and the cluster is provisioned once.
        var row = await h.RequestAsync(requestId);
        Assert.Equal("COMPLETED", row.Status);
        Assert.InRange(row.LeaseToken, 1, 2);
        Assert.Equal(1, await h.EffectsAsync("provision", clusterId));
        Assert.Equal("RUNNING", (await h.Clusters.GetAsync(clusterId, CancellationToken.None))!.Status);
    }
}
