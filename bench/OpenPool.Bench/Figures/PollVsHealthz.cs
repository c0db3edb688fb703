using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Bench.Figures;

/// <summary>
/// Throughput of an authenticated <c>GET /request/info/{id}</c> against the engine's cheapest route,
/// <c>GET /healthz</c>, with the same wrk load on the same engine, alternating so drift hits both.
/// </summary>
internal static partial class PollVsHealthz
{
    public static async Task RunAsync(Report report, bool quick)
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        using var client = engine.Client();
        var requestId = await Http.CompletedClaimAsync(client);

        var health = new Uri(engine.Url, "/healthz");
        var poll = new Uri(engine.Url, $"/request/info/{requestId}");
        var seconds = quick ? 5 : 15;
        await WrkAsync(health, null, 2);
        await WrkAsync(poll, engine.AdminKey, 2);
        double healthTotal = 0, pollTotal = 0;
        for (var round = 0; round < 2; round++)
        {
            healthTotal += await WrkAsync(health, null, seconds);
            pollTotal += await WrkAsync(poll, engine.AdminKey, seconds);
        }
        report.Add("poll_vs_healthz_rps_ratio", pollTotal / healthTotal,
            $"wrk -t2 -c32, {seconds} s per run, healthz and request/info alternating twice: {pollTotal / 2:0} vs {healthTotal / 2:0} requests/s (SQLite, Release)");
    }

    private static async Task<double> WrkAsync(Uri url, string? key, int seconds)
    {
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-t2", "-c32", $"-d{seconds}s" })
            start.ArgumentList.Add(arg);
        if (key is not null)
        {
            start.ArgumentList.Add("-H");
            start.ArgumentList.Add($"Authorization: Bearer {key}");
        }
        start.ArgumentList.Add(url.ToString());
        using var process = Process.Start(start) ?? throw new InvalidOperationException("wrk did not start");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (NonSuccess().Match(output) is { Success: true } bad)
            throw new InvalidOperationException($"wrk saw non-2xx answers from {url}: {bad.Value}");
        var rps = RequestsPerSecond().Match(output);
        return rps.Success ? double.Parse(rps.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new InvalidOperationException("wrk printed no Requests/sec:\n" + output);
    }

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"Non-2xx or 3xx responses: \d+")]
    private static partial Regex NonSuccess();
}
