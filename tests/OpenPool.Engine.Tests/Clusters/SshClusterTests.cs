using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using OpenPool.Engine.Tests.Infrastructure;
using OpenPool.Engine.Tests.Jobs;

namespace OpenPool.Engine.Tests.Clusters;

/// <summary>A real engine whose nodes take logins and whose volumes attach at once, on a port range no other test engine uses.</summary>
public sealed class SshClusterEngineFixture : RealEngineFixture
{
    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Simulated:VolumeSeconds=0", "--Simulated:RestartSeconds=0",
        "--Jobs:PythonVenv=false", "--Simulated:SshPorts=23400-23599",
    ];
}

/// <summary>
/// What a login sees of its cluster and its machine: the other nodes by name, id and listed address
/// over SSH without a key of the tenant's, the instance type's GPUs through nvidia-smi, the cluster's
/// volumes, and a /tmp of the node's own that outlives a login. Each test makes its own users.
/// </summary>
public sealed class SshClusterTests(SshClusterEngineFixture fx) : IClassFixture<SshClusterEngineFixture>, IDisposable
{
    private readonly SshKeygen _keys = new();
    private readonly TempDir _client = new();
    private readonly TempDir _project = new();

    public void Dispose()
    {
        _keys.Dispose();
        _client.Dispose();
        _project.Dispose();
    }

    private EngineAccess Engine => new(fx.Engine, fx.DataDir);

    // Inside a node: the cluster's own ssh_config and known hosts decide; no prompt may hang the test.
    private const string Hop = "ssh -o BatchMode=yes -o ConnectTimeout=20";

    [Fact]
    public async Task Nodes_of_a_cluster_reach_each_other_by_name_id_and_listed_address_without_a_key_of_the_tenants()
    {
        var nodes = await SshNode.StartClusterAsync(Engine, _keys, _client, "pair@example.com", "8xH100", 2);
        var (first, second) = (nodes[0], nodes[1]);
        var info = (await (await first.Client.GetAsync($"/cluster/info/{first.ClusterId}")).Json()).ToString();

        // node-1 is the first instance id the claim listed; /etc/hosts names both at their listed addresses.
        var hosts = await first.SshAsync("cat /etc/hosts");
        Assert.True(hosts.ExitCode == 0, hosts.Errors);
        var secondLine = Assert.Single(hosts.Output.Split('\n'), l => l.EndsWith($"node-2 {second.InstanceId}", StringComparison.Ordinal));
        var secondAddress = secondLine.Split('\t')[0];
        Assert.StartsWith("203.0.113.", secondAddress);
        Assert.Contains(secondAddress, info);
        Assert.Contains($"node-1 {first.InstanceId}", hosts.Output);

        // The tenant's key stays on the test's machine: only the cluster's own key is there to use.
        foreach (var name in new[] { "node-2", second.InstanceId, secondAddress })
        {
            var hop = await first.SshAsync($"{Hop} {name} 'hostname; id -un'");
            Assert.True(hop.ExitCode == 0, $"ssh {name}: {hop.Errors}");
            Assert.Equal($"{second.InstanceId}\nubuntu\n", hop.Output);
        }
        var back = await second.SshAsync($"{Hop} node-1 'hostname; exit 4'");
        Assert.Equal(4, back.ExitCode);
        Assert.Equal(first.InstanceId + "\n", back.Output);

        // The host key met inside is the one the engine reported for that node (checked, not accepted blindly).
        var alias = await first.SshAsync($"ssh-keygen -l -F {second.InstanceId} -f /etc/ssh/ssh_known_hosts");
        Assert.True(alias.ExitCode == 0, alias.Errors);
        Assert.Contains(second.ReportedFingerprint, alias.Output);
    }

