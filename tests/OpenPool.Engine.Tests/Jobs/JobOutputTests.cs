using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>
/// A real engine for the output and lifetime tests: the default output limit (seq 1 150000 writes
/// about 1 MB) and a short key-frame timeout, so the refusal test need not wait 10 s.
/// </summary>
public sealed class JobOutputEngineFixture : RealEngineFixture
{
    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Simulated:RestartSeconds=0", "--Simulated:VolumeSeconds=0",
        "--Jobs:PythonVenv=false", "--Jobs:KeyFrameTimeoutSeconds=1",
    ];
}

public sealed class JobOutputTests(JobOutputEngineFixture fx) : IClassFixture<JobOutputEngineFixture>, IDisposable
{
    private readonly TempDir _project = new();

    public void Dispose() => _project.Dispose();

    private async Task<(HttpClient Client, string Key, string ClusterId)> ClusterAsync(string email)
    {
        var (client, key) = await fx.NewUserAsync(email);
        File.WriteAllText(Path.Combine(_project.Path, "README"), "x");
        return (client, key, await JobEngineFixture.RunningClusterAsync(client));
    }

    private async Task<string> PushAsync(string key, string clusterId, params string[] commands)
    {
        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(commands), clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        return push.JobId!;
    }

    private static async Task<JsonElement> JobInfoAsync(HttpClient client, string jobId) =>
        (await (await client.GetAsync($"/job/info/{jobId}")).Json()).GetProperty("job_info");

