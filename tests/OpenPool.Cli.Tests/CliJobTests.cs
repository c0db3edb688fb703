using System.Text.Json;
using OpenPool.Client;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Cli.Tests;

/// <summary>openpool job … against a real engine process: the project upload needs a real socket.</summary>
public sealed class CliJobTests
{
    [Fact]
    public async Task Push_listen_info_pull_and_cancel_through_the_cli()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        using var results = new TempDir();
        await using var engine = await EngineProcess.StartAsync(data.Path, "--Simulated:ProvisionSeconds=0", "--Jobs:PythonVenv=false");
        var key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        async Task<(int Code, string Out, string Err)> Run(params string[] args)
        {
            var client = new OpenPoolClient(new OpenPoolClientOptions { Endpoint = engine.Url, ApiKey = key });
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            var code = await CliApp.RunAsync(args, stdout, stderr, new StringReader(""), client, interactive: false);
            return (code, stdout.ToString(), stderr.ToString());
        }

        var cluster = await Run("cluster", "create", "1xH100", "--wait", "--json");
        var clusterId = JsonDocument.Parse(cluster.Out).RootElement.GetProperty("object_id").GetString()!;
        await File.WriteAllTextAsync(Path.Combine(project.Path, "job.tp.toml"),
            "commands = [\"mkdir -p out && echo result > out/r.txt && echo cli-job-output\"]\noutputs = [\"out/\"]\n");

        var push = await Run("job", "push", Path.Combine(project.Path, "job.tp.toml"), clusterId, "--dir", project.Path, "--json");
        Assert.Equal(0, push.Code);
        var jobId = JsonDocument.Parse(push.Out).RootElement.GetProperty("job_id").GetString()!;

        var listen = await Run("job", "listen", jobId);
        Assert.Equal(0, listen.Code);
        Assert.Contains("cli-job-output", listen.Out);
        Assert.Contains("completed", (await Run("job", "info", jobId)).Out);

        var pull = await Run("job", "pull", jobId, "--dir", results.Path);
        Assert.Equal(0, pull.Code);
        Assert.Equal("result\n", await File.ReadAllTextAsync(Path.Combine(results.Path, "out", "r.txt")));

        var sleeper = Path.Combine(project.Path, "sleep.tp.toml");
        await File.WriteAllTextAsync(sleeper, "commands = [\"sleep 300\"]\n");
        var sleeping = JsonDocument.Parse((await Run("job", "push", sleeper, clusterId, "--dir", project.Path, "--json")).Out).RootElement.GetProperty("job_id").GetString()!;
        var cancel = await Run("job", "cancel", sleeping, "--no-input", "--wait");
        Assert.Equal(0, cancel.Code);
        Assert.Contains("canceled", cancel.Out);
    }
}
