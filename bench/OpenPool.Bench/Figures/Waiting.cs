using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Bench.Figures;

/// <summary>How quickly a waiting client learns that its request finished: long-poll and Retry-After.</summary>
internal static class Waiting
{
    /// <summary>
    /// Clients hold <c>Prefer: wait=30</c> on their own claim (0.5 s provisioning); the figure is the
    /// time from the engine's <c>finished_at</c> to the client holding the terminal answer, for
    /// calls that were already waiting when the request finished. Same machine, same clock.
    /// </summary>
    public static async Task LongPollAsync(Report report, bool quick)
    {
        var samples = quick ? 240 : 1000;
        const int clients = 16;
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0.5", "--Billing:InitialBalanceUsd=1000000");
        using var client = engine.Client(connections: clients * 2);
        var observed = new List<(string RequestId, long WaitStartedMs, long SeenMs)>();
        // Two waves not counted first, as the throughput figures warm up too: on a cold engine the
        // first completions wait while the writer's code paths are compiled, a start-up cost that is
        // not a wake-up's (16 of 240 samples would be the whole top 1%).
        var warmUp = new List<(string, long, long)>();
        await Load.RunAsync(clients * 2, clients, _ => LongPollOneAsync(client, warmUp));
        await Load.RunAsync(samples, clients, _ => LongPollOneAsync(client, observed));

        var lags = new List<double>();

        foreach (var (id, waitStarted, seen) in observed)
        {
            var finished = await engine.ScalarAsync($"SELECT finished_at FROM requests WHERE id = '{id}'");
            if (waitStarted < finished) // the call was waiting when the request finished: a real wake-up
                lags.Add(seen - finished);
        }
        if (lags.Count < 200)
            throw new InvalidOperationException($"only {lags.Count} of {observed.Count} polls were waiting at completion; need 200");
        report.Add("longpoll_wake_p99_ms", Load.Percentile(lags, 99),
            $"{lags.Count} wake-ups ({clients} clients, each long-polling its own 0.5 s claim): p50 {Load.Percentile(lags, 50):0} ms, max {lags.Max():0} ms, " +
            "from finished_at (ms, engine clock) to the client holding the answer (same machine)");
    }

    /// <summary>Creates a claim and long-polls it until terminal; records when its last wait began and when the answer arrived.</summary>
    private static async Task LongPollOneAsync(HttpClient client, List<(string RequestId, long WaitStartedMs, long SeenMs)> observed)
    {
        var created = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" }).ExpectAsync(HttpStatusCode.Accepted, "create");
        var id = created.GetProperty("request_id").GetString()!;
        while (true)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/request/info/{id}");
            request.Headers.Add("Prefer", "wait=30");
            var waitStarted = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsByteArrayAsync();
            var seen = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var status = JsonDocument.Parse(body).RootElement.GetProperty("status").GetString();
            if (status is "COMPLETED" or "FAILED")
            {
                lock (observed)
                    observed.Add((id, waitStarted, seen));
                return;
            }
        }
    }

    /// <summary>
    /// Clients that poll as the official CLI does (sleep <c>max(1, Retry-After)</c>, 2 s when it is
    /// absent) on a 60-second claim: the GETs each makes, and how late each sees the completion.
    /// Three clients, staggered, on one engine; the figures are the worst of the three.
    /// </summary>
    private static readonly int[] StaggerMs = [0, 350, 700];

    public static async Task RetryAfterAsync(Report report)
    {
        await using var engine = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=60", "--Billing:InitialBalanceUsd=1000000");
        var runs = await Task.WhenAll(StaggerMs.Select(async delayMs =>
        {
            await Task.Delay(delayMs);
            using var client = engine.Client(connections: 1);
            var created = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" }).ExpectAsync(HttpStatusCode.Accepted, "create");
            var id = created.GetProperty("request_id").GetString()!;
            var polls = 0;
            while (true)
            {
                using var response = await client.GetAsync($"/request/info/{id}");
                polls++;
                var seen = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                var status = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync()).RootElement.GetProperty("status").GetString();
                if (status is "COMPLETED" or "FAILED")
                {
                    var finished = await engine.ScalarAsync($"SELECT finished_at FROM requests WHERE id = '{id}'");
                    return (Polls: polls, LagSeconds: (seen - finished) / 1000.0, Status: status);
                }
                var after = response.Headers.RetryAfter?.Delta is { } delta ? Math.Max(1, (int)delta.TotalSeconds) : 2;
                await Task.Delay(TimeSpan.FromSeconds(after));
            }
        }));
        if (runs.Any(r => r.Status != "COMPLETED"))
            throw new InvalidOperationException("a 60 s claim did not complete: " + string.Join(", ", runs.Select(r => r.Status)));
        var detail = "3 clients sleeping Retry-After as tp does, 60 s provisioning: " + string.Join("; ", runs.Select(r => $"{r.Polls} GETs, saw it {r.LagSeconds:0.00} s late"));
        report.Add("polls_per_60s_claim", runs.Max(r => r.Polls), detail);
        report.Add("retry_after_lag_s", runs.Max(r => r.LagSeconds), detail);
    }
}
