using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

using OpenPool.Bench.Harness;

namespace OpenPool.Bench.Scenarios;

/// <summary>
/// User A owns one of everything (SSH key, cluster and its instance, volume attached to it, a job,
/// and the requests behind them). User B, in another organization, tries every endpoint with each
/// of A's ids and reads every list. A leak is any answer other than 404 to an id of A's, any of
/// A's ids in B's lists, or any change B's attempts made to A's resources.
/// </summary>
public static class TenantMatrix
{
    public sealed record Outcome(int Probes, IReadOnlyList<string> Leaks);

    private const string PublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA2gZUJtj1J1ZDeyQ2pRFrgEvhMbFUv+RxpjKccZ2G+n tenant-a@lab";

    public static async Task<Outcome> RunAsync(Uri engine, string adminKey)
    {
        using var admin = BenchEngine.Client(engine, adminKey, connections: 8);
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var keyA = await Http.NewUserAsync(admin, $"a-{suffix}@example.com", $"org-a-{suffix}");
        var keyB = await Http.NewUserAsync(admin, $"b-{suffix}@example.com", $"org-b-{suffix}");
        using var a = BenchEngine.Client(engine, keyA, connections: 8);
        using var b = BenchEngine.Client(engine, keyB, connections: 8);

        // A's resources, made through the API as a user would.
        var sshKey = (await a.PostAsJsonAsync("/user/ssh-key/add", new { public_key = PublicKey }).ExpectAsync(HttpStatusCode.OK, "add ssh key"))
            .GetProperty("key").GetProperty("key_id").GetString()!;
        var created = await a.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100", tp_cluster_name = "a-secret" })
            .ExpectAsync(HttpStatusCode.Accepted, "create cluster");
        var cluster = created.GetProperty("cluster_id").GetString()!;
        var requests = new List<string> { created.GetProperty("request_id").GetString()! };
        var instances = created.GetProperty("instance_ids").EnumerateArray().Select(i => i.GetString()!).ToList();
        await Http.WaitCompletedAsync(a, requests[0]);
        var volumeCreated = await a.PostAsJsonAsync("/storage/create", new { size = 10, name = "a-data" }).ExpectAsync(HttpStatusCode.Accepted, "create volume");
        var volume = volumeCreated.GetProperty("storage_id").GetString()!;
        requests.Add(volumeCreated.GetProperty("request_id").GetString()!);
        await Http.WaitCompletedAsync(a, requests[^1]);
        var attach = await a.PostAsJsonAsync("/storage/attach", new { storage_id = volume, cluster_ids = new[] { cluster } }).ExpectAsync(HttpStatusCode.Accepted, "attach");
        requests.AddRange(attach.GetProperty("request_ids").EnumerateArray().Select(r => r.GetString()!));
        await Http.WaitCompletedAsync(a, requests[^1]);
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "run.sh"), "echo tenant-a-output\nsleep 600\n");
        var push = await CliJobClient.PushAsync(engine, keyA, project.Path, CliJobClient.Toml(["sh run.sh"], outputs: ["*.txt"]), cluster);
        var job = push.JobId ?? throw new InvalidOperationException("job push gave no job id: " + string.Join(" ", push.Messages));
        // The snapshots below must change only if B changes something. The job runs until the test is
        // over, and the first snapshot waits until it is running, so nothing moves between them by itself
        // (a job finishing on its own in between once looked like a leak) and B's cancel meets a live job.
        await WaitJobRunningAsync(a, job);

        var ids = new[] { sshKey, cluster, volume, job }.Concat(instances).Concat(requests).ToList();
        var before = await SnapshotAsync(a, cluster, volume, job);

        var probes = new List<(HttpMethod Method, string Path, object? Body)>
        {
            (HttpMethod.Get, $"/cluster/info/{cluster}", null),
            (HttpMethod.Get, $"/cluster/info/{cluster}?instances=true", null),
            (HttpMethod.Get, $"/cluster/operations/{cluster}", null),
            (HttpMethod.Patch, $"/cluster/edit/{cluster}", new { deletion_protection = true }),
            (HttpMethod.Patch, $"/cluster/edit/{cluster}", new { cluster_name = "mine-now" }),
            (HttpMethod.Delete, $"/cluster/{cluster}", null),
            (HttpMethod.Get, $"/storage/info/{volume}", null),
            (HttpMethod.Patch, $"/storage/edit/{volume}", new { size_gb = 20 }),
            (HttpMethod.Patch, $"/storage/edit/{volume}", new { tp_storage_name = "mine-now", deletion_protection = true }),
            (HttpMethod.Delete, $"/storage/{volume}", null),
            (HttpMethod.Post, "/storage/attach", new { storage_id = volume, cluster_ids = new[] { cluster } }),
            (HttpMethod.Post, "/storage/detach", new { storage_id = volume, cluster_id = cluster }),
            (HttpMethod.Delete, $"/user/ssh-key/remove/{sshKey}", null),
            (HttpMethod.Get, $"/job/info/{job}", null),
            (HttpMethod.Get, $"/job/pull/{job}", null),
            (HttpMethod.Get, $"/job/pull/{job}?files=output.txt", null),
            (HttpMethod.Post, $"/job/cancel/{job}", null),
            (HttpMethod.Delete, $"/job/delete/{job}", null),
        };
        probes.AddRange(instances.Select(i => (HttpMethod.Get, $"/ssh/{i}", (object?)null)));
        foreach (var r in requests)
        {
            probes.Add((HttpMethod.Get, $"/request/info/{r}", null));
            probes.Add((HttpMethod.Get, $"/request/info/{r}?wait=1", null));
        }

        var leaks = new List<string>();
        foreach (var (method, path, body) in probes)
        {
            using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
            using var response = await b.SendAsync(request);
            if (response.StatusCode != HttpStatusCode.NotFound)
                leaks.Add($"{method} {path} answered B {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        var listens = await ListenAsOtherAsync(engine, keyB, job);
        if (listens is not null)
            leaks.Add(listens);

        var lists = new[]
        {
            "/cluster/list", "/cluster/list?include_org=true", "/storage/list", "/storage/list?include_org=true", "/user/ssh-key/list",
            "/user/ssh-key/list?include_org=true", "/job/list", "/job/list?include_org=true", "/request/list", "/request/list?include_org=true",
            $"/request/list?object_id={cluster}", $"/request/list?object_id={volume}", "/user/info", "/user/organization/info", "/user/preferences",
        };
        foreach (var path in lists)
        {
            using var response = await b.GetAsync(path);
            var text = await response.Content.ReadAsStringAsync();
            leaks.AddRange(ids.Where(id => text.Contains(id, StringComparison.Ordinal)).Select(id => $"GET {path} shows B {id}"));
            if (text.Contains("a-secret", StringComparison.Ordinal) || text.Contains("a-data", StringComparison.Ordinal))
                leaks.Add($"GET {path} shows B the name of one of A's resources");
        }

        var after = await SnapshotAsync(a, cluster, volume, job);
        if (after != before)
            leaks.Add($"B's attempts changed A's resources:\n before {before}\n after  {after}");
        return new Outcome(probes.Count + 1 + lists.Length + 1, leaks);
    }

    private static async Task WaitJobRunningAsync(HttpClient a, string job)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var info = await a.GetAsync($"/job/info/{job}").ExpectAsync(HttpStatusCode.OK, "job info");
            var status = info.GetProperty("job_info").GetProperty("status").GetString();
            if (status == OpenPool.Contracts.JobStatuses.Running)
                return;
            if (status != OpenPool.Contracts.JobStatuses.Pending || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"job {job} is {status}, not running");
            await Task.Delay(100);
        }
    }

    /// <summary>What B could have changed, as A sees it.</summary>
    private static async Task<string> SnapshotAsync(HttpClient a, string cluster, string volume, string job)
    {
        var text = new StringBuilder();
        foreach (var path in new[] { $"/cluster/info/{cluster}", $"/storage/info/{volume}", "/user/ssh-key/list", $"/request/list?object_id={cluster}" })
        {
            var body = await a.GetAsync(path).ExpectAsync(HttpStatusCode.OK, path);
            text.Append(path).Append(' ').Append(Strip(body)).Append('\n');
        }
        var jobInfo = await a.GetAsync($"/job/info/{job}").ExpectAsync(HttpStatusCode.OK, "job info");
        return text.Append("job ").Append(jobInfo.GetProperty("job_info").GetProperty("status")).ToString();
    }

    // Times move by themselves (a job's runtime, billing); everything else must stay as it was.
    private static string Strip(JsonElement body) => System.Text.RegularExpressions.Regex.Replace(
        body.GetRawText(), "\"(updated_at|runtime[a-z_]*|cost[a-z_]*|total_cost[a-z_]*|message|balance[a-z_]*)\":(\"[^\"]*\"|[-0-9.e]+|null)", "");

    /// <summary>WS /job/listen with B's key must be refused, never stream A's output.</summary>
    private static async Task<string?> ListenAsOtherAsync(Uri engine, string keyB, string job)
    {
        using var socket = new ClientWebSocket();
        var url = new UriBuilder(engine) { Scheme = "ws", Path = $"/job/listen/{job}" }.Uri;
        await socket.ConnectAsync(url, CancellationToken.None);
        await socket.SendAsync(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, string> { ["TENSORPOOL_KEY"] = keyB })),
            WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[64 * 1024];
        var received = new StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (socket.State == WebSocketState.Open)
        {
            var result = await socket.ReceiveAsync(buffer, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close)
                break;
            received.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }
        var text = received.ToString();
        return text.Contains("tenant-a-output", StringComparison.Ordinal) || socket.CloseStatus == WebSocketCloseStatus.NormalClosure
            ? $"WS /job/listen/{job} with B's key: close {socket.CloseStatus}, frames {text}"
            : null;
    }
}
