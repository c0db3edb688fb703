using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Dapper;
using Microsoft.Extensions.FileSystemGlobbing;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// Jobs on simulated nodes really run, each in its node's sandbox (<see cref="NodeSandbox"/>). On the
/// host a node is <c>sim/nodes/&lt;instance&gt;/</c>: <c>home/</c> is the node's home, owned by the
/// node's user, where a job works in <c>jobs/&lt;job&gt;/</c>; <c>jobs/&lt;job&gt;/</c> beside it is the
/// engine's own record of the job (archive, pid, exit code, output), which no node process can see
/// or change. A job's processes run in a session of their own (setsid) with their output going to a
/// file, so they keep running if the engine dies and a restarted engine finds them by their pid and
/// exit-code files.
/// </summary>
internal sealed partial class SimulatedCloud
{
    private const int SigTerm = 15;
    private const int SigKill = 9;
    private const int MaxWalkEntries = 200_000;
    private static readonly TimeSpan WalkBudget = TimeSpan.FromSeconds(10);

    // Which engine process claimed a job's start: a claim by an engine that has since died is a start
    // that a crash interrupted, and is made again from the intact archive.
    private readonly string _instance = Guid.NewGuid().ToString("N");
    private readonly ConcurrentDictionary<string, Lazy<Task>> _starting = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _uploading = new(StringComparer.Ordinal);

    private string NodesRoot => Path.Combine(engine.DataDir, "sim", "nodes");

    private string NodeRoot(string instanceId) => Path.Combine(NodesRoot, instanceId);

    public string? JobConfinementProblem => sandbox.Problem;

    /// <summary>The engine's record of a job, and where the job works (relative to the node's home).</summary>
    private sealed record JobPaths(string Root, string NodeRoot, string WorkInHome)
    {
        public string Archive => Path.Combine(Root, "project.tar.gz");
        public string Output => Path.Combine(Root, "output.log");
        public string ExitCode => Path.Combine(Root, "exit_code");
        public string Pid => Path.Combine(Root, "pid");
        public string Launched => Path.Combine(Root, "launched");
        public string Breaks => Path.Combine(Root, "breaks");
        /// <summary>Why this engine's start of the job failed for good (the message for its owner).</summary>
        public string StartFailure => Path.Combine(Root, "start_failure");
        /// <summary>Shown read-only inside the sandbox: the run script and the commands.</summary>
        public string Scripts => Path.Combine(Root, "sandbox");
        public string Home => Path.Combine(NodeRoot, "home");
        public string VenvInHome => ".venvs/" + Path.GetFileName(Root);
    }

    private JobPaths PathsOf(JobRef job) =>
        new(Path.Combine(NodeRoot(job.InstanceId), "jobs", job.JobId), NodeRoot(job.InstanceId), "jobs/" + job.JobId);

