using System.Net.Http.Json;
using System.Net.WebSockets;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

public sealed class JobRestartTests
{
    [Fact]
    public async Task A_running_job_survives_an_engine_restart_and_ends_with_its_real_exit_code()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "README"), "x");
        string[] settings = ["--Simulated:ProvisionSeconds=0", "--Jobs:PythonVenv=false"];
        string jobId;
        string key;
        await using (var first = await EngineProcess.StartAsync(data.Path, settings))
        {
            key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
            var client = first.Client(key);
            var clusterId = await JobEngineFixture.RunningClusterAsync(client);
            var push = await CliJobClient.PushAsync(first.Url, key, project.Path,
                CliJobClient.Toml(["echo before-restart", "sleep 3", "mkdir -p out && echo result > out/r.txt", "echo after-restart", "exit 5"], outputs: ["out/"]),
                clusterId);
            Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
            jobId = push.JobId!;
            Assert.Equal("before-restart", await CliJobClient.FirstOutputAsync(first.Url, key, jobId));
            await first.KillAsync();
        }

        await using var second = await EngineProcess.StartAsync(data.Path, settings);
        var listen = await CliJobClient.ListenAsync(second.Url, key, jobId);
        Assert.Equal("error", listen.FinalStatus);
        var output = string.Join("\n", listen.Messages);
        Assert.Contains("before-restart", output);
        Assert.Contains("after-restart", output);

        var restarted = second.Client(key);
        var job = (await (await restarted.GetAsync($"/job/info/{jobId}")).Json()).GetProperty("job_info");
        Assert.Equal("error", job.GetProperty("status").GetString());
        Assert.Equal(5, job.GetProperty("exit_code").GetInt32());

        var pull = await (await restarted.GetAsync($"/job/pull/{jobId}")).Json();
        var url = pull.GetProperty("download_map").GetProperty("out/r.txt").GetString();
        using var anonymous = new HttpClient();
        Assert.Equal("result\n", await anonymous.GetStringAsync(url));
    }

    [Fact]
    public async Task Jobs_run_in_a_fresh_python_virtual_environment_when_python3_exists()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(project.Path, "check.py"), "import sys\nprint('in-venv' if sys.prefix != sys.base_prefix else 'no-venv')\n");
        await using var engine = await EngineProcess.StartAsync(data.Path, "--Simulated:ProvisionSeconds=0");
        var key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var clusterId = await JobEngineFixture.RunningClusterAsync(engine.Client(key));
        var push = await CliJobClient.PushAsync(engine.Url, key, project.Path, CliJobClient.Toml(["python3 check.py"]), clusterId);
        var listen = await CliJobClient.ListenAsync(engine.Url, key, push.JobId!);
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains(listen.Messages, m => m.Contains("in-venv", StringComparison.Ordinal));
    }
}
