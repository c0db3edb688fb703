using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>
/// One real engine process for a class of job tests, which need Kestrel (the client's curl uploads
/// to it); each fixture says only which settings its engine runs with.
/// </summary>
public abstract class RealEngineFixture : IAsyncLifetime, IDisposable
{
    private readonly TempDir _dir = new();

    internal EngineProcess Engine { get; private set; } = null!;
    public string AdminKey { get; private set; } = "";
    public Uri Url => Engine.Url;
    public string DataDir => _dir.Path;

    /// <summary>The engine's settings beyond its data directory and address.</summary>
    protected abstract string[] Settings { get; }

    /// <summary>Null to run the engine as the tests' user (root in CI); else the unprivileged uid it runs as, which then owns its data directory.</summary>
    protected virtual int? EngineUid => null;

    public async Task InitializeAsync()
    {
        // Something only the engine's environment holds: no job may see it (JobSandboxTests).
        Environment.SetEnvironmentVariable("OPENPOOL_TEST_ENGINE_SECRET", Guid.NewGuid().ToString("N"));
        if (EngineUid is { } uid && Chown(_dir.Path, uid, uid) != 0)
            throw new IOException($"chown of the data directory to {uid} failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        Engine = await EngineProcess.StartAsync(_dir.Path, EngineUid, Settings);
        AdminKey = (await File.ReadAllTextAsync(Path.Combine(_dir.Path, "admin.key"))).Trim();
    }

    public HttpClient Client(string key) => Engine.Client(key);

    public async Task<(HttpClient Client, string Key)> NewUserAsync(string email)
    {
        var created = await (await Client(AdminKey).PostAsJsonAsync("/admin/users", new { email })).Json();
        var key = created.GetProperty("api_key").GetString()!;
        return (Client(key), key);
    }

    public async Task DisposeAsync()
    {
        await Engine.DisposeAsync();
        _dir.Dispose();
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int uid, int gid);

    public void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Small limits, so the tests reach them with small projects.</summary>
public sealed class JobEngineFixture : RealEngineFixture
{
    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Simulated:RestartSeconds=0", "--Simulated:VolumeSeconds=0",
        "--Jobs:PythonVenv=false", "--Jobs:MaxActivePerCluster=3", "--Jobs:MaxUploadBytes=1000000", "--Jobs:MaxOutputBytes=200000",
        "--Jobs:MaxUnpackedBytes=8000000",
    ];

    public static async Task<string> RunningClusterAsync(HttpClient client)
    {
        var (clusterId, requestId, _) = await client.CreateClusterAsync();
        var result = await client.PollLikeCliAsync(requestId);
        Assert.Equal("COMPLETED", result.Final.GetProperty("status").GetString());
        return clusterId;
    }
}

public sealed class JobTests(JobEngineFixture fx) : IClassFixture<JobEngineFixture>, IDisposable
{
    private readonly TempDir _project = new();

    public void Dispose() => _project.Dispose();

