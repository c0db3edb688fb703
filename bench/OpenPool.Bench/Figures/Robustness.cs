using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Bench.Figures;

/// <summary>The correctness figures: fuzzing, the idempotency race and the tenant matrix, on a real engine.</summary>
internal static class Robustness
{
    public static async Task FuzzAsync(Report report, bool quick)
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        var generated = await FuzzCorpus.RunAsync(engine.Url, engine.AdminKey, quick ? 10_000 : 30_000, seed: 20261128, concurrency: 4);
        var raw = await FuzzCorpus.RunRawAsync(engine.Url, engine.AdminKey);
        var failures = generated.ServerErrors.Concat(raw.ServerErrors).ToList();
        foreach (var failure in failures.Take(10))
            Console.Error.WriteLine("       5xx: " + failure[..Math.Min(failure.Length, 400)]);
        var cases = generated.Cases + raw.Cases;
        report.Add("fuzz_5xx", failures.Count, $"{generated.Cases:N0} generated requests (seed 20261128) and {raw.Cases} raw HTTP/1.1 ones against Kestrel");
        report.Add("fuzz_cases", cases, "requests in the fuzz corpus");
    }

    public static async Task IdempotencyRaceAsync(Report report)
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        var outcome = await IdempotencyRace.RunAsync(engine.Url, engine.AdminKey, 100);
        if (outcome.Unexpected.Count > 0)
            throw new InvalidOperationException("unexpected answers: " + string.Join("; ", outcome.Unexpected.Take(5)));
        report.Add("idempotency_race_clusters", outcome.Clusters,
            $"100 concurrent POST /cluster/create with one Idempotency-Key: {outcome.Accepted} answered 202 (the one answer, replayed), {outcome.Conflicts} answered 409 (in flight)");
    }

    public static async Task TenantsAsync(Report report)
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0", "--Simulated:VolumeSeconds=0", "--Simulated:RestartSeconds=0");
        var outcome = await TenantMatrix.RunAsync(engine.Url, engine.AdminKey);
        foreach (var leak in outcome.Leaks)
            Console.Error.WriteLine("       leak: " + leak);
        report.Add("tenant_leaks", outcome.Leaks.Count, $"{outcome.Probes} probes by user B of user A's ids (SSH key, cluster, instance, volume, job, requests) and lists");
    }
}