    [Fact]
    public async Task The_cluster_key_opens_no_node_of_another_cluster_even_of_the_same_tenant()
    {
        var ours = (await SshNode.StartClusterAsync(Engine, _keys, _client, "keyholder@example.com", "8xH100", 2))[0];
        var theirs = await SshNode.StartAsync(Engine, _keys, _client, "neighbour@example.com");
        Assert.Equal(0, (await theirs.SshAsync("true")).ExitCode); // it takes logins, with its own key

        // The node's ports are on the engine's host, which the node shares the network of: reachable, and refused.
        var attempt = await ours.SshAsync(
            $"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p {theirs.Port} ubuntu@127.0.0.1 echo got-in");
        Assert.Equal(255, attempt.ExitCode);
        Assert.Contains("Permission denied", attempt.Errors);
        Assert.DoesNotContain("got-in", attempt.Output);
    }

    [Fact]
    public async Task Nvidia_smi_reports_the_instance_types_gpus_to_logins_and_jobs()
    {
        var nodes = await SshNode.StartClusterAsync(Engine, _keys, _client, "gpus@example.com", "8xH100", 2);
        var node = nodes[1];

        var query = await node.SshAsync("nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader");
        Assert.True(query.ExitCode == 0, query.Errors);
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"{i}, NVIDIA H100 80GB, 81920 MiB"), query.Output.TrimEnd('\n').Split('\n'));
        var header = await node.SshAsync("nvidia-smi --query-gpu=memory.used,count --format=csv,nounits");
        Assert.Equal("memory.used [MiB], count", header.Output.Split('\n')[0]);
        Assert.Equal("0, 8", header.Output.Split('\n')[1]);

        // -L gives one line per GPU with a UUID of the node's own, the same on every call.
        var list = await node.SshAsync("nvidia-smi -L; nvidia-smi -L | md5sum; nvidia-smi -L | md5sum");
        var lines = list.Output.TrimEnd('\n').Split('\n');
        Assert.Equal(8, lines.Count(l => l.StartsWith("GPU ", StringComparison.Ordinal) && l.Contains("(UUID: GPU-", StringComparison.Ordinal)));
        Assert.Equal(lines[^1], lines[^2]);
        var table = await node.SshAsync("nvidia-smi");
        Assert.True(table.ExitCode == 0, table.Errors);
        Assert.Contains("NVIDIA H100 80GB", table.Output);
        Assert.Contains("81920MiB", table.Output);
        var wrong = await node.SshAsync("nvidia-smi --query-gpu=flux_capacitance --format=csv");
        Assert.Equal(2, wrong.ExitCode);

        // The stand-in joins the host's /usr/local/bin rather than hiding it.
        var listed = await node.SshAsync("ls -A /usr/local/bin");
        var expected = Directory.GetFileSystemEntries("/usr/local/bin").Select(Path.GetFileName).Append("nvidia-smi").Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(expected, listed.Output.TrimEnd('\n').Split('\n').Order(StringComparer.Ordinal));

        // A job sees the same GPUs (a login shell is not needed for it to be on the PATH).
        File.WriteAllText(Path.Combine(_project.Path, "README"), "x");
        var listen = await RunJobAsync(node, "nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c");
        Assert.Contains("8 NVIDIA H100 80GB", listen);
    }

    [Fact]
    public async Task An_attached_volume_is_at_its_mount_path_in_logins_and_shared_with_the_nodes_jobs()
    {
        var node = await SshNode.StartAsync(Engine, _keys, _client, "volumes@example.com");
        var created = await (await node.Client.PostAsJsonAsync("/storage/create", new { size = 100, name = "data" })).Json();
        var storageId = created.GetProperty("storage_id").GetString()!;
        Assert.Equal("COMPLETED", (await node.Client.PollLikeCliAsync(created.GetProperty("request_id").GetString()!)).Final.GetProperty("status").GetString());
        var mount = $"/mnt/nfs-{storageId}";
        Assert.NotEqual(0, (await node.SshAsync($"test -d {mount}")).ExitCode); // not attached yet

        var attach = await node.Client.PostAsJsonAsync("/storage/attach", new { storage_id = storageId, cluster_ids = new[] { node.ClusterId } });
        Assert.Equal(HttpStatusCode.Accepted, attach.StatusCode);
        var attachId = (await attach.Json()).GetProperty("request_ids")[0].GetString()!;
        Assert.Equal("COMPLETED", (await node.Client.PollLikeCliAsync(attachId)).Final.GetProperty("status").GetString());

        var marker = "over-ssh-" + Guid.NewGuid().ToString("N");
        var write = await node.SshAsync($"echo {marker} > {mount}/from-login.txt && stat -c %U {mount}/from-login.txt");
        Assert.True(write.ExitCode == 0, write.Errors);
        Assert.Equal("ubuntu\n", write.Output);
        Assert.Contains(marker, await RunJobAsync(node, $"cat {mount}/from-login.txt"));

        var detach = await node.Client.PostAsJsonAsync("/storage/detach", new { storage_id = storageId, cluster_id = node.ClusterId });
        Assert.Equal(HttpStatusCode.Accepted, detach.StatusCode);
        var detachId = (await detach.Json()).GetProperty("request_id").GetString()!;
        Assert.Equal("COMPLETED", (await node.Client.PollLikeCliAsync(detachId)).Final.GetProperty("status").GetString());
        Assert.NotEqual(0, (await node.SshAsync($"test -e {mount}")).ExitCode);
    }

    [Fact]
    public async Task Tmp_is_the_nodes_own_and_outlives_the_login_that_wrote_it()
    {
        var nodes = await SshNode.StartClusterAsync(Engine, _keys, _client, "tmp@example.com", "8xH100", 2);
        var marker = "tmp-" + Guid.NewGuid().ToString("N");
        var write = await nodes[0].SshAsync($"echo {marker} > /tmp/left-behind && stat -c %a /tmp");
        Assert.True(write.ExitCode == 0, write.Errors);
        Assert.Equal("1777\n", write.Output);

        Assert.Equal(marker + "\n", (await nodes[0].SshAsync("cat /tmp/left-behind")).Output);
        Assert.Contains(marker, await RunJobAsync(nodes[0], "cat /tmp/left-behind"));
        // The other node of the cluster is another machine: its /tmp is its own.
        Assert.NotEqual(0, (await nodes[1].SshAsync("test -e /tmp/left-behind")).ExitCode);
    }

    [Fact]
    public async Task A_tmux_session_started_in_one_login_is_there_for_the_next()
    {
        var node = await SshNode.StartAsync(Engine, _keys, _client, "tmux@example.com");
        var start = await node.SshAsync("tmux new-session -d -s train 'sleep 600' && echo started");
        Assert.True(start.ExitCode == 0, start.Errors);

        // A later login has a PID namespace of its own, and still finds the server through /tmp.
        var listed = await node.SshAsync("tmux list-sessions -F '#{session_name}'; ps -e -o comm= | grep -c '^sleep$' || true");
        Assert.True(listed.ExitCode == 0, listed.Errors);
        Assert.Equal(["train", "0"], listed.Output.TrimEnd('\n').Split('\n'));
        var sent = await node.SshAsync("tmux send-keys -t train C-c && sleep 1; tmux has-session -t train 2>/dev/null && echo still || echo ended");
        Assert.Equal("ended\n", sent.Output);
    }

    /// <summary>Pushes a one-command job to the node's cluster as the CLI does and returns what it printed.</summary>
    private async Task<string> RunJobAsync(SshNode node, string command)
    {
        File.WriteAllText(Path.Combine(_project.Path, "README"), "x");
        var push = await CliJobClient.PushAsync(fx.Url, node.ApiKey, _project.Path, CliJobClient.Toml([command]), node.ClusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, node.ApiKey, push.JobId!, TimeSpan.FromSeconds(120));
        Assert.True(listen.FinalStatus == "success", listen.Printed);
        return listen.Printed;
    }
}
