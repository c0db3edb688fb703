using System.Net;
using System.Text;

using OpenPool.Bench.Harness;

namespace OpenPool.Bench.Scenarios;

/// <summary>
/// Many identical <c>POST /cluster/create</c> calls carrying one Idempotency-Key, all at once, from
/// a fresh user: however they interleave, exactly one cluster may come of them.
/// </summary>
public static class IdempotencyRace
{
    public sealed record Outcome(int Clusters, int Accepted, int Conflicts, IReadOnlyList<string> Unexpected);

    public static async Task<Outcome> RunAsync(Uri engine, string adminKey, int calls = 100)
    {
        using var admin = BenchEngine.Client(engine, adminKey, connections: 8);
        var key = await Http.NewUserAsync(admin, $"race-{Guid.NewGuid():N}@example.com", $"race-{Guid.NewGuid():N}"[..20]);
        // One connection per call, opened before the race starts, so the calls really are concurrent.
        var clients = Enumerable.Range(0, calls).Select(_ => BenchEngine.Client(engine, key, connections: 8)).ToList();
        try
        {
            await Task.WhenAll(clients.Select(c => c.GetAsync("/user/info")));
            var idempotencyKey = "race-" + Guid.NewGuid().ToString("N");
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var racing = clients.Select(client => Task.Run(async () =>
            {
                await go.Task;
                using var request = new HttpRequestMessage(HttpMethod.Post, "/cluster/create")
                {
                    Content = new StringContent("{\"instance_type\":\"1xH100\"}", Encoding.UTF8, "application/json"),
                };
                request.Headers.Add("Idempotency-Key", idempotencyKey);
                using var response = await client.SendAsync(request);
                return (response.StatusCode, await response.Content.ReadAsStringAsync());
            })).ToList();
            go.SetResult();
            var answers = await Task.WhenAll(racing);

            using var user = BenchEngine.Client(engine, key, connections: 8);
            var list = await user.GetAsync("/cluster/list").ExpectAsync(HttpStatusCode.OK, "cluster list");
            var clusters = list.GetProperty("clusters").GetArrayLength();
            return new Outcome(clusters,
                answers.Count(a => a.StatusCode == HttpStatusCode.Accepted),
                answers.Count(a => a.StatusCode == HttpStatusCode.Conflict),
                answers.Where(a => a.StatusCode is not (HttpStatusCode.Accepted or HttpStatusCode.Conflict)).Select(a => $"{(int)a.StatusCode} {a.Item2}").ToList());
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }
}
