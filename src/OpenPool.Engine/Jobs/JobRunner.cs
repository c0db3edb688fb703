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
    /// The shell command the client runs in its project directory to upload it: tar (leaving out the
    /// ignore patterns) piped straight into curl, so nothing is written to the client's disk.
    /// </summary>
    public static string UploadCommand(JobRecord job, string uploadUrl)
    {
        var command = new StringBuilder("tar -czf -");
        foreach (var pattern in job.IgnoreList)
            command.Append(" --exclude=").Append(Quote(pattern.TrimEnd('/')));
        command.Append(" . | curl -sS --fail -T - -H 'Content-Type: application/gzip' ").Append(Quote(uploadUrl));
        return command.ToString();
    }

    public async Task StartAsync(JobRecord job, CancellationToken ct)
    {
        var volumes = (await jobs.AttachedVolumesAsync(job.ClusterId, ct)).Select(v => new VolumeMount(v, JobStore.MountPathOf(v))).ToList();
        await provider.StartJobAsync(new JobLaunch(job.Node, job.CommandList, options.Value.PythonVenv, volumes, static (_, _) => false), ct);
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
