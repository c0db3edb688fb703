using OpenPool.Engine.Tests.Infrastructure;
using OpenPool.Engine.Tests.Jobs;

namespace OpenPool.Engine.Tests.Clusters;

/// <summary>An engine as root whose nodes take SSH logins, on ports of its own (no other test engine's range).</summary>
public sealed class SshIsolationEngineFixture : RealEngineFixture
{
    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Jobs:PythonVenv=false", "--Simulated:SshPorts=23850-23899",
    ];
}

/// <summary>
/// A login trying to get out of its node: at the engine's environment and configuration, at another
/// node of the same tenant (whose processes have the same host uid, so only the namespaces keep them
/// apart), at the host's own files, at privileges. What <see cref="SshLoginTests"/> checks already (the
/// data directory, the admin key, the database, signalling the engine, the host key, authorized_keys,
/// host paths on command lines) is not repeated here.
/// </summary>
public sealed class SshIsolationTests(SshIsolationEngineFixture fx) : IClassFixture<SshIsolationEngineFixture>, IDisposable
{
    private readonly SshKeygen _keys = new();
    private readonly TempDir _client = new();

    public void Dispose()
    {
        _keys.Dispose();
        _client.Dispose();
    }

    [Fact]
    public async Task A_login_sees_and_signals_only_its_own_processes_and_reaches_nothing_of_another_node_the_engine_or_the_host()
    {
        var first = await SshNode.StartAsync(fx, _keys, _client, "isolation@example.com");
        var second = await first.AnotherClusterAsync();
        var secret = "secret-" + Guid.NewGuid().ToString("N");
        Assert.Equal(0, (await first.SshAsync($"echo {secret} > ~/{secret}.txt")).ExitCode);
        var marker = $"{Random.Shared.Next(1000, 9999)}.75";
        using var open = first.StartSsh($"echo up; exec sleep {marker}");
        Assert.Equal("up", await open.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        var sleeper = await HostProcesses.WaitForOneAsync("sleep " + marker);
        try
        {
            // Same tenant, so the same host uid on both nodes: without a PID namespace per login the
            // second node's user could see and kill this process.
            var secondUid = await second.SshAsync("id -u");
            Assert.True(secondUid.ExitCode == 0, secondUid.Errors);
            Assert.Equal(HostProcesses.Uids(sleeper)![0].ToString(System.Globalization.CultureInfo.InvariantCulture), secondUid.Output.Trim());

            // Patterns are put together inside, so the probe's own command line does not hold them.
            var engineSecret = Environment.GetEnvironmentVariable("OPENPOOL_TEST_ENGINE_SECRET")!;
            var probe = await second.SshAsync(
                $"s={engineSecret[..8]}; printf '%s' \"${{s}}{engineSecret[8..]}\" > /tmp/engine-secret; " +
                $"m={marker[..2]}; printf '%s' \"sleep ${{m}}{marker[2..]}\" > /tmp/sleeper; " +
                $"f={secret[..9]}; " +
                "ls -A /home | sed 's/^/HOME-ENTRY /'; " +
                "find / \\( -path /proc -o -path /usr \\) -prune -o -name \"${f}*\" -print 2>/dev/null | sed 's/^/FOUND /'; " +
                "echo \"INIT $(cat /proc/1/comm)\"; " +
                "for p in /proc/[0-9]*; do echo \"PROC $(cat $p/comm 2>/dev/null)\"; done; " +
                "grep -l -a -F -f /tmp/sleeper /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/SEES-OTHER-LOGIN /'; " +
                "grep -l -a -F -f /tmp/engine-secret /proc/[0-9]*/environ 2>/dev/null | sed 's/^/ENGINE-SECRET-IN /'; " +
                "cat /proc/1/environ >/dev/null 2>&1 && echo READ-INIT-ENVIRON; " +
                "cat /etc/ssh/sshd_config >/dev/null 2>&1 && echo READ-SSHD-CONFIG; " +
                "for f in /etc/shadow /etc/sudoers /root /var/lib/openpool /sys/fs/cgroup/openpool; do test -e $f && echo \"EXISTS $f\"; done; " +
                "{ echo x >> /etc/passwd; } 2>/dev/null && echo WROTE-PASSWD; " +
                "touch /usr/openpool-probe 2>/dev/null && echo WROTE-USR; " +
                "grep -E '^(CapPrm|CapEff|CapAmb|NoNewPrivs):' /proc/self/status; " +
                "echo done-probing");
            Assert.True(probe.ExitCode == 0, probe.Errors);
            Assert.Contains("done-probing", probe.Output);
            var lines = probe.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

            Assert.Equal(["HOME-ENTRY ubuntu"], lines.Where(l => l.StartsWith("HOME-ENTRY ", StringComparison.Ordinal)));
            Assert.Contains("INIT bwrap", lines); // the login's own PID namespace, whose init is bubblewrap's
            // Only the login's own processes: bwrap's init, sshd, the shell and what the probe ran.
            var processes = lines.Where(l => l.StartsWith("PROC ", StringComparison.Ordinal)).Select(l => l["PROC ".Length..]).ToList();
            Assert.InRange(processes.Count, 3, 12);
            Assert.All(processes, name => Assert.Contains(name, new[] { "bwrap", "sshd", "bash", "cat" }));
            foreach (var capability in new[] { "CapPrm", "CapEff", "CapAmb" })
                Assert.Contains($"{capability}:\t0000000000000000", lines);
            Assert.Contains("NoNewPrivs:\t1", lines);
            foreach (var leak in new[] { "FOUND ", "SEES-OTHER-LOGIN ", "ENGINE-SECRET-IN ", "READ-INIT-ENVIRON", "READ-SSHD-CONFIG", "EXISTS ", "WROTE-PASSWD", "WROTE-USR" })
                Assert.DoesNotContain(leak, probe.Output);
            Assert.DoesNotContain(engineSecret, probe.Output);

            // kill -9 -1: every process the login may signal. That is its own (the shell and sshd's session
            // process included, so the client sees the connection drop), and nothing of the first node's.
            var killAll = await second.SshAsync("echo killing; kill -9 -1; echo survived");
            Assert.Equal(255, killAll.ExitCode);
            Assert.DoesNotContain("survived", killAll.Output);
            Assert.True(HostProcesses.Exists(sleeper), "kill -1 in one node's login killed a process of another node's");
            Assert.False(open.HasExited, "kill -1 in one node's login ended another node's login");
            var still = await first.SshAsync($"cat ~/{secret}.txt");
            Assert.Equal(secret + "\n", still.Output);
        }
        finally
        {
            HostProcesses.Kill(sleeper);
        }
    }
}
