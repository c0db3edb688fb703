using System.Text;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Jobs;

/// <summary>What pushing, monitoring and cancelling share: starting a job and ending one (with teardown).</summary>
internal sealed class JobRunner(JobStore jobs, ICloudProvider provider, ClusterStore clusters, RequestSignals signals, IOptions<JobsOptions> options,
    ILogger<JobRunner> log)
{
    public JobsOptions Options => options.Value;

    public ICloudProvider Provider => provider;

    /// <summary>
    /// The shell command the client runs in its project directory to upload it: tar piped straight
    /// into curl, so nothing is written to the client's disk.
    /// </summary>
    /// <remarks>
    /// The engine applies the ignore rules exactly when it unpacks, so tar's excludes only keep the
    /// upload small: each one leaves out a subset of what the rules leave out, and none is used once
    /// the list re-includes anything, since tar cannot express a '!'. GNU tar is given the project's
    /// top-level names rather than ".", because an exclude such as ".*" would match the archive's
    /// root "." and leave out everything.
    /// </remarks>
    public static string UploadCommand(JobRecord job, string uploadUrl)
    {
        var rules = IgnoreRules.Parse(job.IgnoreList);
        var tar = job.System.Equals("Darwin", StringComparison.OrdinalIgnoreCase) ? BsdTar(rules) : GnuTar(rules);
        return tar + " | curl -sS --fail -T - -H 'Content-Type: application/gzip' " + Quote(uploadUrl);
    }

    private static string GnuTar(IgnoreRules rules)
    {
        var excludes = rules.HasNegation ? [] : rules.Patterns.Select(GnuExclude).OfType<(string Glob, bool Anchored)>().ToList();
        var command = new StringBuilder("find . -mindepth 1 -maxdepth 1 -printf '%P\\0' | tar -czf - --no-wildcards-match-slash");
        // --anchored is positional: it applies to the excludes after it, so the unanchored ones go first.
        foreach (var exclude in excludes.Where(e => !e.Anchored))
            command.Append(" --exclude=").Append(Quote(exclude.Glob));
        if (excludes.Any(e => e.Anchored))
            command.Append(" --anchored");
        foreach (var exclude in excludes.Where(e => e.Anchored))
            command.Append(" --exclude=").Append(Quote(exclude.Glob));
        // Excludes must come before -T; --verbatim-files-from keeps a file named "-C" a file.
        return command.Append(" --null --verbatim-files-from -T -").ToString();
    }

    /// <summary>
    /// The exclude for GNU tar (with --no-wildcards-match-slash) that leaves out no more than the
    /// pattern, or null when there is none worth the risk.
    /// </summary>
    private static (string Glob, bool Anchored)? GnuExclude(IgnoreRules.IgnorePattern pattern)
    {
        var glob = pattern.Glob;
        var anchored = pattern.Anchored;
        // fnmatch's classes and escapes differ from git's in corners; the engine's filter covers them.
        if (!pattern.CanMatch || glob.Contains('\\', StringComparison.Ordinal) || glob.Contains('[', StringComparison.Ordinal))
            return null;
        if (glob.StartsWith("**/", StringComparison.Ordinal))
        {
            glob = glob[3..];
            anchored = false;
        }
        if (glob.EndsWith("/**", StringComparison.Ordinal))
        {
            // "dir/**/" leaves out the directories below dir but keeps its files.
            if (pattern.DirectoryOnly)
                return null;
            glob = glob[..^3] + "/*";
        }
        else if (pattern.DirectoryOnly)
        {
            // tar cannot tell a directory from a file by name: leaving out the contents of "build"
            // spares a file called build, which the rules keep.
            glob += "/*";
        }
        // "a/**/b" has no fnmatch equivalent once '*' stops at '/'.
        return glob.Contains("**", StringComparison.Ordinal) ? null : (glob, anchored);
    }

    /// <summary>
    /// macOS's bsdtar matches excludes anywhere in a path, '*' included, and a dir-only "build/*" also
    /// drops a file named build: only plain names are safe (each leaves out that name at any depth,
    /// as the rules do), and never "." (the archive's root).
    /// </summary>
    private static string BsdTar(IgnoreRules rules)
    {
        var command = new StringBuilder("tar -czf -");
        if (!rules.HasNegation)
        {
            foreach (var pattern in rules.Patterns.Where(p => p.CanMatch && !p.Anchored && !p.DirectoryOnly && p.Glob != "." &&
                                                              p.Glob.IndexOfAny(['*', '?', '[', '\\']) < 0))
                command.Append(" --exclude ").Append(Quote(pattern.Glob));
        }
        return command.Append(" .").ToString();
    }

    public async Task StartAsync(JobRecord job, CancellationToken ct)
    {
        var volumes = (await jobs.AttachedVolumesAsync(job.ClusterId, ct)).Select(v => new VolumeMount(v, JobStore.MountPathOf(v))).ToList();
        await provider.StartJobAsync(new JobLaunch(job.Node, job.CommandList, options.Value.PythonVenv, volumes,
            IgnoreRules.Parse(job.IgnoreList).IsIgnoredWithParents, job.OrgId ?? job.UserId), ct);
        if (await jobs.MarkRunningAsync(job.Id, ct))
            return;
        // The job ended while it was being started (its cluster was destroyed, say): what was just
        // launched must not run on with nothing watching it.
        if ((await jobs.GetAsync(job.Id, ct))?.IsTerminal == true)
            await provider.SignalJobAsync(job.Node, force: true, ct);
    }

    /// <summary>Ends a job once; with teardown, the cluster is released (a CLUSTER_RELEASE request).</summary>
    public async Task FinishAsync(JobRecord job, string status, int? exitCode, string? message, CancellationToken ct)
    {
        if (!await jobs.FinishAsync(job.Id, status, exitCode, message, ct))
            return;
        if (!job.TeardownCluster)
            return;
        try
        {
            var released = await clusters.ReleaseAfterJobAsync(job.ClusterId, job.Id, ct);
            if (released)
                signals.PulseWork();
        }
        catch (Http.ApiError ex)
        {
            log.LogWarning("Teardown of {ClusterId} after job {JobId} was refused: {Message}", job.ClusterId, job.Id, ex.Message);
            await jobs.FinishAsync(job.Id, status, exitCode, $"The cluster was not torn down: {ex.Message}", ct);
        }
    }

    public static string Describe(string status, int? exitCode) => status switch
    {
        JobStatuses.Completed => "completed successfully (exit code 0)",
        JobStatuses.Error => $"failed: a command exited with code {exitCode}",
        JobStatuses.Canceled => "was canceled",
        _ => "failed on the platform",
    };

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
