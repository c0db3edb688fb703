using System.Diagnostics;
using System.Net;
using Microsoft.Data.Sqlite;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Bench.Figures;

/// <summary>
/// Median latency of <c>GET /request/info/{id}</c> on an engine holding 1,000,000 retained requests
/// against one holding a single request, both running at once and measured in alternating batches.
/// The big engine is polled at random ids across the whole table, so caches do not flatter it.
/// Both see the same number of polls (3,000 each in the quick run, 10,000 in the full one).
/// </summary>
internal static class PollAtScale
{
    private const int Retained = 1_000_000;

    public static async Task RunAsync(Report report, bool quick)
    {
        await using var empty = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        await using var full = await BenchEngine.StartAsync(null, "--Simulated:ProvisionSeconds=0");
        var emptyId = await OneCompletedRequestAsync(empty);
        var template = await OneCompletedRequestAsync(full);

        // The million rows go straight into the stopped engine's database (through the API this would
        // take longer than the whole benchmark); they are copies of a real completed request.
        await full.StopAsync();
        var seeding = Stopwatch.StartNew();
        using (var connection = new SqliteConnection($"Data Source={full.SqlitePath};Pooling=false"))
        {
            connection.Open();
            using var seed = connection.CreateCommand();
            seed.CommandText = $"""
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {Retained - 1})
                INSERT INTO requests (id, type, status, user_id, org_id, object_id, external_message, created_at, updated_at, finished_at,
                                      attempts, next_run_at, step, payload, lease_token)
                SELECT printf('req_seed%012d', i), t.type, t.status, t.user_id, t.org_id, 'c-seed' || (i % 50000), t.external_message,
                       t.created_at - i, t.updated_at - i, t.finished_at - i, t.attempts, t.next_run_at, t.step, t.payload, 0
                FROM n, (SELECT * FROM requests WHERE id = $template) t
                """;
            seed.Parameters.AddWithValue("$template", template);
            seed.CommandTimeout = 600;
            seed.ExecuteNonQuery();
        }
        seeding.Stop();
        await full.RestartAsync();
        var total = await full.ScalarAsync("SELECT COUNT(*) FROM requests");

        using var emptyClient = empty.Client(connections: 1);
        using var fullClient = full.Client(connections: 1);
        var random = new Random(7);
        // Short alternating batches, so both engines see the same moments of this noisy machine
        // (batches of 500 let one engine's batch land in a slow second the other's missed).
        var batches = quick ? 120 : 400;
        const int perBatch = 25;
        var emptyLatencies = new List<double>();
        var fullLatencies = new List<double>();
        await MeasureAsync(emptyClient, () => emptyId, 200, []); // warm-up
        await MeasureAsync(fullClient, () => $"req_seed{random.Next(1, Retained):D12}", 200, []);
        for (var batch = 0; batch < batches; batch++)
        {
            await MeasureAsync(emptyClient, () => emptyId, perBatch, emptyLatencies);
            await MeasureAsync(fullClient, () => $"req_seed{random.Next(1, Retained):D12}", perBatch, fullLatencies);
        }
        var emptyP50 = Load.Percentile(emptyLatencies, 50);
        var fullP50 = Load.Percentile(fullLatencies, 50);
        report.Add("poll_p50_1m_vs_empty_ratio", fullP50 / emptyP50,
            $"p50 {fullP50:0.000} ms with {total:N0} requests retained vs {emptyP50:0.000} ms with 1; {batches} alternating batches of {perBatch} sequential polls each " +
            $"(one keep-alive connection, random ids on the big table; seeding took {seeding.Elapsed.TotalSeconds:0} s)");
    }

    private static async Task<string> OneCompletedRequestAsync(BenchEngine engine)
    {
        using var client = engine.Client();
        return await Http.CompletedClaimAsync(client);
    }

    private static async Task MeasureAsync(HttpClient client, Func<string> nextId, int count, List<double> latencies)
    {
        for (var i = 0; i < count; i++)
        {
            var path = $"/request/info/{nextId()}";
            var started = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync(path);
            await response.Content.ReadAsByteArrayAsync();
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (response.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"GET {path} answered {(int)response.StatusCode}");
            latencies.Add(elapsed);
        }
    }
}
