using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>An engine that cannot make sandboxes, and one whose operator chose none.</summary>
public sealed class JobSandboxModeTests
{
    private static readonly string[] Fast = ["--Simulated:ProvisionSeconds=0", "--Jobs:PythonVenv=false"];

    [Fact]
    public async Task Without_bubblewrap_the_engine_starts_says_so_once_and_only_the_operator_can_push()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
        await using var engine = await EngineProcess.StartAsync(data.Path, [.. Fast, "--Jobs:Bubblewrap=/nonexistent/bwrap"]);
        var adminKey = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var admin = engine.Client(adminKey);
        var created = await (await admin.PostAsJsonAsync("/admin/users", new { email = "user@example.com" })).Json();
        var userKey = created.GetProperty("api_key").GetString()!;
        var user = engine.Client(userKey);

        var userCluster = await JobEngineFixture.RunningClusterAsync(user);
        var refused = await CliJobClient.PushAsync(engine.Url, userKey, project.Path, CliJobClient.Toml(["echo hi"]), userCluster);
        Assert.Equal((WebSocketCloseStatus)4403, refused.CloseStatus);
        Assert.Contains(refused.Messages, m => m.Contains("bubblewrap is not installed", StringComparison.Ordinal) && m.Contains("operator", StringComparison.Ordinal));
        Assert.Null(refused.JobId);

