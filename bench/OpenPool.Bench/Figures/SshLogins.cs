using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Bench.Figures;

/// <summary>
/// SSH into simulated nodes (issue 16, decision 0003): what a <c>tp ssh i-… true</c> costs against a
/// plain sshd on loopback, and what 10,000 idle nodes that take logins cost the engine.
/// </summary>
internal static class SshLogins
{
    private const string Client = "/usr/bin/ssh";
    private const int Runs = 50;
    // Not counted: the node's first login makes its files, and each target's first one files its host key.
    private const int WarmUp = 3;
    private const int IdleClusters = 10_000;
    // Ranges of these engines' own, below Linux's ephemeral ports (32768–60999) and apart from the
    // default 20000-29999 and the tests' 23000-23599, which engines of other runs on this host may hold.
    // 11,000 ports for 10,000 nodes: a port another program holds is skipped, and the figure checks
    // that every node listens.
    private const string ExecPorts = "24900-24999";
    private const int IdleFirstPort = 9000;
    private const int IdleLastPort = 19999;

    /// <summary>
    /// The same sizes in quick runs: 50 logins per target and 10,000 claims take about a minute
    /// together here, and the marks are those of these sizes.
    /// </summary>
    public static async Task RunAsync(Report report)
    {
        RequireRootAndOpenSsh();
        using var keys = new SshKeygen();
        var publicKey = keys.NewKey("ed25519");
        var identity = publicKey[..^".pub".Length];
        var publicLine = (await File.ReadAllTextAsync(publicKey)).Trim();
        using var clientFiles = new TempDir();
        await ExecVsLoopbackAsync(report, identity, publicLine, clientFiles.Path);
        await IdleNodesAsync(report, identity, publicLine, clientFiles.Path);
    }

    /// <summary>
    /// The command <c>GET /ssh</c> returns, split as the official CLI splits it and run with the user's
    /// options and the remote command appended, against the same client on the same options logging in
    /// to a plain <c>sshd -D</c>. Runs alternate ABBA so both see the same moments of a noisy machine.
    /// </summary>
    private static async Task ExecVsLoopbackAsync(Report report, string identity, string publicLine, string clientDir)
    {
        await using var engine = await BenchEngine.StartAsync(null,
            "--Simulated:ProvisionSeconds=0", $"--Simulated:SshPorts={ExecPorts}", "--Billing:InitialBalanceUsd=1000000");
        using var api = engine.Client(connections: 2);
        var (instance, request) = (await CreateClustersAsync(api, publicLine, 1, 1))[0];
        await Http.WaitCompletedAsync(api, request);
        var node = new Target("node", await SshCommandAsync(api, instance), identity, Path.Combine(clientDir, "known_hosts-node"));

        using var sshd = await LoopbackSshd.StartAsync(publicLine);
        // The same shape as the node's command, aimed at the plain daemon and its user.
        var loopback = new Target("loopback sshd",
            [Client, "-p", sshd.Port.ToString(CultureInfo.InvariantCulture), "-o", "StrictHostKeyChecking=accept-new",
             "-o", "HostKeyAlias=openpool-bench-loopback", $"{LoopbackSshd.User}@127.0.0.1"],
            identity, Path.Combine(clientDir, "known_hosts-loopback"), () => sshd.Log);

        var load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        for (var i = 0; i < WarmUp + Runs; i++)
        {
            Target[] order = i % 4 is 0 or 3 ? [node, loopback] : [loopback, node];
            foreach (var target in order)
            {
                var ms = await target.TrueAsync();
                if (i >= WarmUp)
                    target.Milliseconds.Add(ms);
                else
                    target.WarmUpMilliseconds.Add(ms);
            }
        }
        load += " → " + File.ReadAllText("/proc/loadavg").Split(' ')[0];

        var nodeP50 = Median(node.Milliseconds);
        var loopbackP50 = Median(loopback.Milliseconds);
        var options = string.Join(' ', Target.UserOptions("<key>", "<file>"));
        report.Add("ssh_exec_p50_ms", nodeP50,
            $"`{string.Join(' ', node.Command)} {options}` (the command GET /ssh returned, split as shlex does, then the user's options and `true`), " +
            $"{Runs} runs after {WarmUp} warm-up, interleaved ABBA with the loopback baseline, process start to exit: {node.Describe()}; " +
            $"first login (makes the node's files) {node.WarmUpMilliseconds[0]:0} ms; load average {load}");
        report.Add("ssh_loopback_baseline_p50_ms", loopbackP50,
            $"the same client and options against a plain `sshd -D` on 127.0.0.1 ({LoopbackSshd.Sshd}, its own configuration with the nodes' authentication choices, " +
            $"ed25519 host key, no PAM), user {LoopbackSshd.User}, the same runs: {loopback.Describe()}");
        report.Add("ssh_exec_vs_loopback_ratio", nodeP50 / loopbackP50,
            $"p50 into the node {nodeP50:0.0} ms ÷ p50 into the loopback sshd {loopbackP50:0.0} ms, {Runs} runs each in one interleaved sequence");
    }

