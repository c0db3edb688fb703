using System.Text.Json;
using OpenPool.Client;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Cli.Tests;

/// <summary>The openpool command run in process, its output captured, against the in-process engine.</summary>
public sealed class CliTests : IDisposable
{
    private readonly EngineFactory _engine = new(Backend.Sqlite, new() { ["Simulated:ProvisionSeconds"] = "1", ["Simulated:ReleaseSeconds"] = "0.2" });

    public void Dispose() => _engine.Dispose();

    private sealed record Result(int ExitCode, string Out, string Err)
    {
        public JsonElement Json => JsonDocument.Parse(Out).RootElement;
    }

    private async Task<Result> RunAsync(params string[] args) => await RunAsAsync(_engine.AdminKey, "", args);

    private async Task<Result> RunAsAsync(string key, string input, params string[] args)
    {
        var client = new OpenPoolClient(_engine.CreateClient(), new OpenPoolClientOptions { Endpoint = new Uri("http://localhost/"), ApiKey = key });
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, stdout, stderr, new StringReader(input), client, interactive: false);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Cluster_create_with_wait_shows_progress_and_ends_with_the_final_state()
    {
        var created = await RunAsync("cluster", "create", "1xH100", "--name", "cli-train", "--wait");
        Assert.Equal(0, created.ExitCode);
        Assert.Contains("COMPLETED", created.Out);
        Assert.Contains("CLUSTER_CLAIM PROCESSING", created.Err); // progress goes to stderr, one line per change
        Assert.Contains("Creating cluster c-", created.Err);

        var list = await RunAsync("cluster", "ls");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("cli-train", list.Out);
        Assert.Contains("RUNNING", list.Out);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Wait_prints_the_final_state_once(bool interactive)
    {
        var client = new OpenPoolClient(_engine.CreateClient(), new OpenPoolClientOptions { Endpoint = new Uri("http://localhost/"), ApiKey = _engine.AdminKey });
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(["cluster", "create", "1xH100", "--wait"], stdout, stderr, new StringReader(""), client, interactive);
        Assert.Equal(0, code);
        var everything = stdout + "\n" + stderr;
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(everything, "COMPLETED"));
        Assert.StartsWith("COMPLETED: Cluster c-", stdout.ToString(), StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(everything, "is ready"));
    }

    [Fact]
    public async Task Json_prints_the_structured_answer_and_nothing_else()
    {
        var created = await RunAsync("cluster", "create", "1xH100", "--json");
        Assert.Equal(0, created.ExitCode);
        var clusterId = created.Json.GetProperty("cluster_id").GetString()!;
        Assert.StartsWith("c-", clusterId);

        var waited = await RunAsync("request", "wait", created.Json.GetProperty("request_id").GetString()!, "--json");
        Assert.Equal("COMPLETED", waited.Json.GetProperty("status").GetString());

        var info = await RunAsync("cluster", "info", clusterId, "--json");
        Assert.Equal("RUNNING", info.Json.GetProperty("cluster").GetProperty("status").GetString());

        var destroyed = await RunAsync("cluster", "destroy", clusterId, "--no-input", "--wait", "--json");
        Assert.Equal(0, destroyed.ExitCode);
        Assert.Equal("CLUSTER_RELEASE", destroyed.Json.GetProperty("request_type").GetString());
        Assert.Equal("COMPLETED", destroyed.Json.GetProperty("status").GetString());

        var requests = await RunAsync("request", "list", "--type", "cluster_claim", "--json");
        Assert.Single(requests.Json.GetProperty("requests").EnumerateArray());
    }

