using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.FileSystemGlobbing;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// Jobs on simulated nodes really run. Each node is a sandbox directory under the data directory;
/// a job's project is unpacked into its own working directory and its commands run there as local
/// processes, in a session of their own (setsid) with their output going to a file, so they keep
/// running if the engine dies and a restarted engine finds them by their pid and exit-code files.
/// </summary>
internal sealed partial class SimulatedCloud
{
    private const int SigTerm = 15;
    private const int SigKill = 9;

    private string NodeRoot(string instanceId) => Path.Combine(engine.DataDir, "sim", "nodes", instanceId);

    public string VolumeRoot(string volumeId) => Path.Combine(engine.DataDir, "sim", "volumes", volumeId);

    /// <summary>Where a job's archive, working directory and output live on its simulated node.</summary>
    private sealed record JobPaths(string Root, string Archive, string Work, string Output, string ExitCode, string Pid)
    {
        public string Breaks => Path.Combine(Root, "breaks");
    }

    private JobPaths PathsOf(JobRef job)
    {
        var root = Path.Combine(NodeRoot(job.InstanceId), "jobs", job.JobId);
        return new JobPaths(root, Path.Combine(root, "project.tar.gz"), Path.Combine(root, "work"), Path.Combine(root, "output.log"),
            Path.Combine(root, "exit_code"), Path.Combine(root, "pid"));
    }

    public async Task<long> ReceiveProjectAsync(JobRef job, Stream archive, long maxBytes, CancellationToken ct)
    {
        var paths = PathsOf(job);
        Directory.CreateDirectory(paths.Root);
        var partial = paths.Archive + ".part";
        long received = 0;
        await using (var file = File.Create(partial))
        {
            var buffer = new byte[81920];
            int read;
            while ((read = await archive.ReadAsync(buffer, ct)) > 0)
            {
                received += read;
                if (received > maxBytes)
                {
                    file.Close();
                    File.Delete(partial);
                    throw new JobUploadTooLargeException(maxBytes);
                }
                await file.WriteAsync(buffer.AsMemory(0, read), ct);
            }
        }
        File.Move(partial, paths.Archive, overwrite: true);
        return received;
    }

    public async Task StartJobAsync(JobLaunch launch, CancellationToken ct)
    {
        var paths = PathsOf(launch.Job);
        // Exactly one launch per job, however many callers race here (the push handler and the
        // monitor) and across restarts: creating the marker file is the claim.
        try
        {
            await using var claim = new FileStream(Path.Combine(paths.Root, "launched"), FileMode.CreateNew, FileAccess.Write);
        }
        catch (IOException) when (File.Exists(Path.Combine(paths.Root, "launched")))
        {
            return;
        }

        if (Directory.Exists(paths.Work))
            Directory.Delete(paths.Work, recursive: true); // a half-unpacked project from an interrupted start
        Directory.CreateDirectory(paths.Work);
        try
        {
            await using var archive = File.OpenRead(paths.Archive);
            await using var gzip = new GZipStream(archive, CompressionMode.Decompress);
            await TarFile.ExtractToDirectoryAsync(gzip, paths.Work, overwriteFiles: true, ct);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or FormatException or UnauthorizedAccessException)
        {
            throw new JobStartException("The uploaded project could not be unpacked: " + ex.Message);
        }

        var commands = Path.Combine(paths.Root, "commands");
        Directory.CreateDirectory(commands);
        for (var i = 0; i < launch.Commands.Count; i++)
            await File.WriteAllTextAsync(Path.Combine(commands, $"{i:D4}.sh"), launch.Commands[i] + "\n", ct);
        var runScript = Path.Combine(paths.Root, "run.sh");
        await File.WriteAllTextAsync(runScript, RunScript(paths, launch), ct);

        foreach (var volume in launch.Volumes)
            Directory.CreateDirectory(VolumeRoot(volume.VolumeId));
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false, WorkingDirectory = paths.Root };
        if (launch.Volumes.Count > 0 && CanIsolateMounts())
        {
            // A private mount namespace shows the attached volumes at their real mount paths to
            // this job only; the host's /mnt is untouched.
            var mountScript = Path.Combine(paths.Root, "mounts.sh");
            await File.WriteAllTextAsync(mountScript, MountScript(launch, runScript), ct);
            foreach (var arg in new[] { "unshare", "--mount", "--propagation", "private", "sh", mountScript })
                start.ArgumentList.Add(arg);
        }
        else
        {
            start.ArgumentList.Add("sh");
            start.ArgumentList.Add(runScript);
        }
        start.Environment["OPENPOOL_JOB_ID"] = launch.Job.JobId;
        start.Environment["OPENPOOL_VENV"] = launch.PythonVenv ? "1" : "0";
        start.Environment["PYTHONUNBUFFERED"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the job's shell");
        await File.WriteAllTextAsync(paths.Pid + ".tmp", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);
        File.Move(paths.Pid + ".tmp", paths.Pid, overwrite: true);
    }