    private static async Task<JsonElement> WaitForStatusAsync(HttpClient client, string jobId, params string[] statuses)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var info = await (await client.GetAsync($"/job/info/{jobId}")).Json();
            var job = info.GetProperty("job_info");
            if (statuses.Contains(job.GetProperty("status").GetString()))
                return job;
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} still {job.GetProperty("status").GetString()}");
            await Task.Delay(100);
        }
    }

    private void ProjectFile(string relative, string content)
    {
        var path = Path.Combine(_project.Path, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    [Fact]
    public async Task Push_listen_info_and_pull_work_like_the_official_cli()
    {
        var (client, key) = await fx.NewUserAsync("push@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        ProjectFile("train.sh", "echo training; mkdir -p checkpoints/epoch1 results; echo weights > checkpoints/epoch1/model.bin; echo '{\"loss\": 0.1}' > results/metrics.json; echo notes > results/notes.txt\n");
        ProjectFile("data/huge.bin", "not uploaded");
        ProjectFile(".venv/bin/python", "not uploaded");
        ProjectFile("src/__pycache__/x.pyc", "not uploaded");
        var toml = CliJobClient.Toml(
            ["test ! -e data && test ! -e .venv && test ! -e src/__pycache__ && echo 'ignored paths were not uploaded'", "sh train.sh"],
            outputs: ["checkpoints/", "results/*.json"],
            ignore: ["data/", ".venv", "__pycache__/"]);

        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, toml, clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        Assert.StartsWith("j-", push.JobId);
        Assert.Contains(push.Messages, m => m.Contains("tp job listen", StringComparison.Ordinal));

        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, listen.CloseStatus);
        Assert.Equal("success", listen.FinalStatus);
        var output = string.Join("\n", listen.Messages);
        Assert.Contains("ignored paths were not uploaded", output);
        Assert.Contains("training", output);

        var info = await (await client.GetAsync($"/job/info/{push.JobId}")).Json();
        var job = info.GetProperty("job_info");
        Assert.Equal("completed", job.GetProperty("status").GetString());
        Assert.Equal(0, job.GetProperty("exit_code").GetInt32());
        Assert.Equal(clusterId, job.GetProperty("cluster_id").GetString());
        Assert.Equal(2, job.GetProperty("commands").GetArrayLength());
        Assert.Contains("completed", info.GetProperty("message").GetString());

        var pull = await (await client.GetAsync($"/job/pull/{push.JobId}?dry_run=False&system=linux")).Json();
        var map = pull.GetProperty("download_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal(["checkpoints/epoch1/model.bin", "results/metrics.json"], map.Keys.Order());
        using var anonymous = new HttpClient();
        Assert.Equal("weights\n", await anonymous.GetStringAsync(map["checkpoints/epoch1/model.bin"]));
        Assert.Equal(HttpStatusCode.Forbidden, (await anonymous.GetAsync(map["results/metrics.json"]!.Replace("sig=", "sig=00", StringComparison.Ordinal))).StatusCode);

        var dryRun = await (await client.GetAsync($"/job/pull/{push.JobId}?dry_run=True")).Json();
        Assert.All(dryRun.GetProperty("download_map").EnumerateObject(), p => Assert.Equal(JsonValueKind.Null, p.Value.ValueKind));

        var list = await (await client.GetAsync("/job/list")).Json();
        Assert.Contains(push.JobId!, list.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_failing_command_ends_the_job_as_error_with_its_exit_code()
    {
        var (client, key) = await fx.NewUserAsync("fail@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        ProjectFile("README", "x");
        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo first", "exit 3", "echo never"]), clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!);
        Assert.Equal("error", listen.FinalStatus);
        Assert.Contains("3", listen.Messages.Last());
        Assert.DoesNotContain(listen.Messages, m => m.Contains("never", StringComparison.Ordinal));
        var job = await WaitForStatusAsync(client, push.JobId!, "error");
        Assert.Equal(3, job.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public async Task Bad_config_foreign_cluster_and_bad_key_get_a_message_and_a_non_1000_close()
    {
        var (client, key) = await fx.NewUserAsync("refused@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        var (otherClient, _) = await fx.NewUserAsync("stranger@example.com");
        var foreignCluster = await JobEngineFixture.RunningClusterAsync(otherClient);

        var badToml = await CliJobClient.PushAsync(fx.Url, key, _project.Path, "commands = [\"echo\"", clusterId);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, badToml.CloseStatus);
        Assert.Contains(badToml.Messages, m => m.Contains("TOML", StringComparison.Ordinal));
        Assert.Null(badToml.JobId);

        var noCommands = await CliJobClient.PushAsync(fx.Url, key, _project.Path, "outputs = [\"x\"]", clusterId);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, noCommands.CloseStatus);
        Assert.Contains(noCommands.Messages, m => m.Contains("commands", StringComparison.Ordinal));

        var foreign = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo hi"]), foreignCluster);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, foreign.CloseStatus);
        Assert.Contains(foreign.Messages, m => m.Contains("not found", StringComparison.Ordinal));

        var badKey = await CliJobClient.PushAsync(fx.Url, "tpk_wrong", _project.Path, CliJobClient.Toml(["echo hi"]), clusterId);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, badKey.CloseStatus);
        Assert.Contains(badKey.Messages, m => m.Contains("API key", StringComparison.Ordinal));

        var windows = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo hi"]), clusterId, system: "Windows");
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, windows.CloseStatus);
        Assert.Contains(windows.Messages, m => m.Contains("Windows", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancel_stops_a_sleeping_job_within_seconds_and_delete_follows_the_rules()
    {
        var (client, key) = await fx.NewUserAsync("cancel@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        ProjectFile("README", "x");
        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo started", "sleep 300"]), clusterId);
        await CliJobClient.FirstOutputAsync(fx.Url, key, push.JobId!);

        var refusedDelete = await client.DeleteAsync($"/job/delete/{push.JobId}");
        Assert.Equal(HttpStatusCode.Conflict, refusedDelete.StatusCode);

        var stopwatch = Stopwatch.StartNew();
        var cancel = await client.PostAsync($"/job/cancel/{push.JobId}", null);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var cancelBody = await cancel.Json();
        Assert.Equal("canceling", cancelBody.GetProperty("status").GetString());
        Assert.Equal(push.JobId, cancelBody.GetProperty("job_id").GetString());
        await WaitForStatusAsync(client, push.JobId!, "canceled");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"cancel took {stopwatch.Elapsed}");

        var again = await client.PostAsync($"/job/cancel/{push.JobId}", null);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("canceled", (await again.Json()).GetProperty("status").GetString());

        Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"/job/delete/{push.JobId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/job/info/{push.JobId}")).StatusCode);
        Assert.DoesNotContain(push.JobId!, await (await client.GetAsync("/job/list")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Teardown_releases_the_cluster_when_the_job_ends()
    {
        var (client, key) = await fx.NewUserAsync("teardown@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        ProjectFile("README", "x");
        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo bye"]), clusterId, teardown: true);
        await WaitForStatusAsync(client, push.JobId!, "completed");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? status;
        do
        {
            status = (await (await client.GetAsync($"/cluster/info/{clusterId}")).Json()).GetProperty("cluster").GetProperty("status").GetString();
            await Task.Delay(100);
        }
        while (status != "DESTROYED" && DateTime.UtcNow < deadline);
        Assert.Equal("DESTROYED", status);
        var operations = await (await client.GetAsync($"/cluster/operations/{clusterId}?type=CLUSTER_RELEASE")).Json();
        Assert.Single(operations.GetProperty("requests").EnumerateArray());
    }

    [Fact]
    public async Task Attached_volumes_are_visible_to_jobs_at_their_mount_path()
    {
        var (client, key) = await fx.NewUserAsync("volume@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        var storage = await (await client.PostAsJsonAsync("/storage/create", new { size = 10 })).Json();
        var storageId = storage.GetProperty("storage_id").GetString()!;
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(storage.GetProperty("request_id").GetString()!)).Final.GetProperty("status").GetString());
        var attach = await (await client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { clusterId } })).Json();
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(attach.GetProperty("request_ids")[0].GetString()!)).Final.GetProperty("status").GetString());
        var mount = (await (await client.GetAsync($"/storage/info/{storageId}")).Json()).GetProperty("storage").GetProperty("mount_path").GetString();
        ProjectFile("README", "x");

        var writer = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml([$"echo shared > {mount}/note.txt"]), clusterId);
        await WaitForStatusAsync(client, writer.JobId!, "completed");
        var reader = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml([$"cat {mount}/note.txt"]), clusterId);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, reader.JobId!);
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains(listen.Messages, m => m.Contains("shared", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Limits_are_refused_with_clear_messages()
    {
        var (client, key) = await fx.NewUserAsync("limits@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        var random = new byte[1_500_000];
        Random.Shared.NextBytes(random);
        await File.WriteAllBytesAsync(Path.Combine(_project.Path, "weights.bin"), random);
        var tooBig = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo hi"]), clusterId);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, tooBig.CloseStatus);
        Assert.Contains(tooBig.Messages, m => m.Contains("upload failed", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("failed", (await WaitForStatusAsync(client, tooBig.JobId!, "failed")).GetProperty("status").GetString());
        File.Delete(Path.Combine(_project.Path, "weights.bin"));

        ProjectFile("README", "x");
        var running = new List<string>();
        for (var i = 0; i < 3; i++)
            running.Add((await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["sleep 120"]), clusterId)).JobId!);
        var fourth = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["echo hi"]), clusterId);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, fourth.CloseStatus);
        Assert.Contains(fourth.Messages, m => m.Contains("active jobs", StringComparison.Ordinal));
        foreach (var jobId in running)
            await client.PostAsync($"/job/cancel/{jobId}", null);
        foreach (var jobId in running)
            await WaitForStatusAsync(client, jobId, "canceled");

        var chatty = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["yes openpool | head -c 1000000", "sleep 60"]), clusterId);
        var stopped = await WaitForStatusAsync(client, chatty.JobId!, "failed");
        Assert.Contains("MaxOutputBytes", stopped.GetProperty("public_message").GetString());
    }

    [Fact]
    public async Task A_crlf_config_with_a_multi_line_command_runs_without_carriage_returns()
    {
        var (client, key) = await fx.NewUserAsync("crlf@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        ProjectFile("src/msg.txt", "hello from src\n");
        ProjectFile("notes.log", "x");
        // As written by an editor on Windows, and sent as is by the official CLI.
        var toml = "commands = [\"\"\"\r\ncd src\r\ncat msg.txt\r\n\"\"\"]\r\noutputs = []\r\nignore = [\"*.log\"]\r\n";

        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, toml, clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!);

        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains(listen.Messages, m => m.Contains("hello from src", StringComparison.Ordinal));
        Assert.DoesNotContain(listen.Messages, m => m.Contains("can't cd", StringComparison.Ordinal));
        var job = (await (await client.GetAsync($"/job/info/{push.JobId}")).Json()).GetProperty("job_info");
        Assert.Equal("cd src\ncat msg.txt\n", job.GetProperty("commands")[0].GetString());
        Assert.Equal("*.log", job.GetProperty("ignore")[0].GetString());
    }

    [Fact]
    public async Task The_job_sees_exactly_the_files_the_ignore_rules_keep()
    {
        var (client, key) = await fx.NewUserAsync("ignore@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        foreach (var file in new[] { "train.py", "a.pyc", "keep.pyc", "src/main.py", "src/b.pyc", "src/keep.pyc", ".env", ".git/config", "src/.hidden" })
            ProjectFile(file, file);
        var toml = CliJobClient.Toml(["find . -type f | sort | sed 's/^/seen: /'"], ignore: ["*.pyc", "!keep.pyc", ".*"]);

        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, toml, clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!);

        Assert.Equal("success", listen.FinalStatus);
        var seen = string.Join("\n", listen.Messages).Split('\n').Where(l => l.StartsWith("seen: ", StringComparison.Ordinal)).Select(l => l[6..].TrimEnd('\r'));
        Assert.Equal(["./keep.pyc", "./src/keep.pyc", "./src/main.py", "./train.py"], seen);
    }
}