    /// <summary>
    /// One engine with SSH on and 10,000 single-node clusters that stay up, each listening for logins
    /// and none logged in to; then the engine as it is after a few idle seconds.
    /// </summary>
    private static async Task IdleNodesAsync(Report report, string identity, string publicLine, string clientDir)
    {
        var ports = IdleLastPort - IdleFirstPort + 1;
        await using var engine = await BenchEngine.StartAsync(null,
            "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", $"--Simulated:SshPorts={IdleFirstPort}-{IdleLastPort}",
            "--Billing:InitialBalanceUsd=100000000");
        // A listening socket per node is a descriptor per node. .NET raises the soft limit to the hard
        // one at start; bench/run.sh raises the hard one where it may.
        var descriptors = OpenFilesLimit(engine.Pid);
        if (descriptors < IdleClusters + 1024)
            throw new InvalidOperationException(
                $"the engine may open {descriptors} files, too few for {IdleClusters:N0} listening nodes: raise the hard RLIMIT_NOFILE (ulimit -Hn) before the run");
        var startRss = engine.ResidentMegabytes();

        using var api = engine.Client(connections: 32);
        var clock = Stopwatch.StartNew();
        var instances = await CreateClustersAsync(api, publicLine, IdleClusters, 32);
        if (!await engine.AllRequestsFinishedAsync(TimeSpan.FromMinutes(10)))
            throw new TimeoutException("the claims did not finish within 10 minutes");
        var claimsTook = clock.Elapsed;
        var completed = await engine.ScalarAsync("SELECT COUNT(*) FROM requests WHERE status = 'COMPLETED'");
        var withPorts = await engine.ScalarAsync("SELECT COUNT(*) FROM sim_nodes WHERE state = 'running' AND ssh_port IS NOT NULL");
        if (completed != IdleClusters || withPorts != IdleClusters)
            throw new InvalidOperationException($"{IdleClusters} claims: {completed} COMPLETED, {withPorts} running nodes with an SSH port");
        // A node binds its port once its provision is done: wait for the last few.
        if (!await Load.UntilAsync(() => Task.FromResult(ListeningPorts(engine.Pid, IdleFirstPort, IdleLastPort) >= IdleClusters), TimeSpan.FromSeconds(60)))
            throw new TimeoutException($"{ListeningPorts(engine.Pid, IdleFirstPort, IdleLastPort)} of {IdleClusters} nodes listening after 60 s");

        await Task.Delay(TimeSpan.FromSeconds(5));
        var rss = engine.ResidentMegabytes();
        var anon = engine.ResidentMegabytes("RssAnon");
        var file = engine.ResidentMegabytes("RssFile");
        var shared = engine.ResidentMegabytes("RssShmem");
        var peak = engine.ResidentMegabytes("VmHWM");
        var threads = StatusField(engine.Pid, "Threads");
        var processes = Descendants(engine.Pid);
        var listening = ListeningPorts(engine.Pid, IdleFirstPort, IdleLastPort);
        var fds = Directory.GetFileSystemEntries($"/proc/{engine.Pid}/fd").Length;

        // Not part of the figures: the nodes counted are ones a user can log in to.
        var sample = instances[Random.Shared.Next(instances.Count)].Instance;
        var login = new Target("idle node", await SshCommandAsync(api, sample), identity, Path.Combine(clientDir, "known_hosts-idle"));
        var loginMs = await login.TrueAsync();

        report.Add("engine_rss_mb_10k_ssh_clusters", rss,
            $"VmRSS of a SQLite engine with SSH on ({ports:N0}-port range) after {IdleClusters:N0} single-node clusters created over HTTP (32 clients, " +
            $"each with a public key, {claimsTook.TotalSeconds:0.0} s to all COMPLETED) and 5 s idle, no login yet: RssAnon {anon:0} MB, RssFile {file:0} MB, RssShmem {shared:0} MB; " +
            $"{startRss:0} MB at start, peak {peak:0} MB; {threads} threads, {fds:N0} open descriptors (limit {descriptors:N0}); " +
            $"afterwards `tp ssh` into one of them ({sample}) ran `true` in {loginMs:0} ms");
        report.Add("engine_processes_10k_idle", processes,
            $"the engine's descendant processes (from /proc, by parent pid) at that moment: an idle node runs none");
        report.Add("engine_ssh_listeners_10k_idle", listening,
            $"TCP sockets of the engine in LISTEN on 127.0.0.1:{IdleFirstPort}-{IdleLastPort} (/proc/{{pid}}/net/tcp matched against its descriptors): one per running node");
    }

    /// <summary>Creates single-node clusters logged in to with the key; returns each one's instance and claim request.</summary>
    private static async Task<List<(string Instance, string Request)>> CreateClustersAsync(HttpClient api, string publicLine, int count, int concurrency)
    {
        var created = new (string, string)[count];
        await Load.RunAsync(count, concurrency, async i =>
        {
            var answer = await api.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100", public_keys = new[] { publicLine }, save_keys = false })
                .ExpectAsync(HttpStatusCode.Accepted, "create");
            created[i] = (answer.GetProperty("instance_ids")[0].GetString()!, answer.GetProperty("request_id").GetString()!);
        });
        return [.. created];
    }