    [Fact]
    public async Task Errors_are_one_line_with_exit_code_1()
    {
        var missing = await RunAsync("cluster", "info", "c-nope");
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal("error: Cluster c-nope not found.", missing.Err.Trim());
        Assert.DoesNotContain("   at ", missing.Err);

        var invalid = await RunAsync("cluster", "create", "1xA100");
        Assert.Equal(1, invalid.ExitCode);
        Assert.Contains("1xA100", invalid.Err);

        var badKey = await RunAsAsync("tpk_wrong", "", "me");
        Assert.Equal(1, badKey.ExitCode);
        Assert.Contains("Invalid API key", badKey.Err);

        var usage = await RunAsync("cluster", "create");
        Assert.NotEqual(0, usage.ExitCode);
        var unknownType = await RunAsync("request", "list", "--type", "NOPE");
        Assert.Equal(1, unknownType.ExitCode);
    }

    [Fact]
    public async Task Destructive_commands_ask_first_unless_no_input()
    {
        var created = await RunAsync("cluster", "create", "1xH100", "--json");
        var clusterId = created.Json.GetProperty("cluster_id").GetString()!;

        var refused = await RunAsync("cluster", "rm", clusterId);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--no-input", refused.Err);

        var client = new OpenPoolClient(_engine.CreateClient(), new OpenPoolClientOptions { Endpoint = new Uri("http://localhost/"), ApiKey = _engine.AdminKey });
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var declined = await CliApp.RunAsync(["cluster", "rm", clusterId], stdout, stderr, new StringReader("n\n"), client, interactive: true);
        Assert.Equal(1, declined);
        Assert.Contains("[y/N]", stderr.ToString());
        var status = (await RunAsync("cluster", "info", clusterId, "--json")).Json.GetProperty("cluster").GetProperty("status").GetString();
        Assert.NotEqual("DESTROYING", status);
        Assert.NotEqual("DESTROYED", status);

        var accepted = await CliApp.RunAsync(["cluster", "rm", clusterId], stdout, stderr, new StringReader("y\n"), client, interactive: true);
        Assert.Equal(0, accepted);
    }

    [Fact]
    public async Task Storage_me_keys_and_admin_commands_work()
    {
        var volume = await RunAsync("storage", "create", "100", "--name", "cli-data", "--wait", "--json");
        Assert.Equal(0, volume.ExitCode);
        Assert.Equal("COMPLETED", volume.Json.GetProperty("status").GetString());
        Assert.Contains("cli-data", (await RunAsync("storage", "list")).Out);

        using var dir = new TempDir();
        var keyFile = Path.Combine(dir.Path, "id.pub");
        await File.WriteAllTextAsync(keyFile, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA2gZUJtj1J1ZDeyQ2pRFrgEvhMbFUv+RxpjKccZ2G+n ada@lab\n");
        Assert.Equal(0, (await RunAsync("me", "sshkey", "add", keyFile, "--name", "laptop")).ExitCode);
        Assert.Contains("laptop", (await RunAsync("me", "sshkey", "ls")).Out);
        Assert.Contains("admin@openpool.local", (await RunAsync("me")).Out);

        var user = await RunAsync("admin", "users", "create", "cli@example.com", "--org", "cli-lab", "--json");
        var apiKey = user.Json.GetProperty("api_key").GetString()!;
        Assert.Equal(0, (await RunAsAsync(apiKey, "", "me")).ExitCode);
        Assert.Contains("Credited", (await RunAsync("admin", "credit", "25", "--org", "cli-lab")).Out);
        Assert.Contains("cli-lab", (await RunAsync("admin", "orgs")).Out);
        Assert.Contains("cli@example.com", (await RunAsync("admin", "users", "ls")).Out);
        var forbidden = await RunAsAsync(apiKey, "", "admin", "orgs");
        Assert.Equal(1, forbidden.ExitCode);
    }

    [Fact]
    public async Task Every_command_has_help()
    {
        foreach (var command in new[] { new[] { "cluster", "create" }, ["storage", "edit"], ["job", "push"], ["me", "sshkey", "add"], ["request", "wait"], ["admin", "credit"] })
        {
            var help = await RunAsync([.. command, "--help"]);
            Assert.Equal(0, help.ExitCode);
            Assert.Contains("Usage:", help.Out);
        }
    }
}