    public Task<IReadOnlyList<JobProcessState>> InspectJobsAsync(IReadOnlyList<JobRef> jobs, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<JobProcessState>>(jobs.Select(Inspect).ToList());

    private JobProcessState Inspect(JobRef job)
    {
        var paths = PathsOf(job);
        var output = new FileInfo(paths.Output);
        var outputBytes = output.Exists ? output.Length : 0;
        if (File.Exists(paths.ExitCode) && int.TryParse(File.ReadAllText(paths.ExitCode).Trim(), out var code))
            return new JobProcessState(JobProcessKind.Exited, code, outputBytes);
        if (!File.Exists(paths.Pid) || !int.TryParse(File.ReadAllText(paths.Pid).Trim(), out var pid))
        {
            // Launched but no pid for a minute: the engine died between claiming the launch and starting the shell.
            var launched = new FileInfo(Path.Combine(paths.Root, "launched"));
            return launched.Exists && clock.GetUtcNow() - launched.LastWriteTimeUtc > TimeSpan.FromMinutes(1)
                ? new JobProcessState(JobProcessKind.Lost, OutputBytes: outputBytes)
                : new JobProcessState(JobProcessKind.Starting, OutputBytes: outputBytes);
        }
        return new JobProcessState(IsAlive(pid) ? JobProcessKind.Running : JobProcessKind.Lost, OutputBytes: outputBytes);
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
        var breaks = (await ReadBreaksAsync(paths, ct)).Where(b => b > offset && b <= end).ToList();
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

    public Task<IReadOnlyList<string>> MatchOutputsAsync(JobRef job, IReadOnlyList<string> outputs, CancellationToken ct)
    {
        var workDir = PathsOf(job).Work;
        if (!Directory.Exists(workDir) || outputs.Count == 0)
            return Task.FromResult<IReadOnlyList<string>>([]);
        var matcher = new Matcher(StringComparison.Ordinal);
        foreach (var output in outputs)
        {
            var trimmed = output.Trim().TrimStart('.', '/').TrimEnd('/');
            if (trimmed.Length == 0)
                continue;
            var isDirectory = output.EndsWith('/') || Directory.Exists(Path.Combine(workDir, trimmed));
            matcher.AddInclude(isDirectory ? trimmed + "/**/*" : trimmed);
        }
        var root = Path.GetFullPath(workDir);
        return Task.FromResult<IReadOnlyList<string>>(matcher.GetResultsInFullPath(workDir)
            .Where(path => IsInside(root, path))
            .Select(path => Path.GetRelativePath(root, path).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList());
    }

    public Task<Stream?> OpenOutputAsync(JobRef job, string path, CancellationToken ct)
    {
        var root = Path.GetFullPath(PathsOf(job).Work);
        var full = Path.GetFullPath(Path.Combine(root, path));
        // Resolve links too: a job could have left a symlink pointing outside its own directory.
        var resolved = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        if (!IsInside(root, full) || !IsInside(root, resolved) || !File.Exists(resolved))
            return Task.FromResult<Stream?>(null);
        return Task.FromResult<Stream?>(new FileStream(resolved, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 81920, useAsync: true));
    }

    public Task DeleteJobAsync(JobRef job, CancellationToken ct)
    {
        var root = PathsOf(job).Root;
        if (Directory.Exists(root))
            Directory.Delete(root, recursive: true);
        return Task.CompletedTask;
    }

    private static bool IsInside(string root, string path)
    {
        var full = Path.GetFullPath(path);
        return full.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal);
    }

    /// <summary>
    /// Whether the job's shell still runs. A zombie counts as gone: once the engine that started a
    /// job has died, nothing may reap it (an init that does not reap orphans is common in
    /// containers and micro-VMs), and kill(pid, 0) would report it alive forever.
    /// </summary>
    private static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        if (OperatingSystem.IsLinux())
        {
            try
            {
                var text = File.ReadAllText(stat);
                var state = text[text.LastIndexOf(')') + 2];
                return state is not ('Z' or 'X' or 'x');
            }
            catch (IOException)
            {
                return false;
            }
        }
        return Kill(pid, 0) == 0;
    }

    public Task SignalJobAsync(JobRef job, bool force, CancellationToken ct)
    {
        var paths = PathsOf(job);
        if (File.Exists(paths.Pid) && int.TryParse(File.ReadAllText(paths.Pid).Trim(), out var pid))
            _ = Kill(-pid, force ? SigKill : SigTerm); // ESRCH (already gone) is the outcome we want anyway
        return Task.CompletedTask;
    }

    private static string RunScript(JobPaths paths, JobLaunch launch)
    {
        var script = new StringBuilder();
        script.Append("#!/bin/sh\n");
        script.Append($"# Written by OpenPool for job {launch.Job.JobId}: its commands in order, stopping at the first that fails.\n");
        script.Append($"JOB_DIR={Quote(paths.Root)}\n");
        script.Append("exec >> \"$JOB_DIR/output.log\" 2>&1 < /dev/null\n");
        script.Append("cd \"$JOB_DIR/work\" || { echo 1 > \"$JOB_DIR/exit_code\"; exit 1; }\n");
        // A fresh venv per job, as TensorPool does. Copying pip into every venv (ensurepip) costs
        // seconds per job; borrowing the base interpreter's pip through system site-packages costs
        // ~0.1 s, and the pip shim makes `pip install` land in the venv, not the base.
        script.Append("if [ \"$OPENPOOL_VENV\" = 1 ] && command -v python3 >/dev/null 2>&1; then\n");
        script.Append("  if python3 -m venv --without-pip --system-site-packages \"$JOB_DIR/venv\" >/dev/null 2>&1; then\n");
        script.Append("    printf '#!/bin/sh\\nexec \"%s/venv/bin/python\" -m pip \"$@\"\\n' \"$JOB_DIR\" > \"$JOB_DIR/venv/bin/pip\"\n");
        script.Append("    chmod +x \"$JOB_DIR/venv/bin/pip\"; cp \"$JOB_DIR/venv/bin/pip\" \"$JOB_DIR/venv/bin/pip3\"\n");
        script.Append("    . \"$JOB_DIR/venv/bin/activate\"\n");
        script.Append("  else echo \"[openpool] python3 -m venv failed; running without a virtual environment\"; fi\n");
        script.Append("fi\n");
        script.Append("code=0\n");
        script.Append("for cmd in \"$JOB_DIR\"/commands/*.sh; do\n");
        script.Append("  sh \"$cmd\"\n");
        script.Append("  code=$?\n");
        script.Append("  [ \"$code\" -eq 0 ] || break\n");
        script.Append("done\n");
        script.Append("echo \"$code\" > \"$JOB_DIR/exit_code.tmp\" && mv \"$JOB_DIR/exit_code.tmp\" \"$JOB_DIR/exit_code\"\n");
        return script.ToString();
    }

    private string MountScript(JobLaunch launch, string runScript)
    {
        var script = new StringBuilder("#!/bin/sh\nset -e\nmount -t tmpfs openpool-mnt /mnt\n");
        foreach (var volume in launch.Volumes)
        {
            script.Append($"mkdir -p {Quote(volume.MountPath)}\n");
            script.Append($"mount --bind {Quote(VolumeRoot(volume.VolumeId))} {Quote(volume.MountPath)}\n");
        }
        script.Append($"exec sh {Quote(runScript)}\n");
        return script.ToString();
    }

    private static bool? _canIsolate;

    /// <summary>Private mount namespaces need root (or user namespaces); probed once.</summary>
    private static bool CanIsolateMounts()
    {
        if (_canIsolate is { } known)
            return known;
        try
        {
            using var probe = Process.Start(new ProcessStartInfo("unshare", ["--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs probe /mnt"])
            {
                UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true,
            });
            probe!.WaitForExit(5000);
            _canIsolate = probe.HasExited && probe.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            _canIsolate = false;
        }
        return _canIsolate.Value;
    }

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
