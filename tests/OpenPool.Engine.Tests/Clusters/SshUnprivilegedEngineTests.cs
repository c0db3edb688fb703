using System.Globalization;
using OpenPool.Engine.Tests.Infrastructure;
using OpenPool.Engine.Tests.Jobs;

namespace OpenPool.Engine.Tests.Clusters;

/// <summary>
/// An engine that is not root (the <see cref="UnprivilegedUser"/> account, owning its data directory),
/// whose nodes take SSH logins on ports of its own: bwrap makes a user namespace, and sshd runs as
/// the engine's uid, which is uid 1000 (ubuntu) inside.
/// </summary>
public sealed class UnprivilegedSshEngineFixture : RealEngineFixture
{
    protected override int? EngineUid => UnprivilegedUser.Uid;

    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Jobs:PythonVenv=false", "--Simulated:SshPorts=23900-23999",
    ];
}

public sealed class SshUnprivilegedEngineTests(UnprivilegedSshEngineFixture fx) : IClassFixture<UnprivilegedSshEngineFixture>, IDisposable
{
    private readonly SshKeygen _keys = new();
    private readonly TempDir _client = new();
    private readonly TempDir _files = new();

    public void Dispose()
    {
        _keys.Dispose();
        _client.Dispose();
        _files.Dispose();
    }

    [Fact]
    public async Task A_login_runs_as_ubuntu_uid_1000_inside_and_every_process_of_it_is_the_engines_uid_on_the_host()
    {
        Assert.NotEqual(0, UnprivilegedUser.Uid);
        Assert.Equal(UnprivilegedUser.Uid, HostProcesses.Uids(fx.Engine.Pid)![1]); // the engine itself is not root
        var node = await SshNode.StartAsync(fx, _keys, _client, "unprivileged-exec@example.com");

        var exec = await node.SshAsync("id -un; id -u; hostname; echo $HOME; echo err-line >&2; exit 7");
        Assert.Equal(7, exec.ExitCode);
        Assert.Equal(["ubuntu", "1000", node.InstanceId, "/home/ubuntu"], exec.Output.TrimEnd('\n').Split('\n'));
        Assert.Contains("err-line", exec.Errors);
        Assert.Equal(node.ReportedFingerprint, node.KnownHostFingerprint());

        // On the host the whole login (bwrap's init, sshd, the shell's command) is the engine's uid: nothing is root.
        var marker = $"{Random.Shared.Next(1000, 9999)}.5";
        using var open = node.StartSsh($"echo up; exec sleep {marker}");
        Assert.Equal("up", await open.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        var sleeper = await HostProcesses.WaitForOneAsync("sleep " + marker);
        try
        {
            var login = HostProcesses.InPidNamespaceOf(sleeper);
            Assert.NotEqual(HostProcesses.PidNamespace(fx.Engine.Pid), HostProcesses.PidNamespace(sleeper));
            Assert.Contains(login, pid => HostProcesses.Name(pid) == "sshd");
            Assert.Contains(login, pid => HostProcesses.Name(pid) == "bwrap");
            foreach (var pid in login)
                if (HostProcesses.Uids(pid) is { } uids) // null: ended meanwhile
                    Assert.True(uids.All(uid => uid == UnprivilegedUser.Uid), $"{HostProcesses.CommandLine(pid)} runs as {string.Join(',', uids)}");
        }
        finally
        {
            HostProcesses.Kill(sleeper);
        }
    }

    [Fact]
    public async Task An_interactive_login_gets_a_pty_where_ctrl_c_works_and_exit_passes_its_code_back()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "unprivileged-pty@example.com");
        var forced = await node.SshAsync("tty", extraOptions: ["-tt"]);
        Assert.True(forced.ExitCode == 0, forced.Errors);
        Assert.StartsWith("/dev/pts/", forced.Output.Trim());

        using var terminal = await Terminal.LoginAsync(node, _client, rows: 30, columns: 100);
        terminal.Type("echo ID-$(id -un)-$(id -u)-$(tty | cut -c1-9)-$(stty size | tr ' ' x)\r");
        await terminal.WaitForAsync("ID-ubuntu-1000-/dev/pts/-30x100");
        terminal.Type("sh -c 'echo SLEEPING-$((6*7)); exec sleep 1000'\r");
        await terminal.WaitForAsync("SLEEPING-42");
        terminal.Type("\x03");
        await terminal.WaitForAsync("$ ");
        terminal.Type("echo RC-$?\r");
        await terminal.WaitForAsync("RC-130");
        terminal.Type("exit 4\r");
        Assert.Equal(4, await terminal.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Scp_copies_to_and_from_the_node_byte_for_byte()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "unprivileged-scp@example.com");
        var local = Path.Combine(_files.Path, "blob.bin");
        var blob = new byte[2 * 1024 * 1024 + 3];
        Random.Shared.NextBytes(blob);
        await File.WriteAllBytesAsync(local, blob);
        var destination = "ubuntu@127.0.0.1";

