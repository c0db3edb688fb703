using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenPool.Bench.Harness;

namespace OpenPool.Bench.Scenarios;

/// <summary>
/// 1,000 claims submitted over several seconds (each with its own Idempotency-Key, retried through
/// failures as a careful client would) while the engine is SIGKILLed and restarted on the same data
/// 5 times at random moments. Then: how many never reach a terminal state, and how many clusters
/// the simulated cloud provisioned more than once.
/// </summary>
public static class Chaos
{
    public sealed record Outcome(int Claims, int Lost, int Failed, long DuplicateProvisions, long Clusters, IReadOnlyList<string> KillTimes);

    internal static async Task RunAsync(Report report, int seed = 20261128)
    {
        var outcome = await RunOnceAsync(1000, kills: 5, seed);
        var detail = $"{outcome.Claims} claims (1 s provisioning, 2 s leases), engine SIGKILLed at {string.Join(", ", outcome.KillTimes)} and restarted each time; " +
                     $"{outcome.Clusters} clusters exist, {outcome.Failed} requests FAILED (terminal), seed {seed}";
        report.Add("chaos_lost_requests", outcome.Lost, detail);
        report.Add("chaos_duplicate_provisions", outcome.DuplicateProvisions, detail);
    }

    public static async Task<Outcome> RunOnceAsync(int claims, int kills, int seed)
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=1", "--Requests:LeaseSeconds=2",
            "--Requests:IdempotencyInFlightSeconds=3", "--Billing:InitialBalanceUsd=1000000");
        var clients = new ConcurrentDictionary<Uri, HttpClient>();
        HttpClient Current() => clients.GetOrAdd(engine.Url, url => BenchEngine.Client(url, engine.AdminKey, 16));
        var acknowledged = new ConcurrentDictionary<int, string>();
        var killTimes = new List<string>();
        var started = DateTime.UtcNow;

        var killer = Task.Run(async () =>
        {
            var random = new Random(seed);
            for (var i = 0; i < kills; i++)
            {
                await Task.Delay(random.Next(700, 2500));
                await engine.KillAsync();
                killTimes.Add($"{(DateTime.UtcNow - started).TotalSeconds:0.0} s");
                await engine.RestartAsync();
            }
        });

        var submitter = Load.RunAsync(claims, 8, async i =>
        {
            await Task.Delay(60); // spread the claims over the kills, so some are in flight at each
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (DateTime.UtcNow < deadline)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/cluster/create")
                    {
                        Content = new StringContent("{\"instance_type\":\"1xH100\"}", Encoding.UTF8, "application/json"),
                    };
                    request.Headers.Add("Idempotency-Key", $"chaos-{seed}-{i}");
                    using var response = await Current().SendAsync(request);
                    if (response.StatusCode == HttpStatusCode.Accepted)
                    {
                        var body = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync()).RootElement;
                        acknowledged[i] = body.GetProperty("request_id").GetString()!;
                        return;
                    }
                    if (response.StatusCode != HttpStatusCode.Conflict) // 409: still in flight on an engine that died; its claim lapses
                        throw new InvalidOperationException($"claim {i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
                catch (HttpRequestException)
                {
                    // The engine is down or was killed mid-call: the same key again, shortly.
                }
                catch (TaskCanceledException)
                {
                }
                await Task.Delay(100);
            }
        });
        await Task.WhenAll(killer, submitter);

        // Everything acknowledged must end terminal; a claim never acknowledged is lost as well.
        await engine.AllRequestsFinishedAsync(TimeSpan.FromMinutes(3));
        var terminal = 0;
        var failed = 0;
        foreach (var id in acknowledged.Values)
        {
            var status = await engine.ScalarAsync(
                $"SELECT CASE WHEN status = 'COMPLETED' THEN 1 WHEN status = 'FAILED' THEN 2 ELSE 0 END FROM requests WHERE id = '{id}'");
            if (status > 0)
                terminal++;
            if (status == 2)
                failed++;
        }
        var duplicates = await engine.ScalarAsync(
            "SELECT COUNT(*) FROM (SELECT object_id FROM sim_effects WHERE kind = 'provision' GROUP BY object_id HAVING COUNT(*) > 1) d");
        var clusters = await engine.ScalarAsync("SELECT COUNT(*) FROM clusters");
        foreach (var client in clients.Values)
            client.Dispose();
        return new Outcome(claims, claims - terminal, failed, duplicates, clusters, killTimes);
    }
}
