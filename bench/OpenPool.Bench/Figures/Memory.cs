using System.Net;
using System.Net.Http.Json;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Bench.Figures;

/// <summary>
/// Engine resident memory (VmRSS) after 10,000 clusters that stay up, plus churn (clusters created
/// and destroyed) up to the request count, all through HTTP with instant provisioning.
/// </summary>
internal static class Memory
{
    public static async Task RunAsync(Report report, bool quick)
    {
        const int liveClusters = 10_000;
        var requests = quick ? 40_000 : 100_000;
        var churnPairs = (requests - liveClusters) / 2;
        await using var engine = await BenchEngine.StartAsync(null,
            "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Billing:InitialBalanceUsd=100000000");
        using var client = engine.Client(connections: 32);
        var startRss = engine.ResidentMegabytes();

        await Load.RunAsync(liveClusters, 32, async _ =>
            await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" }).ExpectAsync(HttpStatusCode.Accepted, "create"));
        await Load.RunAsync(churnPairs, 32, async _ =>
        {
            var created = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" }).ExpectAsync(HttpStatusCode.Accepted, "create");
            // Queued behind its own create (one unfinished request per object), then carried out.
            await client.DeleteAsync($"/cluster/{created.GetProperty("cluster_id").GetString()}").ExpectAsync(HttpStatusCode.Accepted, "destroy");
        });
        if (!await engine.AllRequestsFinishedAsync(TimeSpan.FromMinutes(10)))
            throw new TimeoutException("requests did not finish");
        var total = await engine.ScalarAsync("SELECT COUNT(*) FROM requests");
        var running = await engine.ScalarAsync("SELECT COUNT(*) FROM clusters WHERE status = 'RUNNING'");
        // Read the clusters back once, as a dashboard would, then let the engine settle.
        await client.GetAsync("/cluster/list").ExpectAsync(HttpStatusCode.OK, "list");
        await Task.Delay(TimeSpan.FromSeconds(5));
        var rss = engine.ResidentMegabytes();
        report.Add("engine_rss_mb_10k_clusters", rss,
            $"VmRSS after {running:N0} running clusters and {total:N0} requests over HTTP ({churnPairs:N0} of them create+destroy pairs), one full /cluster/list, 5 s idle; " +
            $"{startRss:0} MB at start, peak {engine.ResidentMegabytes("VmHWM"):0} MB");
    }
}