        var up = await SshNode.RunAsync("scp", ["-q", "-P", node.Port, .. node.ClientOptions(), local, destination + ":blob.scp"]);
        Assert.True(up.ExitCode == 0, up.Errors);
        var back = Path.Combine(_files.Path, "blob.back");
        var down = await SshNode.RunAsync("scp", ["-q", "-P", node.Port, .. node.ClientOptions(), destination + ":blob.scp", back]);
        Assert.True(down.ExitCode == 0, down.Errors);
        Assert.Equal(blob, await File.ReadAllBytesAsync(back));

        // Where the node's jobs see it: the node's home, the engine's uid on the host.
        var onHost = Path.Combine(fx.DataDir, "sim", "nodes", node.InstanceId, "home", "blob.scp");
        Assert.Equal(blob, await File.ReadAllBytesAsync(onHost));
        Assert.Equal(UnprivilegedUser.Uid.ToString(CultureInfo.InvariantCulture), Stat("%u", onHost));
    }

    [Fact]
    public async Task A_key_that_is_not_the_clusters_is_refused()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "unprivileged-keys@example.com");
        var foreign = _keys.NewKey("ed25519")[..^".pub".Length];
        var refused = await node.SshAsync("echo should-not-run", identity: foreign);
        Assert.Equal(255, refused.ExitCode);
        Assert.Contains("Permission denied (publickey)", refused.Errors);
        Assert.DoesNotContain("should-not-run", refused.Output);
        // The cluster's own key still gets in: the refusal was the key's.
        Assert.Equal(0, (await node.SshAsync("true")).ExitCode);
    }

    [Fact]
    public async Task The_login_shares_the_engines_uid_yet_reaches_none_of_its_files_processes_or_environment()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "unprivileged-escape@example.com");
        // Everything of the engine's would be the login's to read and signal if it could name it:
        // only the mount and PID namespaces keep them apart. Patterns are put together inside, so the
        // probe's own command line does not hold them.
        var engineSecret = Environment.GetEnvironmentVariable("OPENPOOL_TEST_ENGINE_SECRET")!;
        var (head, tail) = (fx.DataDir[..8], fx.DataDir[8..]);
        var probe = await node.SshAsync(
            $"d={head}; test -e \"${{d}}{tail}\" && echo SEES-DATA-DIR; " +
            $"s={engineSecret[..8]}; printf '%s' \"${{s}}{engineSecret[8..]}\" > /tmp/engine-secret; " +
            "grep -l -a -F -f /tmp/engine-secret /proc/[0-9]*/environ 2>/dev/null | sed 's/^/ENGINE-SECRET-IN /'; " +
            "find / \\( -path /proc -o -path /usr \\) -prune -o \\( -name admin.key -o -name 'openpool.db*' -o -name 'ssh-host-keys.*' -o -name sshd.log \\) -print 2>/dev/null | sed 's/^/FOUND /'; " +
            "for p in /proc/[0-9]*; do echo \"PROC $(cat $p/comm 2>/dev/null)\"; done; " +
            "awk '{ print \"UIDMAP\", $1, $2, $3 }' /proc/self/uid_map; " +
            "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status; echo done-probing");
        Assert.True(probe.ExitCode == 0, probe.Errors);
        Assert.Contains("done-probing", probe.Output);
        var lines = probe.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var leak in new[] { "SEES-DATA-DIR", "ENGINE-SECRET-IN ", "FOUND " })
            Assert.DoesNotContain(leak, probe.Output);
        var processes = lines.Where(l => l.StartsWith("PROC ", StringComparison.Ordinal)).Select(l => l["PROC ".Length..]).ToList();
        Assert.InRange(processes.Count, 3, 12);
        Assert.All(processes, name => Assert.Contains(name, new[] { "bwrap", "sshd", "bash", "cat" }));
        // One uid mapped, ubuntu's 1000 (the engine's uid on the host, seen through bwrap's intermediate
        // namespace): no other, root above all, exists inside.
        Assert.Matches(@"^UIDMAP 1000 \d+ 1$", Assert.Single(lines, l => l.StartsWith("UIDMAP", StringComparison.Ordinal)));
        Assert.Contains("CapEff:\t0000000000000000", lines);
        Assert.Contains("NoNewPrivs:\t1", lines);
    }

    private static string Stat(string format, string path)
    {
        var start = new System.Diagnostics.ProcessStartInfo("stat", ["-c", format, path]) { RedirectStandardOutput = true, UseShellExecute = false };
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output.Trim();
    }
}