    private static async Task<JsonElement> WaitForEndAsync(HttpClient client, string jobId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var job = await JobInfoAsync(client, jobId);
            if (job.GetProperty("finished_at").ValueKind != JsonValueKind.Null)
                return job;
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} still {job.GetProperty("status").GetString()}");
            await Task.Delay(100);
        }
    }

    private static string StatusLine(JsonElement frame) => frame.GetProperty("message").GetString()!;

    [Fact]
    public async Task A_progress_bar_without_newlines_shows_while_the_job_runs()
    {
        var (client, key, clusterId) = await ClusterAsync("progress@example.com");
        var jobId = await PushAsync(key, clusterId, "for i in 1 2 3 4 5; do printf '\\rstep %s/5' $i; sleep 1; done; echo");

        var events = new List<string>();
        var listen = await CliJobClient.ListenAsync(fx.Url, key, jobId, TimeSpan.FromSeconds(90), async frame =>
        {
            if (frame.TryGetProperty("status", out _))
                events.Add("status frame");
            else if (frame.GetProperty("message").GetString()!.Contains("step 1/5", StringComparison.Ordinal))
            {
                // Asked only once the frame is here: a job still unfinished means it was shown while it ran.
                var job = await JobInfoAsync(client, jobId);
                events.Add(job.GetProperty("finished_at").ValueKind == JsonValueKind.Null ? "step 1 while running" : "step 1 after the end");
            }
        });

        Assert.Equal("success", listen.FinalStatus);
        Assert.Equal(["step 1 while running", "status frame"], events);
        // Each redraw was cut where the job paused; all five arrive, in order.
        var printed = listen.Printed;
        var positions = Enumerable.Range(1, 5).Select(i => printed.IndexOf($"\rstep {i}/5", StringComparison.Ordinal)).ToList();
        Assert.All(positions, p => Assert.True(p >= 0, printed));
        Assert.Equal(positions.Order(), positions);
    }

    [Fact]
    public async Task A_progress_bar_that_redraws_without_pause_shows_while_the_job_runs()
    {
        // tqdm's rhythm: a redraw every 0.1 s, so the output is never idle for a whole monitor interval.
        var (client, key, clusterId) = await ClusterAsync("redraw@example.com");
        var jobId = await PushAsync(key, clusterId, "i=0; while [ $i -lt 60 ]; do printf '\\r%s%%' $i; sleep 0.1; i=$((i+1)); done; echo");

        var events = new List<string>();
        var listen = await CliJobClient.ListenAsync(fx.Url, key, jobId, TimeSpan.FromSeconds(90), async frame =>
        {
            if (frame.TryGetProperty("status", out _))
                events.Add("status frame");
            else if (events.Count == 0 && frame.GetProperty("message").GetString()!.Contains('%', StringComparison.Ordinal))
            {
                var job = await JobInfoAsync(client, jobId);
                events.Add(job.GetProperty("finished_at").ValueKind == JsonValueKind.Null ? "redraw while running" : "redraw after the end");
            }
        });

        Assert.Equal("success", listen.FinalStatus);
        Assert.Equal(["redraw while running", "status frame"], events);
        Assert.Contains("\r59%", listen.Printed, StringComparison.Ordinal);
    }

    /// <summary>Raw output mixing what real jobs write: lines, blank lines, \r redraws, controls, non-ASCII, invalid UTF-8 and a 300 KiB line that never ends.</summary>
    private static byte[] MixedOutput()
    {
        var output = new MemoryStream();
        void Text(string text) => output.Write(Encoding.UTF8.GetBytes(text));
        Text("plain line\n\n\n\nafter blank lines\n");
        Text("progress\r 10%\r 50%\r100%\n");
        Text("Grüße, 世界 🎉 ç\n\t\u0001ctl \"quoted\" back\\slash\n");
        output.Write([0xFF, 0xFE, (byte)'!', (byte)'\n', 0xE4, 0xB8, (byte)'\n']);
        Text("\n");
        Text("a" + new string('é', 150 * 1024)); // 300 KiB + 1 byte, its 128 KiB marks inside characters
        return output.ToArray();
    }

    /// <summary>What the framing rule prints for output without sealed breaks: each line and the tail cut every 128 KiB (back to a character start).</summary>
    private static string Predicted(byte[] output)
    {
        var printed = new StringBuilder();
        var start = 0;
        for (var p = 0; p <= output.Length; p++)
        {
            var atEnd = p == output.Length;
            if (!atEnd && output[p] != '\n' && p - start < 128 * 1024)
                continue;
            if (!atEnd && output[p] != '\n')
            {
                var cut = p;
                while ((output[cut] & 0xC0) == 0x80)
                    cut--;
                printed.Append(Encoding.UTF8.GetString(output, start, cut - start)).Append('\n');
                start = cut;
                p = cut - 1;
                continue;
            }
            if (!atEnd || p > start)
                printed.Append(Encoding.UTF8.GetString(output, start, p - start)).Append('\n');
            start = p + 1;
        }
        return printed.ToString();
    }

    [Fact]
    public async Task A_live_listener_and_a_replay_print_the_same_bytes_which_follow_the_framing_rule()
    {
        var (client, key, clusterId) = await ClusterAsync("mixed@example.com");
        var raw = MixedOutput();
        await File.WriteAllBytesAsync(Path.Combine(_project.Path, "mixed.bin"), raw);
        // One write of all of it (dd with a block larger than the file): no pause inside it that the
        // monitor could seal, so the rule's prediction needs no breaks. The sleep lets the listener
        // connect first and follow it live.
        var jobId = await PushAsync(key, clusterId, "sleep 3; dd if=mixed.bin bs=8M status=none");

        var live = await CliJobClient.ListenAsync(fx.Url, key, jobId, TimeSpan.FromSeconds(90));
        Assert.Equal("success", live.FinalStatus);
        await WaitForEndAsync(client, jobId);
        var replay = await CliJobClient.ListenAsync(fx.Url, key, jobId, TimeSpan.FromSeconds(90));

        Assert.Equal(live.Printed, replay.Printed);
        Assert.All(live.FrameBytes.Concat(replay.FrameBytes), size => Assert.InRange(size, 1, 1024 * 1024));
        var status = StatusLine(replay.Frames[^1]) + "\n";
        // Whatever the provider may print before the commands, the job's own bytes end the stream as the rule says.
        Assert.EndsWith(Predicted(raw) + status, replay.Printed, StringComparison.Ordinal);
        Assert.Contains("\n\n\nafter blank lines\n", replay.Printed, StringComparison.Ordinal);
        Assert.DoesNotContain(replay.Messages, m => m.Length == 0);
    }

    [Fact]
    public async Task A_replay_of_a_million_bytes_arrives_whole_in_frames_of_at_most_1_MiB()
    {
        var (client, key, clusterId) = await ClusterAsync("seq@example.com");
        var jobId = await PushAsync(key, clusterId, "seq 1 150000");
        Assert.Equal("completed", (await WaitForEndAsync(client, jobId)).GetProperty("status").GetString());

        var replay = await CliJobClient.ListenAsync(fx.Url, key, jobId, TimeSpan.FromSeconds(90));

        Assert.Equal(WebSocketCloseStatus.NormalClosure, replay.CloseStatus);
        Assert.Equal("success", replay.FinalStatus);
        Assert.All(replay.FrameBytes, size => Assert.InRange(size, 1, 1024 * 1024));
        var lines = replay.Printed.Split('\n');
        Assert.Equal(150_000 + 2, lines.Length); // the numbers, the status line, and what follows the last newline
        Assert.Equal(Enumerable.Range(1, 150_000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), lines[..150_000]);
        Assert.Equal(StatusLine(replay.Frames[^1]), lines[150_000]);
    }

    [Theory]
    [InlineData("/job/listen/j-none")]
    [InlineData("/job/push")]
    public async Task A_socket_that_never_sends_its_key_is_closed_with_4401(string path)
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(fx.Url) { Scheme = "ws", Path = path }.Uri, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var buffer = new byte[4096];
        var texts = new List<string>();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, deadline.Token);
            if (result.MessageType == WebSocketMessageType.Close)
                break;
            texts.Add(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }

        Assert.Equal((WebSocketCloseStatus)4401, socket.CloseStatus);
        Assert.Contains("TENSORPOOL_KEY", socket.CloseStatusDescription, StringComparison.Ordinal);
        Assert.Contains(texts, t => t.Contains("\"status\":\"error\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_authenticated_push_that_never_sends_its_payload_is_closed_with_4400()
    {
        var (_, key, _) = await ClusterAsync("silent-after-key@example.com");
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(fx.Url) { Scheme = "ws", Path = "/job/push" }.Uri, CancellationToken.None);
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["TENSORPOOL_KEY"] = key }),
            WebSocketMessageType.Text, true, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var buffer = new byte[4096];
        while ((await socket.ReceiveAsync(buffer, deadline.Token)).MessageType != WebSocketMessageType.Close)
        {
        }
        Assert.Equal((WebSocketCloseStatus)4400, socket.CloseStatus);
        Assert.Contains("No job payload", socket.CloseStatusDescription, StringComparison.Ordinal);
    }

    private static List<int> ProcessesWithArgument(string argument)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (args.Contains(argument))
                    found.Add(pid);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // ended while we looked, or not ours to read
            }
        }
        return found;
    }

    [Fact]
    public async Task Destroying_a_cluster_ends_its_running_job_and_leaves_no_process()
    {
        var (client, key, clusterId) = await ClusterAsync("destroy@example.com");
        // A duration no other test uses, to find this job's process and no one else's.
        var duration = "120.5" + Random.Shared.Next(1000, 9999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var jobId = await PushAsync(key, clusterId, $"sleep {duration}");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (ProcessesWithArgument(duration).Count == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the job's sleep never started");
            await Task.Delay(100);
        }
        Assert.Equal("running", (await JobInfoAsync(client, jobId)).GetProperty("status").GetString());

        Assert.Equal(HttpStatusCode.Accepted, (await client.DeleteAsync($"/cluster/{clusterId}")).StatusCode);
        var job = await WaitForEndAsync(client, jobId);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        var message = job.GetProperty("public_message").GetString()!;
        Assert.Contains(clusterId, message, StringComparison.Ordinal);
        Assert.Contains("destroyed", message, StringComparison.Ordinal);
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (ProcessesWithArgument(duration).Count > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Empty(ProcessesWithArgument(duration));
        var listen = await CliJobClient.ListenAsync(fx.Url, key, jobId);
        Assert.Equal("error", listen.FinalStatus);
    }
}
