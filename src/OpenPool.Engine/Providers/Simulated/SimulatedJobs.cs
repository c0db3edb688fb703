using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

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

    public JobPaths PathsOf(string instanceId, string jobId)
    {
        var root = Path.Combine(NodeRoot(instanceId), "jobs", jobId);
        return new JobPaths(root, Path.Combine(root, "project.tar.gz"), Path.Combine(root, "work"), Path.Combine(root, "output.log"),
            Path.Combine(root, "exit_code"), Path.Combine(root, "pid"));
    }

    public async Task StartJobAsync(JobLaunch launch, CancellationToken ct)
    {
        var paths = PathsOf(launch.InstanceId, launch.JobId);
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
        await using (var archive = File.OpenRead(paths.Archive))
        await using (var gzip = new GZipStream(archive, CompressionMode.Decompress))
            await TarFile.ExtractToDirectoryAsync(gzip, paths.Work, overwriteFiles: true, ct);

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
        start.Environment["OPENPOOL_JOB_ID"] = launch.JobId;
        start.Environment["OPENPOOL_VENV"] = launch.PythonVenv ? "1" : "0";
        start.Environment["PYTHONUNBUFFERED"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the job's shell");
        await File.WriteAllTextAsync(paths.Pid + ".tmp", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);
        File.Move(paths.Pid + ".tmp", paths.Pid, overwrite: true);
    }

    public JobProcessState InspectJob(string instanceId, string jobId)
    {
        var paths = PathsOf(instanceId, jobId);
        if (File.Exists(paths.ExitCode) && int.TryParse(File.ReadAllText(paths.ExitCode).Trim(), out var code))
            return new JobProcessState(JobProcessKind.Exited, code);
        if (!File.Exists(paths.Pid) || !int.TryParse(File.ReadAllText(paths.Pid).Trim(), out var pid))
        {
            // Launched but no pid for a minute: the engine died between claiming the launch and starting the shell.
            var launched = new FileInfo(Path.Combine(paths.Root, "launched"));
            return launched.Exists && clock.GetUtcNow() - launched.LastWriteTimeUtc > TimeSpan.FromMinutes(1)
                ? new JobProcessState(JobProcessKind.Lost)
                : new JobProcessState(JobProcessKind.Starting);
        }
        return IsAlive(pid) ? new JobProcessState(JobProcessKind.Running) : new JobProcessState(JobProcessKind.Lost);
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

    public void SignalJob(string instanceId, string jobId, bool force)
    {
        var paths = PathsOf(instanceId, jobId);
        if (File.Exists(paths.Pid) && int.TryParse(File.ReadAllText(paths.Pid).Trim(), out var pid))
            _ = Kill(-pid, force ? SigKill : SigTerm); // ESRCH (already gone) is the outcome we want anyway
    }

    private static string RunScript(JobPaths paths, JobLaunch launch)
    {
        var script = new StringBuilder();
        script.Append("#!/bin/sh\n");
        script.Append($"# Written by OpenPool for job {launch.JobId}: its commands in order, stopping at the first that fails.\n");
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