        var adminCluster = await JobEngineFixture.RunningClusterAsync(admin);
        var pushed = await CliJobClient.PushAsync(engine.Url, adminKey, project.Path, CliJobClient.Toml(["echo operator-job"]), adminCluster);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, pushed.CloseStatus);
        var listen = await CliJobClient.ListenAsync(engine.Url, adminKey, pushed.JobId!);
        Assert.True(listen.FinalStatus == "success", listen.Printed);
        Assert.Contains("operator-job", listen.Printed);

        var lines = engine.Output.Split('\n');
        Assert.Single(lines, l => l.StartsWith("Job sandbox: unavailable, bubblewrap is not installed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_engine_that_is_not_root_sandboxes_jobs_in_a_user_namespace_as_uid_1000()
    {
        const int nobody = 65534;
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
        Assert.Equal(0, Chown(data.Path, nobody, nobody));
        await using var engine = await EngineProcess.StartAsync(data.Path, nobody, Fast);
        Assert.DoesNotContain("Job sandbox:", engine.Output, StringComparison.Ordinal);
        var adminKey = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var created = await (await engine.Client(adminKey).PostAsJsonAsync("/admin/users", new { email = "unprivileged@example.com" })).Json();
        var userKey = created.GetProperty("api_key").GetString()!;
        var cluster = await JobEngineFixture.RunningClusterAsync(engine.Client(userKey));

        var pushed = await CliJobClient.PushAsync(engine.Url, userKey, project.Path,
            CliJobClient.Toml([$"echo \"uid=$(id -u) user=$(whoami)\"; test -e {data.Path} && echo SEES-DATA-DIR; cat README"]), cluster);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, pushed.CloseStatus);
        var listen = await CliJobClient.ListenAsync(engine.Url, userKey, pushed.JobId!);
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains("uid=1000 user=ubuntu\nx", listen.Printed);
        Assert.DoesNotContain("SEES-DATA-DIR", listen.Printed);
    }

    [Fact]
    public async Task SIGTERM_stops_the_engine_while_pulls_walk_a_job_tree_full_of_link_loops()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
        await using var engine = await EngineProcess.StartAsync(data.Path, Fast);
        var key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var client = engine.Client(key);
        var cluster = await JobEngineFixture.RunningClusterAsync(client);
        var pushed = await CliJobClient.PushAsync(engine.Url, key, project.Path,
            CliJobClient.Toml(["for d in a b c d; do ln -s . $d; done; mkdir -p out; for i in $(seq 1 200); do ln -s .. out/up$i; done; echo ready; sleep 300"],
                outputs: ["a/", "b/", "**/*"]),
            cluster);
        Assert.Equal("ready", await CliJobClient.FirstOutputAsync(engine.Url, key, pushed.JobId!));

        // Pulls in flight while the engine is told to stop: each walk is bounded, none holds the engine up.
        var pulls = Enumerable.Range(0, 4).Select(_ => client.GetAsync($"/job/pull/{pushed.JobId}")).ToList();
        var first = await (await pulls[0]).Json();
        Assert.Equal(["README"], first.GetProperty("download_map").EnumerateObject().Select(p => p.Name));
        Assert.True(await engine.TerminateAsync(TimeSpan.FromSeconds(60)), "the engine was still running 60 s after SIGTERM");
    }

    [Fact]
    public async Task Two_engines_on_one_host_never_give_their_tenants_the_same_uid()
    {
        var uids = new List<string>();
        // Both data directories exist throughout: a range is handed out again only once its directory is gone.
        using var first = new TempDir();
        using var second = new TempDir();
        foreach (var (data, i) in new[] { (first, 0), (second, 1) })
        {
            using var project = new TempDir();
            await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
            await using var engine = await EngineProcess.StartAsync(data.Path, Fast);
            var adminKey = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
            var created = await (await engine.Client(adminKey).PostAsJsonAsync("/admin/users", new { email = $"first-tenant-{i}@example.com" })).Json();
            var userKey = created.GetProperty("api_key").GetString()!;
            var cluster = await JobEngineFixture.RunningClusterAsync(engine.Client(userKey));
            var pushed = await CliJobClient.PushAsync(engine.Url, userKey, project.Path, CliJobClient.Toml(["echo uid=$(id -u)"]), cluster);
            var listen = await CliJobClient.ListenAsync(engine.Url, userKey, pushed.JobId!);
            uids.Add(listen.Printed.Split('\n').Single(l => l.StartsWith("uid=", StringComparison.Ordinal)));
        }
        // Both engines' first tenant: with a uid range per data directory they still differ.
        Assert.NotEqual(uids[0], uids[1]);
    }

    [Fact]
    public async Task A_node_that_uses_more_than_its_memory_has_its_job_killed_and_the_engine_lives_on()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
        await using var engine = await EngineProcess.StartAsync(data.Path, [.. Fast, "--Jobs:MaxNodeMemoryBytes=134217728"]); // 128 MB
        var key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var client = engine.Client(key);
        var cluster = await JobEngineFixture.RunningClusterAsync(client);

        var small = await CliJobClient.PushAsync(engine.Url, key, project.Path,
            CliJobClient.Toml(["python3 -c 'x = bytearray(16 * 1024 * 1024); x[::4096] = b\"1\" * len(x[::4096]); print(\"fits\")'"]), cluster);
        var fits = await CliJobClient.ListenAsync(engine.Url, key, small.JobId!);
        Assert.True(fits.FinalStatus == "success", fits.Printed);

        // Touching every page makes the memory real: 512 MB cannot be had within 128 MB.
        var large = await CliJobClient.PushAsync(engine.Url, key, project.Path,
            CliJobClient.Toml(["python3 -c 'x = bytearray(512 * 1024 * 1024); x[::4096] = b\"1\" * len(x[::4096]); print(\"too-much\")'"]), cluster);
        var killed = await CliJobClient.ListenAsync(engine.Url, key, large.JobId!, TimeSpan.FromSeconds(120));
        Assert.Equal("error", killed.FinalStatus);
        Assert.DoesNotContain("too-much", killed.Printed.Split('\n')); // bash's "Killed" line quotes the command; the print never ran
        var job = (await (await client.GetAsync($"/job/info/{large.JobId}")).Json()).GetProperty("job_info");
        Assert.Equal(137, job.GetProperty("exit_code").GetInt32()); // SIGKILL, from the OOM killer
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int uid, int gid);

    [Fact]
    public async Task With_Sandbox_None_anyone_can_push_and_the_engine_says_jobs_are_unconfined()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
        await using var engine = await EngineProcess.StartAsync(data.Path, [.. Fast, "--Jobs:Sandbox=None"]);
        var adminKey = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var created = await (await engine.Client(adminKey).PostAsJsonAsync("/admin/users", new { email = "solo@example.com" })).Json();
        var userKey = created.GetProperty("api_key").GetString()!;
        var cluster = await JobEngineFixture.RunningClusterAsync(engine.Client(userKey));

        var pushed = await CliJobClient.PushAsync(engine.Url, userKey, project.Path, CliJobClient.Toml(["echo solo-job; cat README"]), cluster);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, pushed.CloseStatus);
        var listen = await CliJobClient.ListenAsync(engine.Url, userKey, pushed.JobId!);
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains("solo-job\nx", listen.Printed);
        Assert.Single(engine.Output.Split('\n'), l => l.StartsWith("Job sandbox: none (Jobs:Sandbox=None)", StringComparison.Ordinal));
    }
}
