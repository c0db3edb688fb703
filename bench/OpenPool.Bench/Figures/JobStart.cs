using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Bench.Figures;

/// <summary>What the job sandbox costs a user who pushes a job: push → first output line, sandboxed over unconfined.</summary>
internal static class JobStart
{
    /// <summary>
    /// Two engines side by side, the default one (every job in a bubblewrap sandbox) and one with
    /// <c>Jobs:Sandbox=None</c>, each with one cluster. Samples alternate between them (ABBA, so
    /// neither always goes first) so both see the same moments of a noisy machine. A sample is one
    /// <c>openpool job push</c> as the official CLI speaks it (the client runs the upload command,
    /// tar and curl, itself), then <c>/job/listen</c> until the first output line; the clock runs
    /// from opening the push socket to holding that line.
    /// </summary>
    /// <remarks>
    /// Python venvs are off on both engines: a venv costs the same with or without the sandbox (it is
    /// made inside it either way), so it would only add a constant to both medians and pull the ratio
    /// towards 1; without it the ratio is the sandbox's cost at its most visible.
    /// </remarks>
    public static async Task SandboxRatioAsync(Report report, bool quick)
    {
        var samples = quick ? 10 : 30;
        const int warmUp = 2;
        string[] common = ["--Simulated:ProvisionSeconds=0", "--Jobs:PythonVenv=false", "--Billing:InitialBalanceUsd=1000000"];
        await using var sandboxed = await BenchEngine.StartAsync(null, common);
        await using var unconfined = await BenchEngine.StartAsync(null, [.. common, "--Jobs:Sandbox=None"]);
        var engines = new[] { new Side("sandbox", sandboxed), new Side("no sandbox", unconfined) };
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "bench\n");
        foreach (var side in engines)
            side.Cluster = await NewClusterAsync(side.Engine);

        // The figure compares what it says it does: only the default engine's jobs are confined.
        await ExpectConfinementAsync(sandboxed, engines[0].Cluster, project.Path, confined: true);
        await ExpectConfinementAsync(unconfined, engines[1].Cluster, project.Path, confined: false);

        for (var i = 0; i < warmUp + samples; i++)
        {
            var order = i % 4 is 0 or 3 ? engines : [engines[1], engines[0]];
            foreach (var side in order)
            {
                var seconds = await PushToFirstLineAsync(side, project.Path);
                if (i >= warmUp)
                    side.Seconds.Add(seconds);
            }
        }

        var withSandbox = Median(engines[0].Seconds);
        var without = Median(engines[1].Seconds);
        var detail = $"push → first output line (`echo first`, Python venv off on both), {samples} samples per engine after {warmUp} warm-up, interleaved ABBA: " +
                     $"sandbox median {withSandbox * 1000:0} ms (max {engines[0].Seconds.Max() * 1000:0}), " +
                     $"Jobs:Sandbox=None median {without * 1000:0} ms (max {engines[1].Seconds.Max() * 1000:0})";
        report.Add("job_start_sandbox_ratio", withSandbox / without, detail);
        report.Add("job_start_sandbox_median_ms", withSandbox * 1000, "the same run: median push → first output line with the sandbox (default engine)");
        report.Add("job_start_no_sandbox_median_ms", without * 1000, "the same run: median push → first output line with Jobs:Sandbox=None");
    }

    private sealed class Side(string name, BenchEngine engine)
    {
        public string Name { get; } = name;
        public BenchEngine Engine { get; } = engine;
        public string Cluster { get; set; } = "";
        public List<double> Seconds { get; } = [];
    }

    private static async Task<string> NewClusterAsync(BenchEngine engine)
    {
        using var client = engine.Client(connections: 2);
        var created = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" }).ExpectAsync(HttpStatusCode.Accepted, "create cluster");
        await Http.WaitCompletedAsync(client, created.GetProperty("request_id").GetString()!);
        return created.GetProperty("cluster_id").GetString()!;
    }

    private static async Task<double> PushToFirstLineAsync(Side side, string project)
    {
        var clock = Stopwatch.StartNew();
        var push = await CliJobClient.PushAsync(side.Engine.Url, side.Engine.AdminKey, project, CliJobClient.Toml(["echo first"]), side.Cluster);
        var job = push.JobId ?? throw new InvalidOperationException($"{side.Name}: the push gave no job id: {string.Join(" | ", push.Messages)}");
        var line = await CliJobClient.FirstOutputAsync(side.Engine.Url, side.Engine.AdminKey, job);
        var seconds = clock.Elapsed.TotalSeconds;
        if (!line.Contains("first", StringComparison.Ordinal))
            throw new InvalidOperationException($"{side.Name}: the first output line was {line}, not the job's");
        // Not timed: the job ends before the next sample, so jobs never queue behind the cluster's limit.
        await WaitEndedAsync(side.Engine, job);
        return seconds;
    }

    private static async Task ExpectConfinementAsync(BenchEngine engine, string cluster, string project, bool confined)
    {
        var probe = $"if [ -e '{engine.DataDir}' ]; then echo unconfined; else echo confined; fi";
        var push = await CliJobClient.PushAsync(engine.Url, engine.AdminKey, project, CliJobClient.Toml([probe]), cluster);
        var job = push.JobId ?? throw new InvalidOperationException("the confinement probe gave no job id: " + string.Join(" | ", push.Messages));
        var line = await CliJobClient.FirstOutputAsync(engine.Url, engine.AdminKey, job);
        if (line.Trim() != (confined ? "confined" : "unconfined"))
            throw new InvalidOperationException($"expected a {(confined ? "" : "un")}confined job, the probe printed: {line}");
        await WaitEndedAsync(engine, job);
    }

    private static async Task WaitEndedAsync(BenchEngine engine, string job)
    {
        using var client = engine.Client(connections: 1);
        var ended = await Load.UntilAsync(async () =>
        {
            var info = await client.GetAsync($"/job/info/{job}").ExpectAsync(HttpStatusCode.OK, "job info");
            return info.GetProperty("job_info").GetProperty("status").GetString() is not (OpenPool.Contracts.JobStatuses.Pending or OpenPool.Contracts.JobStatuses.Running);
        }, TimeSpan.FromSeconds(60));
        if (!ended)
            throw new TimeoutException($"job {job} did not end within 60 s");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