    /// <summary>Uploads a crash cut short are never resumed; their partial files go at start.</summary>
    public void RemoveInterruptedUploads()
    {
        if (!Directory.Exists(NodesRoot))
            return;
        foreach (var node in Directory.EnumerateDirectories(NodesRoot))
        {
            var jobs = Path.Combine(node, "jobs");
            if (!Directory.Exists(jobs))
                continue;
            foreach (var part in Directory.EnumerateFiles(jobs, "project.tar.gz.part", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 1 }))
                File.Delete(part);
        }
    }

    public async Task<long> ReceiveProjectAsync(JobRef job, Stream archive, long maxBytes, CancellationToken ct)
    {
        if (!_uploading.TryAdd(job.JobId, 0))
            throw new JobUploadConflictException();
        try
        {
            var paths = PathsOf(job);
            if (File.Exists(paths.Archive))
                throw new JobUploadConflictException();
            Directory.CreateDirectory(paths.Root);
            var partial = paths.Archive + ".part";
            long received = 0;
            try
            {
                await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
                {
                    var buffer = new byte[81920];
                    int read;
                    while ((read = await archive.ReadAsync(buffer, ct)) > 0)
                    {
                        received += read;
                        if (received > maxBytes)
                            throw new JobUploadTooLargeException(maxBytes);
                        await file.WriteAsync(buffer.AsMemory(0, read), ct);
                    }
                    file.Flush(flushToDisk: true);
                }
                File.Move(partial, paths.Archive);
            }
            catch
            {
                File.Delete(partial); // a refused, cut or canceled upload leaves nothing behind
                throw;
            }
            return received;
        }
        finally
        {
            _uploading.TryRemove(job.JobId, out _);
        }
    }

    public async Task StartJobAsync(JobLaunch launch, CancellationToken ct)
    {
        // One start at a time per job in this engine: the push handler and the monitor may race, and
        // the one that comes second waits for the first and hears how it went.
        var attempt = new Lazy<Task>(() => StartOnceAsync(launch, ct));
        var shared = _starting.GetOrAdd(launch.Job.JobId, attempt);
        try
        {
            await shared.Value;
        }
        finally
        {
            if (ReferenceEquals(shared, attempt))
                _starting.TryRemove(KeyValuePair.Create(launch.Job.JobId, attempt));
        }
    }

    private async Task StartOnceAsync(JobLaunch launch, CancellationToken ct)
    {
        var paths = PathsOf(launch.Job);
        if (File.Exists(paths.Pid))
            return;
        if (File.Exists(paths.Launched) && (await File.ReadAllTextAsync(paths.Launched, ct)).Trim() == _instance)
        {
            // This engine tried already: it runs, or it failed for good, and every caller hears so.
            if (File.Exists(paths.StartFailure))
                throw new JobStartException(await File.ReadAllTextAsync(paths.StartFailure, ct));
            return;
        }
        if (!File.Exists(paths.Archive))
            throw new JobStartException("The project upload is missing; push the job again.");
        await File.WriteAllTextAsync(paths.Launched, _instance, ct);

        var node = NodeOf(launch, paths);
        await logins.WriteClusterFilesAsync(node.InstanceId, node.Root, node.Uid, ct);
        var workOnNode = sandbox.PathOnNode(node, paths.WorkInHome);
        // Whatever an interrupted start left goes first, removed as the node's user.
        await sandbox.RunAsync(node, ["rm", "-rf", "--", workOnNode, sandbox.PathOnNode(node, paths.VenvInHome)], null, ct);
        File.Delete(paths.Output);
        File.Delete(paths.Breaks);
        File.Delete(paths.StartFailure);
        IReadOnlyList<string> notes;
        try
        {
            notes = await UnpackAsync(launch, paths, node, workOnNode, ct);
        }
        catch (JobStartException ex)
        {
            await File.WriteAllTextAsync(paths.StartFailure, ex.Message, CancellationToken.None);
            throw;
        }
        var preface = new StringBuilder();
        foreach (var note in notes.Take(50))
            preface.Append("[openpool] ").Append(note).Append('\n');
        if (notes.Count > 50)
            preface.Append(CultureInfo.InvariantCulture, $"[openpool] ...and {notes.Count - 50} more entries skipped\n");
        await File.WriteAllTextAsync(paths.Output, preface.ToString(), ct);

        await WriteScriptsAsync(launch, paths, node, workOnNode, ct);
        var launcher = NodeSandbox.StartInfo(["setsid", NodeSandbox.Shell, Path.Combine(paths.Root, "launch.sh")], paths.Root);
        using (Process.Start(launcher) ?? throw new InvalidOperationException("could not start the job's launcher"))
        {
        }
        // The launcher writes its pid first; wait for it so that a crash from here on finds a started job.
        for (var i = 0; i < 200 && !File.Exists(paths.Pid); i++)
            await Task.Delay(25, ct);
    }

    private NodeContext NodeOf(JobLaunch launch, JobPaths paths)
    {
        var uid = sandbox.UidOf(launch.Tenant);
        NodeSandbox.PrepareNode(launch.Job.InstanceId, paths.NodeRoot, uid);
        var volumes = launch.Volumes.Select(volume => nodeFiles.VolumeFor(volume.VolumeId, volume.MountPath, uid)).ToList();
        Directory.CreateDirectory(paths.Scripts);
        return new NodeContext(launch.Job.InstanceId, paths.NodeRoot, uid, paths.Scripts, volumes);
    }

    /// <summary>Unpacks the archive into the job's directory with tar run on the node, fed only what <see cref="ProjectArchive"/> lets through.</summary>
    private async Task<IReadOnlyList<string>> UnpackAsync(JobLaunch launch, JobPaths paths, NodeContext node, string workOnNode, CancellationToken ct)
    {
        IReadOnlyList<string> notes = [];
        JobStartException? refused = null;
        int exitCode;
        string errors;
        try
        {
            (exitCode, errors) = await sandbox.RunAsync(node,
                ["/bin/sh", "-c", "umask 022 && mkdir -p -- \"$1\" && exec tar -x -f - -C \"$1\" --no-same-owner --no-same-permissions", "unpack", workOnNode],
                async stdin =>
                {
                    await using var archive = File.OpenRead(paths.Archive);
                    try
                    {
                        notes = await ProjectArchive.SanitizeAsync(archive, stdin, launch.IsIgnored, jobOptions.Value.MaxUnpackedBytes, ct);
                    }
                    catch (IOException)
                    {
                        // tar stopped reading; its own error below says why
                    }
                    catch (JobStartException ex)
                    {
                        refused = ex;
                    }
                }, ct);
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception)
        {
            throw new JobStartException("The node could not unpack the project: " + ex.Message);
        }
        if (refused is not null || exitCode != 0)
        {
            await sandbox.RunAsync(node, ["rm", "-rf", "--", workOnNode], null, CancellationToken.None);
            var tarError = errors.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.Contains("Exiting with failure", StringComparison.Ordinal));
            throw refused ?? new JobStartException("The uploaded project could not be unpacked" + (tarError is null ? "." : ": " + tarError));
        }
        return notes;
    }

    private async Task WriteScriptsAsync(JobLaunch launch, JobPaths paths, NodeContext node, string workOnNode, CancellationToken ct)
    {
        var shell = NodeSandbox.Shell;
        var commands = Path.Combine(paths.Scripts, "commands");
        Directory.CreateDirectory(commands);
        for (var i = 0; i < launch.Commands.Count; i++)
            await File.WriteAllTextAsync(Path.Combine(commands, $"{i:D4}.sh"), launch.Commands[i] + "\n", ct);
        var scriptsOnNode = sandbox.Unconfined ? paths.Scripts : NodeSandbox.ScriptsMount;
        var venv = sandbox.PathOnNode(node, paths.VenvInHome);

        var run = new StringBuilder();
        run.Append("#!").Append(shell).Append('\n');
        run.Append(CultureInfo.InvariantCulture, $"# Written by OpenPool for job {launch.Job.JobId}: its commands in order, stopping at the first that fails.\n");
        run.Append("exec 3<&-\n"); // the launcher's argument file is the engine's, not the job's
        run.Append(CultureInfo.InvariantCulture, $"cd {NodeSandbox.Quote(workOnNode)} || exit 1\n");
        if (launch.PythonVenv)
        {
            // A fresh venv per job, as TensorPool does. Borrowing the base interpreter's pip through
            // system site-packages costs ~0.1 s where ensurepip costs seconds; the pip shim makes
            // `pip install` land in the venv, not the base.
            run.Append("if command -v python3 >/dev/null 2>&1; then\n");
            run.Append(CultureInfo.InvariantCulture, $"  VENV={NodeSandbox.Quote(venv)}\n");
            run.Append("  if python3 -m venv --without-pip --system-site-packages \"$VENV\" >/dev/null 2>&1; then\n");
            run.Append("    printf '#!/bin/sh\\nexec \"%s/bin/python\" -m pip \"$@\"\\n' \"$VENV\" > \"$VENV/bin/pip\"\n");
            run.Append("    chmod +x \"$VENV/bin/pip\"; cp \"$VENV/bin/pip\" \"$VENV/bin/pip3\"\n");
            run.Append("    . \"$VENV/bin/activate\"\n");
            run.Append("  else echo \"[openpool] python3 -m venv failed; running without a virtual environment\"; fi\n");
            run.Append("fi\n");
        }
        run.Append("code=0\n");
        run.Append(CultureInfo.InvariantCulture, $"for cmd in {NodeSandbox.Quote(scriptsOnNode)}/commands/*.sh; do\n");
        run.Append(CultureInfo.InvariantCulture, $"  {shell} \"$cmd\" < /dev/null\n");
        run.Append("  code=$?\n");
        run.Append("  [ \"$code\" -eq 0 ] || break\n");
        run.Append("done\n");
        run.Append("exit \"$code\"\n");
        await File.WriteAllTextAsync(Path.Combine(paths.Scripts, "run.sh"), run.ToString(), ct);
        // The node's user reads these through its sandbox; the rest of the job's record stays the engine's.
        NodeSandbox.SetMode(paths.Scripts, NodeSandbox.ReadableDirectory);
        NodeSandbox.SetMode(commands, NodeSandbox.ReadableDirectory);
        foreach (var script in Directory.EnumerateFiles(paths.Scripts, "*.sh", SearchOption.AllDirectories))
            NodeSandbox.SetMode(script, NodeSandbox.ReadableFile);

        var environment = sandbox.NodeEnvironment(node, workOnNode);
        environment["OPENPOOL_JOB_ID"] = launch.Job.JobId;
        var runOnNode = scriptsOnNode + "/run.sh";
        // The launcher runs in bash where there is one: dash's ulimit has no -u.
        var launcherScript = new StringBuilder($"#!{shell}\n");
        launcherScript.Append(CultureInfo.InvariantCulture, $"# Written by OpenPool: starts job {launch.Job.JobId} on its node and records how it ended.\n");
        // Nothing of the engine's stdio stays open in a job that outlives it (a terminal, a log pipe).
        launcherScript.Append("exec < /dev/null > /dev/null 2>&1\n");
        launcherScript.Append("echo $$ > pid.tmp && mv pid.tmp pid\n");
        // The job's own processes get SIGTERM on cancel; this shell waits for them and records the code.
        launcherScript.Append("trap : TERM\n");
        launcherScript.Append("umask 022\n"); // the engine's own 077 is for its files, not the node's
        // Where the engine may not raise a hard limit, the job keeps the lower one it inherited.
        launcherScript.Append(CultureInfo.InvariantCulture, $"ulimit -n {jobOptions.Value.MaxOpenFiles} 2>/dev/null || ulimit -S -n \"$(ulimit -H -n)\"\n");
        launcherScript.Append(CultureInfo.InvariantCulture, $"ulimit -u {jobOptions.Value.MaxProcesses} 2>/dev/null\n");
        // All of a node's jobs share its memory, as on a machine; a node beyond it meets the OOM killer.
        launcherScript.Append(sandbox.JoinMemoryCgroup(launch.Job.InstanceId, jobOptions.Value.MaxNodeMemoryBytes));
        if (sandbox.Unconfined)
        {
            launcherScript.Append("env -i");
            foreach (var (name, value) in environment)
                launcherScript.Append(' ').Append(NodeSandbox.Quote($"{name}={value}"));
            launcherScript.Append(CultureInfo.InvariantCulture, $" {shell} {NodeSandbox.Quote(runOnNode)} >> output.log 2>&1 < /dev/null\n");
        }
        else
        {
            // bwrap reads its arguments from a file, so no host path shows in the sandbox's process list.
            // Only options may come from the file; the command follows on the command line.
            var options = NodeSandbox.SandboxOptions(node, environment);
            await File.WriteAllTextAsync(Path.Combine(paths.Root, "bwrap.args"), string.Concat(options.Select(a => a + "\0")), ct);
            var command = string.Join(' ', NodeSandbox.CommandInside(node, [shell, runOnNode]).Select(NodeSandbox.Quote));
            launcherScript.Append(CultureInfo.InvariantCulture, $"{NodeSandbox.Quote(sandbox.Program!)} --args 3 -- {command} 3< bwrap.args >> output.log 2>&1 < /dev/null\n");
        }
        launcherScript.Append("code=$?\n");
        launcherScript.Append("echo \"$code\" > exit_code.tmp && mv exit_code.tmp exit_code\n");
        await File.WriteAllTextAsync(Path.Combine(paths.Root, "launch.sh"), launcherScript.ToString(), ct);
    }

    public Task<IReadOnlyList<JobProcessState>> InspectJobsAsync(IReadOnlyList<JobRef> jobs, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<JobProcessState>>(jobs.Select(Inspect).ToList());

    private JobProcessState Inspect(JobRef job)
    {
        var paths = PathsOf(job);
        var output = new FileInfo(paths.Output);
        var outputBytes = output.Exists ? output.Length : 0;
        if (ReadExitCode(paths) is { } code)
            return new JobProcessState(JobProcessKind.Exited, code, outputBytes);
        if (ReadLauncherPid(paths.Pid) is not { } pid)
        {
            // Launched but no pid for a minute: the start never got as far as the launcher.
            var launched = new FileInfo(paths.Launched);
            return launched.Exists && clock.GetUtcNow() - launched.LastWriteTimeUtc > TimeSpan.FromMinutes(1) && !_starting.ContainsKey(job.JobId)
                ? new JobProcessState(JobProcessKind.Lost, OutputBytes: outputBytes)
                : new JobProcessState(JobProcessKind.Starting, OutputBytes: outputBytes);
        }
        if (IsLauncherAlive(pid, paths.Pid))
            return new JobProcessState(JobProcessKind.Running, OutputBytes: outputBytes);
        // The launcher writes the exit code and then exits: one that ended between the first look
        // and now has left its code, and only a launcher gone without one lost its job.
        return ReadExitCode(paths) is { } last
            ? new JobProcessState(JobProcessKind.Exited, last, outputBytes)
            : new JobProcessState(JobProcessKind.Lost, OutputBytes: outputBytes);
    }

    private static int? ReadExitCode(JobPaths paths)
    {
        try
        {
            return int.TryParse(File.ReadAllText(paths.ExitCode).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var code) ? code : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static int? ReadLauncherPid(string pidFile)
    {
        try
        {
            return int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 1 ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public async Task<JobOutput> ReadOutputAsync(JobRef job, long offset, int maxBytes, CancellationToken ct)
    {
        var paths = PathsOf(job);
        var bytes = ReadOnlyMemory<byte>.Empty;
        if (File.Exists(paths.Output))
        {
            await using var stream = new FileStream(paths.Output, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length > offset)
            {
                stream.Seek(offset, SeekOrigin.Begin);
                var buffer = new byte[Math.Min(stream.Length - offset, maxBytes)];
                var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct);
                bytes = buffer.AsMemory(0, read);
            }
        }
        var end = offset + bytes.Length;
        var breaks = (await ReadBreaksAsync(paths, ct)).Where(b => b >= offset && b <= end).ToList();
        return new JobOutput(bytes, breaks);
    }

    public async Task SealOutputAsync(JobRef job, long offset, CancellationToken ct)
    {
        var paths = PathsOf(job);
        var known = await ReadBreaksAsync(paths, ct);
        if (known.Count > 0 && known[^1] >= offset)
            return;
        // One short append per break: O_APPEND writes of a line are atomic, so readers see whole lines.
        await File.AppendAllTextAsync(paths.Breaks, offset.ToString(CultureInfo.InvariantCulture) + "\n", ct);
    }

    private static async Task<IReadOnlyList<long>> ReadBreaksAsync(JobPaths paths, CancellationToken ct)
    {
        if (!File.Exists(paths.Breaks))
            return [];
        var list = new List<long>();
        foreach (var line in await File.ReadAllLinesAsync(paths.Breaks, ct))
            if (long.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && (list.Count == 0 || value > list[^1]))
                list.Add(value);
        return list;
    }

    public Task<JobOutputFiles> MatchOutputsAsync(JobRef job, IReadOnlyList<string> outputs, CancellationToken ct)
    {
        var paths = PathsOf(job);
        using var work = outputs.Count == 0 ? null : BeneathDirectory.Open(paths.Home, paths.WorkInHome);
        if (work is null)
            return Task.FromResult(new JobOutputFiles([], false));
        var (files, directories, complete) = work.Walk(MaxWalkEntries, WalkBudget, ct);
        var matcher = new Matcher(StringComparison.Ordinal);
        foreach (var output in outputs)
        {
            var trimmed = output.Trim().TrimStart('.', '/').TrimEnd('/');
            if (trimmed.Length == 0)
                continue;
            var isDirectory = output.EndsWith('/') || directories.Contains(trimmed);
            matcher.AddInclude(isDirectory ? trimmed + "/**/*" : trimmed);
        }
        var limit = jobOptions.Value.MaxPullFiles;
        // Only what can be downloaded is listed: a link leading out of the job or to no file, a pipe
        // or a device is no output.
        var matched = matcher.Match("/", files.Select(f => "/" + f)).Files
            .Select(m => m.Path)
            .Order(StringComparer.Ordinal)
            .Where(path => OpensBeneath(work, path))
            .Take(limit + 1)
            .ToList();
        var truncated = !complete || matched.Count > limit;
        return Task.FromResult(new JobOutputFiles(matched.Take(limit).ToList(), truncated));
    }

    private static bool OpensBeneath(BeneathDirectory work, string path)
    {
        using var file = work.OpenFile(path);
        return file is not null;
    }

    public Task<Stream?> OpenOutputAsync(JobRef job, string path, CancellationToken ct)
    {
        var paths = PathsOf(job);
        using var work = BeneathDirectory.Open(paths.Home, paths.WorkInHome);
        return Task.FromResult<Stream?>(work?.OpenFile(path));
    }

    public async Task DeleteJobAsync(JobRef job, CancellationToken ct)
    {
        var paths = PathsOf(job);
        if (NodeSandbox.IsPrepared(paths.NodeRoot))
        {
            var uid = NodeSandbox.UidOfPreparedNode(paths.NodeRoot);
            var node = new NodeContext(job.InstanceId, paths.NodeRoot, uid, null, []);
            await sandbox.RunAsync(node, ["rm", "-rf", "--", sandbox.PathOnNode(node, paths.WorkInHome), sandbox.PathOnNode(node, paths.VenvInHome)], null, ct);
        }
        if (Directory.Exists(paths.Root))
            Directory.Delete(paths.Root, recursive: true); // the engine's own files: nothing a job could have changed
    }

    /// <summary>Ends every process on the cluster's nodes at once (jobs and logins): a released node runs nothing.</summary>
    private async Task KillNodeProcessesAsync(string clusterId, CancellationToken ct)
    {
        var instances = await db.ReadAsync<IReadOnlyList<string>>(async c =>
            (await c.QueryAsync<string>("SELECT instance_id FROM sim_nodes WHERE cluster_id = @clusterId", new { clusterId })).AsList(), ct);
        // Logins first: the port closes (no new login can start) before anything is killed.
        CloseLogins(instances);
        foreach (var instance in instances)
        {
            var jobsDir = Path.Combine(NodeRoot(instance), "jobs");
            if (!Directory.Exists(jobsDir))
                continue;
            foreach (var job in Directory.EnumerateDirectories(jobsDir))
                SignalLauncher(Path.Combine(job, "pid"), SigKill);
            sandbox.RemoveMemoryCgroup(instance);
        }
    }

    /// <summary>
    /// Whether the job's launcher still runs: the pid is alive and is still that job's launcher (a pid
    /// reused after a reboot is someone else's). A zombie counts as gone: once the engine that started
    /// a job has died, nothing may reap it (an init that does not reap orphans is common in containers
    /// and micro-VMs), and kill(pid, 0) would report it alive forever.
    /// </summary>
    private static bool IsLauncherAlive(int pid, string pidFile)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var state = text[text.LastIndexOf(')') + 2];
            if (state is 'Z' or 'X' or 'x')
                return false;
            var launcher = Path.Combine(Path.GetDirectoryName(pidFile)!, "launch.sh");
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains(launcher, StringComparer.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Signals the launcher's whole process group (the job's processes), if it still runs.</summary>
    private static void SignalLauncher(string pidFile, int signal)
    {
        if (ReadLauncherPid(pidFile) is { } pid && IsLauncherAlive(pid, pidFile))
            _ = Kill(-pid, signal); // ESRCH (gone meanwhile) is the outcome we want anyway
    }

    public Task SignalJobAsync(JobRef job, bool force, CancellationToken ct)
    {
        SignalLauncher(PathsOf(job).Pid, force ? SigKill : SigTerm);
        return Task.CompletedTask;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
