using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpenPool.Engine.Tests.Infrastructure;
using OpenPool.Engine.Tests.Jobs;

namespace OpenPool.Engine.Tests.Clusters;

/// <summary>A real engine whose simulated nodes take SSH logins, on a port range of its own so no other test engine takes its ports.</summary>
public sealed class SshEngineFixture : RealEngineFixture
{
    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Jobs:PythonVenv=false", "--Simulated:SshPorts=23000-23399",
    ];
}

/// <summary>
/// <c>tp ssh</c> as the official CLI runs it: GET /ssh, split the command, append the user's
/// arguments, run the stock OpenSSH client. Each test logs in with a key pair made for it.
/// </summary>
public sealed class SshLoginTests(SshEngineFixture fx) : IClassFixture<SshEngineFixture>, IDisposable
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

    [Fact]
    public async Task A_login_runs_as_ubuntu_on_the_node_and_passes_output_and_exit_code_back()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "exec@example.com");

        var exit = await node.SshAsync("echo out-line; echo err-line >&2; exit 7");
        Assert.Equal(7, exit.ExitCode);
        Assert.Equal("out-line\n", exit.Output);
        Assert.Contains("err-line", exit.Errors);

        var who = await node.SshAsync("id -un; hostname; echo $HOME; pwd");
        Assert.Equal(0, who.ExitCode);
        Assert.Equal(["ubuntu", node.InstanceId, "/home/ubuntu", "/home/ubuntu"], who.Output.TrimEnd('\n').Split('\n'));

        // ssh -tt makes sshd allocate a pseudo-terminal inside the sandbox (its devpts, not the host's).
        var terminal = await node.SshAsync("tty", extraOptions: ["-tt"]);
        Assert.Equal(0, terminal.ExitCode);
        Assert.StartsWith("/dev/pts/", terminal.Output.Trim());

        // What the client filed under the instance id is the key the engine reported.
        Assert.Equal(node.ReportedFingerprint, node.KnownHostFingerprint());
        Assert.StartsWith("SHA256:", node.ReportedFingerprint);
    }

    [Fact]
    public async Task A_node_has_no_files_before_its_first_login_yet_reports_the_host_key_the_login_then_meets()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "lazy@example.com");
        var root = Path.Combine(fx.DataDir, "sim", "nodes", node.InstanceId);
        // A ready node with its fingerprint reported, and nothing of it on disk: a claim writes no file per node.
        Assert.StartsWith("SHA256:", node.ReportedFingerprint);
        Assert.False(Directory.Exists(Path.Combine(root, "etc-ssh")), "the node's /etc/ssh was written before any login");
        Assert.False(Directory.Exists(Path.Combine(root, "home")), "the node's home was made before any login");
        Assert.False(File.Exists(Path.Combine(root, "uid")), "the node was prepared before any login");

        var first = await node.SshAsync("id -un; hostname");
        Assert.True(first.ExitCode == 0, first.Errors);
        Assert.Equal(["ubuntu", node.InstanceId], first.Output.TrimEnd('\n').Split('\n'));
        Assert.Equal(node.ReportedFingerprint, node.KnownHostFingerprint());
        Assert.Equal(node.ReportedFingerprint, SshKeygen.Fingerprint(Path.Combine(root, "etc-ssh", "ssh_host_ed25519_key.pub")));
        // A second login meets the same key (accept-new refuses another).
        Assert.Equal(0, (await node.SshAsync("true")).ExitCode);
    }

    [Fact]
    public async Task A_node_never_logged_in_to_is_destroyed_and_its_port_refuses_logins()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "never@example.com");
        var destroy = await (await node.Client.DeleteAsync($"/cluster/{node.ClusterId}")).Json();
        Assert.Equal("COMPLETED", (await node.Client.PollLikeCliAsync(destroy.GetProperty("request_id").GetString()!)).Final.GetProperty("status").GetString());
        var refused = await node.SshAsync("echo should-not-run");
        Assert.Equal(255, refused.ExitCode);
        Assert.Contains("Connection refused", refused.Errors);
        Assert.False(Directory.Exists(Path.Combine(fx.DataDir, "sim", "nodes", node.InstanceId, "etc-ssh")));
    }

    [Fact]
    public async Task A_file_written_over_ssh_is_read_by_a_job_pushed_to_the_same_cluster()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "handoff@example.com");
        var marker = "from-ssh-" + Guid.NewGuid().ToString("N");
        Assert.Equal(0, (await node.SshAsync($"echo {marker} > ~/handoff.txt")).ExitCode);

        File.WriteAllText(Path.Combine(_project.Path, "README"), "x");
        var push = await CliJobClient.PushAsync(fx.Url, node.ApiKey, _project.Path, CliJobClient.Toml(["cat ~/handoff.txt"]), node.ClusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, node.ApiKey, push.JobId!, TimeSpan.FromSeconds(120));
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains(marker, listen.Printed);
    }

    [Fact]
    public async Task Scp_and_rsync_copy_to_and_from_the_node_byte_for_byte()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "copy@example.com");
        var upload = Directory.CreateDirectory(Path.Combine(_project.Path, "up")).FullName;
        var blob = new byte[3 * 1024 * 1024];
        Random.Shared.NextBytes(blob);
        File.WriteAllBytes(Path.Combine(upload, "blob.bin"), blob);
        Directory.CreateDirectory(Path.Combine(upload, "nested"));
        File.WriteAllText(Path.Combine(upload, "nested", "note.txt"), "a note\n");
        var destination = $"{NodeUser}@127.0.0.1";

        // scp speaks SFTP to the node's sshd (OpenSSH 9), so this is the sftp subsystem too.
        var scpUp = await SshNode.RunAsync("scp", ["-q", "-P", node.Port, .. node.ClientOptions(), Path.Combine(upload, "blob.bin"), destination + ":blob.scp"]);
        Assert.True(scpUp.ExitCode == 0, scpUp.Errors);
        var back = Path.Combine(_project.Path, "blob.back");
        var scpDown = await SshNode.RunAsync("scp", ["-q", "-P", node.Port, .. node.ClientOptions(), destination + ":blob.scp", back]);
        Assert.True(scpDown.ExitCode == 0, scpDown.Errors);
        Assert.Equal(blob, File.ReadAllBytes(back));

        var shell = "ssh -p " + node.Port + " " + string.Join(' ', node.ClientOptions());
        var rsyncUp = await SshNode.RunAsync("rsync", ["-a", "-e", shell, upload + "/", destination + ":synced/"]);
        Assert.True(rsyncUp.ExitCode == 0, rsyncUp.Errors);
        var synced = Path.Combine(_project.Path, "down");
        var rsyncDown = await SshNode.RunAsync("rsync", ["-a", "-e", shell, destination + ":synced/", synced + "/"]);
        Assert.True(rsyncDown.ExitCode == 0, rsyncDown.Errors);
        Assert.Equal(blob, File.ReadAllBytes(Path.Combine(synced, "blob.bin")));
        Assert.Equal("a note\n", File.ReadAllText(Path.Combine(synced, "nested", "note.txt")));

        // The copies are the node's user's files, where its jobs see them.
        var owner = await node.SshAsync("stat -c '%U' ~/blob.scp ~/synced/blob.bin | sort -u");
        Assert.Equal("ubuntu\n", owner.Output);
    }

    private const string NodeUser = "ubuntu";

    [Fact]
    public async Task A_key_that_is_not_the_clusters_is_refused()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "keys@example.com");
        var foreign = _keys.NewKey("ed25519")[..^".pub".Length];

        var refused = await node.SshAsync("echo should-not-run", identity: foreign);
        Assert.Equal(255, refused.ExitCode);
        Assert.Contains("Permission denied", refused.Errors);
        Assert.DoesNotContain("should-not-run", refused.Output);

        // Another tenant's cluster does not take this tenant's key either.
        var other = await SshNode.StartAsync(fx, _keys, _client, "keys-other@example.com");
        var crossed = await other.SshAsync("true", identity: node.Identity);
        Assert.Equal(255, crossed.ExitCode);
    }

    [Fact]
    public async Task The_login_sees_nothing_of_the_engine_and_cannot_read_the_node_host_key()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "escape@example.com");
        var probe = await node.SshAsync(
            $"test -e {fx.DataDir} && echo SEES-DATA-DIR; cat {fx.DataDir}/admin.key 2>/dev/null && echo READ-ADMIN-KEY; " +
            "find / -xdev \\( -name admin.key -o -name 'openpool.db*' \\) 2>/dev/null | sed 's/^/FOUND /'; " +
            $"kill -0 {fx.Engine.Pid} 2>/dev/null && echo CAN-SIGNAL-ENGINE; " +
            "cat /etc/ssh/ssh_host_ed25519_key >/dev/null 2>&1 && echo READ-HOST-KEY; " +
            "echo tampered >> /etc/ssh/authorized_keys 2>/dev/null && echo WROTE-AUTHORIZED-KEYS; echo done-probing");
        Assert.Equal(0, probe.ExitCode);
        Assert.Contains("done-probing", probe.Output);
        // No process of a login shows a host path on its command line (the sandbox's init included).
        // The pattern is put together inside, so the probe's own command line does not hold it.
        var (head, tail) = (fx.DataDir[..8], fx.DataDir[8..]);
        var lines = await node.SshAsync(
            $"h={head}; printf '%s' \"${{h}}{tail}\" > /tmp/pattern; grep -l -F -f /tmp/pattern /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/PATH-IN /'; echo done-grepping");
        Assert.Contains("done-grepping", lines.Output);
        Assert.DoesNotContain("PATH-IN ", lines.Output);
        foreach (var leak in new[] { "SEES-DATA-DIR", "READ-ADMIN-KEY", "FOUND ", "CAN-SIGNAL-ENGINE", "READ-HOST-KEY", "WROTE-AUTHORIZED-KEYS", "PATH-IN " })
            Assert.DoesNotContain(leak, probe.Output);
        Assert.DoesNotContain(fx.AdminKey, probe.Output);
    }

    [Fact]
    public async Task After_a_destroy_logins_are_refused_and_an_open_one_ends_within_seconds()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "destroy@example.com");
        using var open = node.StartSsh("echo logged-in; sleep 300");
        Assert.Equal("logged-in", await open.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        // A login that ended but left a process behind: its sshd (and the bwrap the engine spawned)
        // exit, the login's PID namespace does not. The destroy must end that one too.
        var marker = $"{Random.Shared.Next(1000, 9999)}.25";
        var leftBehind = await node.SshAsync($"setsid sleep {marker} </dev/null >/dev/null 2>&1 & echo left");
        Assert.True(leftBehind.ExitCode == 0, leftBehind.Errors);
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // past the engine's 1 s reaping of ended logins
        Assert.True(HostProcessesWith(marker) > 0, "the left-behind process did not start");

        var destroy = await (await node.Client.DeleteAsync($"/cluster/{node.ClusterId}")).Json();
        Assert.Equal("COMPLETED", (await node.Client.PollLikeCliAsync(destroy.GetProperty("request_id").GetString()!)).Final.GetProperty("status").GetString());
        var ended = Stopwatch.StartNew();
        await open.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(ended.Elapsed < TimeSpan.FromSeconds(10));

        var refused = await node.SshAsync("echo should-not-run");
        Assert.Equal(255, refused.ExitCode);
        Assert.Contains("Connection refused", refused.Errors);
        var ssh = await node.Client.GetAsync($"/ssh/{node.InstanceId}");
        Assert.Equal(HttpStatusCode.Conflict, ssh.StatusCode);
        for (var wait = Stopwatch.StartNew(); HostProcessesWith(marker) > 0 && wait.Elapsed < TimeSpan.FromSeconds(10);)
            await Task.Delay(200);
        Assert.Equal(0, HostProcessesWith(marker));
    }

    /// <summary>Processes on the host whose command line holds <paramref name="text"/> (the tests run as root: every one is readable).</summary>
    private static int HostProcessesWith(string text) =>
        Directory.EnumerateDirectories("/proc").Count(dir =>
        {
            try
            {
                return int.TryParse(Path.GetFileName(dir), out _) && File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(text, StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false; // ended while looked at
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        });
}

/// <summary>
/// What a test that stops and starts its own engine owns: the data directory both engines share,
/// the tenant's key pair and the ssh client's files. A class per test, so they run side by side.
/// </summary>
public abstract class SshRestartTest : IDisposable
{
    private protected TempDir Data { get; } = new();
    private protected SshKeygen Keys { get; } = new();
    private protected TempDir ClientFiles { get; } = new();

    public void Dispose()
    {
        Keys.Dispose();
        ClientFiles.Dispose();
        Data.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The host key and the logins of a node survive an engine killed the hard way and started again.</summary>
public sealed class SshRestartTests : SshRestartTest
{
    [Fact]
    public async Task After_an_engine_restart_the_same_command_reaches_the_same_host_key()
    {
        string[] settings = ["--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Simulated:SshPorts=23400-23499"];
        SshNode node;
        string command;
        await using (var engine = await EngineProcess.StartAsync(Data.Path, settings))
        {
            node = await SshNode.StartAsync(new EngineAccess(engine, Data.Path), Keys, ClientFiles, "restart@example.com");
            command = node.Command;
            Assert.Equal(0, (await node.SshAsync("echo kept > ~/kept.txt")).ExitCode);
            await engine.KillAsync();
        }
        var refusedWhileDown = await node.SshAsync("true");
        Assert.Equal(255, refusedWhileDown.ExitCode);

        await using var restarted = await EngineProcess.StartAsync(Data.Path, settings);
        using var client = restarted.Client(node.ApiKey);
        var again = await (await client.GetAsync($"/ssh/{node.InstanceId}")).Json();
        Assert.Equal(command, again.GetProperty("command").GetString());
        Assert.Contains(node.ReportedFingerprint, again.GetProperty("message").GetString());

        // accept-new refuses a key that changed, so this login proves the key is the one filed before.
        var after = await node.SshAsync("cat ~/kept.txt");
        Assert.True(after.ExitCode == 0, after.Errors);
        Assert.Equal("kept\n", after.Output);
        Assert.Equal(node.ReportedFingerprint, node.KnownHostFingerprint());
    }
}

/// <summary>A node never logged in to before an engine restart: the restarted engine makes its files at the first login, with the host key reported before.</summary>
public sealed class SshRestartBeforeFirstLoginTests : SshRestartTest
{
    [Fact]
    public async Task The_first_login_after_a_restart_meets_the_host_key_reported_before_it()
    {
        string[] settings = ["--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Simulated:SshPorts=23500-23599"];
        SshNode node;
        await using (var engine = await EngineProcess.StartAsync(Data.Path, settings))
        {
            node = await SshNode.StartAsync(new EngineAccess(engine, Data.Path), Keys, ClientFiles, "restart-first@example.com");
            Assert.False(Directory.Exists(Path.Combine(Data.Path, "sim", "nodes", node.InstanceId, "etc-ssh")));
            await engine.KillAsync();
        }

        await using var restarted = await EngineProcess.StartAsync(Data.Path, settings);
        using var client = restarted.Client(node.ApiKey);
        var again = await (await client.GetAsync($"/ssh/{node.InstanceId}")).Json();
        Assert.Equal(node.Command, again.GetProperty("command").GetString());
        Assert.Contains(node.ReportedFingerprint, again.GetProperty("message").GetString());

        var login = await node.SshAsync("id -un; test -d ~ && echo home-ok");
        Assert.True(login.ExitCode == 0, login.Errors);
        Assert.Equal("ubuntu\nhome-ok\n", login.Output);
        Assert.Equal(node.ReportedFingerprint, node.KnownHostFingerprint());
    }
}

/// <summary>Without OpenSSH's server the engine starts, clusters run, and /ssh says what to install.</summary>
public sealed class SshWithoutSshdTests : IDisposable
{
    private readonly EngineFactory _engine = new(settings: new() { ["Simulated:Sshd"] = "/nonexistent/sbin/sshd", ["Simulated:ProvisionSeconds"] = "0" });

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task Ssh_answers_409_saying_to_install_openssh_server()
    {
        var client = _engine.Admin();
        var (_, requestId, created) = await client.CreateClusterAsync();
        Assert.Equal("COMPLETED", (await client.PollLikeCliAsync(requestId)).Final.GetProperty("status").GetString());
        var response = await client.GetAsync($"/ssh/{created.GetProperty("instance_ids")[0].GetString()}?system=Linux");
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("ssh_unavailable", body.GetProperty("error").GetString());
        Assert.Contains("apt-get install openssh-server", body.GetProperty("message").GetString());
    }
}

/// <summary>What a test needs of an engine to log in to one of its nodes.</summary>
internal sealed record EngineAccess(EngineProcess Engine, string DataDir)
{
    public string AdminKey => File.ReadAllText(Path.Combine(DataDir, "admin.key")).Trim();
}

/// <summary>A running one-node cluster of a new user, created with a key pair made for the test, and logins to it as <c>tp ssh</c> makes them.</summary>
internal sealed partial class SshNode
{
    private readonly string _knownHosts;

    private SshNode(HttpClient client, string apiKey, string clusterId, string instanceId, string command, string fingerprint, string identity, string knownHosts)
    {
        Client = client;
        ApiKey = apiKey;
        ClusterId = clusterId;
        InstanceId = instanceId;
        Command = command;
        ReportedFingerprint = fingerprint;
        Identity = identity;
        _knownHosts = knownHosts;
    }

    public HttpClient Client { get; }
    public string ApiKey { get; }
    public string ClusterId { get; }
    public string InstanceId { get; }
    /// <summary>The command GET /ssh returned.</summary>
    public string Command { get; }
    /// <summary>The host key fingerprint GET /ssh reported.</summary>
    public string ReportedFingerprint { get; }
    /// <summary>The private key the cluster was created with.</summary>
    public string Identity { get; }

    public static Task<SshNode> StartAsync(RealEngineFixture fx, SshKeygen keys, TempDir client, string email) =>
        StartAsync(new EngineAccess(fx.Engine, fx.DataDir), keys, client, email);

    public static async Task<SshNode> StartAsync(EngineAccess engine, SshKeygen keys, TempDir clientDir, string email) =>
        (await StartClusterAsync(engine, keys, clientDir, email, "1xH100", 1))[0];

    /// <summary>A new user's cluster of <paramref name="nodes"/> nodes, created with a key of its own; each node as <c>tp ssh</c> reaches it.</summary>
    public static async Task<IReadOnlyList<SshNode>> StartClusterAsync(EngineAccess engine, SshKeygen keys, TempDir clientDir, string email,
        string instanceType, int nodes)
    {
        RequireRootAndOpenSsh();
        using var admin = engine.Engine.Client(engine.AdminKey);
        var created = await (await admin.PostAsJsonAsync("/admin/users", new { email })).Json();
        var apiKey = created.GetProperty("api_key").GetString()!;
        var client = engine.Engine.Client(apiKey);
        return await ClusterAsync(client, apiKey, keys.NewKey("ed25519"), clientDir.Path, instanceType, nodes);
    }

    /// <summary>Another one-node cluster of the same user, with the same key pair: its node's processes have the same uid as this one's.</summary>
    public async Task<SshNode> AnotherClusterAsync() =>
        (await ClusterAsync(Client, ApiKey, Identity + ".pub", Path.GetDirectoryName(_knownHosts)!, "1xH100", 1))[0];

    private static async Task<IReadOnlyList<SshNode>> ClusterAsync(HttpClient client, string apiKey, string publicKey, string clientDir,
        string instanceType, int nodes)
    {
        var (clusterId, requestId, body) = await client.CreateClusterAsync(instanceType,
            new { public_keys = new[] { File.ReadAllText(publicKey).Trim() }, save_keys = false, num_nodes = nodes });
        var claim = await client.PollLikeCliAsync(requestId);
        Assert.Equal("COMPLETED", claim.Final.GetProperty("status").GetString());
        var reached = new List<SshNode>();
        foreach (var instance in body.GetProperty("instance_ids").EnumerateArray())
            reached.Add(await ReachAsync(client, apiKey, clusterId, instance.GetString()!, publicKey, clientDir));
        Assert.Equal(nodes, reached.Count);
        return reached;
    }

    private static async Task<SshNode> ReachAsync(HttpClient client, string apiKey, string clusterId, string instanceId, string publicKey, string clientDir)
    {
        var ssh = await client.GetAsync($"/ssh/{instanceId}?system=Linux");
        var answer = await ssh.Json();
        Assert.True(ssh.StatusCode == HttpStatusCode.OK, answer.ToString());
        var command = answer.GetProperty("command").GetString()!;
        Assert.Matches($@"^ssh -p \d+ -o StrictHostKeyChecking=accept-new -o HostKeyAlias={instanceId} ubuntu@127\.0\.0\.1$", command);
        var fingerprint = Fingerprint().Match(answer.GetProperty("message").GetString()!).Value;
        return new SshNode(client, apiKey, clusterId, instanceId, command, fingerprint, publicKey[..^".pub".Length],
            Path.Combine(clientDir, "known_hosts-" + instanceId));
    }

    /// <summary>These tests observe a real sshd in a root-made sandbox: without either, they fail and say so rather than pass unseen.</summary>
    private static void RequireRootAndOpenSsh()
    {
        Assert.True(Environment.UserName == "root" || GetEuid() == 0,
            "SSH login tests need root (CI runs as root): the engine makes the node's sandbox with root's rights.");
        Assert.True(File.Exists("/usr/sbin/sshd") && File.Exists("/usr/bin/ssh"),
            "SSH login tests need OpenSSH's server and client: apt-get install openssh-server openssh-client (./test.sh installs them).");
    }

    /// <summary>Runs the command as the official CLI does (shlex-split, the user's arguments appended) with a remote command; waits for it.</summary>
    public async Task<(int ExitCode, string Output, string Errors)> SshAsync(string remote, string? identity = null, IReadOnlyList<string>? extraOptions = null)
    {
        using var process = StartSsh(remote, identity, extraOptions);
        return await WaitAsync(process);
    }

    public Process StartSsh(string remote, string? identity = null, IReadOnlyList<string>? extraOptions = null) =>
        Start([.. SshArguments(identity, extraOptions), remote]);

    /// <summary>
    /// The command GET /ssh returned, split as the official CLI splits it, with the user's own ssh
    /// options appended as `tp ssh i-… -i key …` would: no agent or user config of the machine running
    /// the tests, a known_hosts of the test's own, and no prompt. With no remote command after them,
    /// this is `tp ssh i-…`: an interactive login.
    /// </summary>
    public List<string> SshArguments(string? identity = null, IReadOnlyList<string>? extraOptions = null) =>
    [
        .. Command.Split(' '), "-F", "/dev/null", "-i", identity ?? Identity, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", $"UserKnownHostsFile={_knownHosts}", "-o", "ConnectTimeout=30", .. extraOptions ?? [],
    ];

    /// <summary>The node's port, from the command GET /ssh returned.</summary>
    public string Port => PortOption().Match(Command).Groups[1].Value;

    /// <summary>The command's options and the test's own, for clients other than ssh (scp, rsync -e ssh).</summary>
    public string[] ClientOptions() =>
    [
        "-F", "/dev/null", "-o", "StrictHostKeyChecking=accept-new", "-o", $"HostKeyAlias={InstanceId}", "-i", Identity, "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", $"UserKnownHostsFile={_knownHosts}", "-o", "ConnectTimeout=30",
    ];

    public static async Task<(int ExitCode, string Output, string Errors)> RunAsync(string program, IReadOnlyList<string> args)
    {
        using var process = Start([program, .. args]);
        return await WaitAsync(process);
    }

    private static async Task<(int ExitCode, string Output, string Errors)> WaitAsync(Process process)
    {
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        return (process.ExitCode, await output, await errors);
    }

    private static Process Start(IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo(args[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args.Skip(1))
            start.ArgumentList.Add(arg);
        start.Environment.Remove("SSH_AUTH_SOCK");
        return Process.Start(start)!;
    }

    /// <summary>The fingerprint of the key the client filed under the instance id, as ssh-keygen reads known_hosts.</summary>
    public string KnownHostFingerprint()
    {
        var start = new ProcessStartInfo("ssh-keygen", ["-l", "-F", InstanceId, "-f", _knownHosts]) { RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return Fingerprint().Match(output).Value;
    }

    [GeneratedRegex(@"-p (\d+) ")]
    private static partial Regex PortOption();

    [GeneratedRegex(@"SHA256:[A-Za-z0-9+/]+")]
    private static partial Regex Fingerprint();

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEuid();
}
