using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Engine.Tests.Http;

/// <summary>
/// The benchmark harness's correctness scenarios at a size fit for every test run, against a real
/// engine process on Kestrel (bench/run.sh runs them large and reports them as figures).
/// </summary>
public sealed class HarnessScenarioTests
{
    [Fact]
    public async Task A_seeded_corpus_of_bad_requests_never_gets_a_5xx_or_no_answer()
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        var generated = await FuzzCorpus.RunAsync(engine.Url, engine.AdminKey, count: 1500, seed: 42, concurrency: 2);
        var raw = await FuzzCorpus.RunRawAsync(engine.Url, engine.AdminKey);
        var failures = generated.ServerErrors.Concat(raw.ServerErrors).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {generated.Cases + raw.Cases} failed:\n" + string.Join("\n", failures.Take(5)));
        Assert.True(raw.Cases > 500);
    }

    [Fact]
    public async Task A_hundred_concurrent_creates_with_one_idempotency_key_make_one_cluster()
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        var outcome = await IdempotencyRace.RunAsync(engine.Url, engine.AdminKey, calls: 100);
        Assert.Empty(outcome.Unexpected);
        Assert.Equal(1, outcome.Clusters);
        Assert.Equal(100, outcome.Accepted + outcome.Conflicts);
        Assert.True(outcome.Accepted >= 1);
    }

    [Fact]
    public async Task Another_tenant_learns_nothing_of_any_resource_through_any_endpoint()
    {
        await using var engine = await BenchEngine.StartAsync(null,
            "--Simulated:ProvisionSeconds=0", "--Simulated:VolumeSeconds=0", "--Simulated:RestartSeconds=0");
        var outcome = await TenantMatrix.RunAsync(engine.Url, engine.AdminKey);
        Assert.True(outcome.Leaks.Count == 0, string.Join("\n", outcome.Leaks));
        Assert.True(outcome.Probes > 40);
    }

    [Fact]
    public async Task Claims_in_flight_through_a_kill_and_restart_all_finish_and_none_is_provisioned_twice()
    {
        var outcome = await Chaos.RunOnceAsync(claims: 150, kills: 1, seed: 7);
        Assert.Single(outcome.KillTimes);
        Assert.Equal(0, outcome.Lost);
        Assert.Equal(0, outcome.DuplicateProvisions);
        Assert.Equal(150, outcome.Clusters);
    }
}