    /// <summary>The command <c>GET /ssh</c> answers, as an argument list: the program replaced by the stock client.</summary>
    private static async Task<string[]> SshCommandAsync(HttpClient api, string instance)
    {
        var answer = await api.GetAsync($"/ssh/{instance}?system=Linux").ExpectAsync(HttpStatusCode.OK, "GET /ssh");
        var command = answer.GetProperty("command").GetString()!;
        // shlex.split, as tp does; a command without quotes or backslashes is split on whitespace
        // alone, and one with them is refused rather than split by a guess.
        if (command.IndexOfAny(['\'', '"', '\\']) >= 0)
            throw new InvalidOperationException($"GET /ssh returned a command with quoting the harness does not split: {command}");
        var args = command.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (args is not ["ssh", ..])
            throw new InvalidOperationException($"GET /ssh returned a command that does not run ssh: {command}");
        return [Client, .. args[1..]];
    }

    /// <summary>One place logged in to: the command, the client's files for it, and its timings.</summary>
    private sealed class Target(string name, string[] command, string identity, string knownHosts, Func<string>? serverLog = null)
    {
        public string[] Command { get; } = command;
        public List<double> Milliseconds { get; } = [];
        public List<double> WarmUpMilliseconds { get; } = [];

        /// <summary>
        /// What a user's <c>tp ssh i-… -i key …</c> appends, identical for both targets: no user or
        /// system client configuration and no agent (neither is the engine's to measure), this key
        /// only, no prompt, a known_hosts of the target's own.
        /// </summary>
        public static string[] UserOptions(string identity, string knownHosts) =>
            ["-F", "/dev/null", "-o", "BatchMode=yes", "-i", identity, "-o", "IdentitiesOnly=yes", "-o", $"UserKnownHostsFile={knownHosts}"];

        /// <summary>Runs <c>true</c> there; the milliseconds from starting the client to its exit, which must be 0.</summary>
        public async Task<double> TrueAsync()
        {
            var start = new ProcessStartInfo(Command[0])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in Command.Skip(1).Concat(UserOptions(identity, knownHosts)).Append("true"))
                start.ArgumentList.Add(arg);
            start.Environment.Remove("SSH_AUTH_SOCK");
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(start)!;
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var ms = clock.Elapsed.TotalMilliseconds;
            if (process.ExitCode != 0)
                throw new InvalidOperationException(
                    $"ssh into the {name} exited with {process.ExitCode}: {await errors}{await output}{(serverLog is null ? "" : "\nsshd: " + serverLog())}");
            return ms;
        }

        public string Describe()
        {
            var sorted = Milliseconds.Order().ToList();
            return FormattableString.Invariant(
                $"p50 {Median(Milliseconds):0.0} ms, p90 {Load.Percentile(Milliseconds, 90):0.0}, min {sorted[0]:0.0}, max {sorted[^1]:0.0}");
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>The soft RLIMIT_NOFILE the process runs with, from /proc/PID/limits.</summary>
    private static long OpenFilesLimit(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var soft = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        return soft == "unlimited" ? long.MaxValue : long.Parse(soft, CultureInfo.InvariantCulture);
    }

    private static string StatusField(int pid, string field) =>
        File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim();

    /// <summary>Processes below <paramref name="pid"/> (children, theirs, …), from every process's parent in /proc.</summary>
    private static int Descendants(int pid)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var child))
                continue;
            try
            {
                // Field 4 is the parent; the command name before it is in parentheses and may hold spaces.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                parents[child] = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Ended while being read.
            }
        }
        return parents.Keys.Count(p => IsBelow(p));

        bool IsBelow(int process)
        {
            for (var hops = 0; hops < 64 && parents.TryGetValue(process, out var parent); hops++, process = parent)
            {
                if (parent == pid)
                    return true;
            }
            return false;
        }
    }

    /// <summary>The process's TCP sockets in LISTEN on a port in the range (IPv4 and IPv6).</summary>
    private static int ListeningPorts(int pid, int first, int last)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal))
                    inodes.Add(target["socket:[".Length..^1]);
            }
            catch (IOException)
            {
                // Closed while being read.
            }
        }
        var count = 0;
        foreach (var table in new[] { "tcp", "tcp6" })
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/net/{table}").Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var port = int.Parse(columns[1][(columns[1].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (columns[3] == "0A" && port >= first && port <= last && inodes.Contains(columns[9]))
                    count++;
            }
        }
        return count;
    }

    /// <summary>These figures observe a real sshd in a root-made sandbox: without either they fail and say so.</summary>
    private static void RequireRootAndOpenSsh()
    {
        if (Environment.UserName != "root")
            throw new InvalidOperationException("the ssh figures need root: the engine makes the nodes' sandboxes and the baseline sshd changes users with root's rights");
        foreach (var program in new[] { LoopbackSshd.Sshd, Client, "/usr/bin/ssh-keygen", "/usr/bin/bwrap" })
        {
            if (!File.Exists(program))
                throw new InvalidOperationException($"the ssh figures need {program}: apt-get install openssh-server openssh-client bubblewrap");
        }
    }
}
