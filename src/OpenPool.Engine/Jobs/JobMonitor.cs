using OpenPool.Contracts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Providers;

namespace OpenPool.Engine.Jobs;

/// <summary>
/// Watches every unfinished job: starts uploaded jobs a crash left unstarted, carries out cancels
/// (SIGTERM, then SIGKILL after the grace period), stops jobs that exceed the output limit, and
/// records each job's end with its real exit code. It keeps no state of its own, so a restarted
/// engine simply carries on with the jobs it finds.
/// </summary>
internal sealed class JobMonitor(JobStore jobs, JobRunner runner, ICloudProvider provider, TimeProvider clock, ILogger<JobMonitor> log)
    : BackgroundService
{
    public async Task CheckOnceAsync(CancellationToken ct = default)
    {
        var active = await jobs.ActiveAsync(ct);
        if (active.Count == 0)
            return;
        // One call for every started job: a remote node's runtime answers them in one round trip.
        var started = active.Where(j => j.Status != JobStatuses.Pending).ToList();
        var states = started.Count == 0 ? [] : await provider.InspectJobsAsync(started.Select(j => j.Node).ToList(), ct);
        var stateOf = started.Select((job, i) => (job.Id, states[i])).ToDictionary(p => p.Id, p => p.Item2);
        foreach (var job in active)
        {
            try
            {
                await CheckAsync(job, stateOf.GetValueOrDefault(job.Id), ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log.LogWarning(ex, "Checking job {JobId} failed; will look again", job.Id);
            }
        }
    }

    private async Task CheckAsync(JobRecord job, JobProcessState? state, CancellationToken ct)
    {
        var now = clock.Now();
        var options = runner.Options;
        if (job.Status == JobStatuses.Pending)
        {
            if (job.UploadReceivedAt is not null)
                await runner.StartAsync(job, ct); // uploaded, but the push handler never started it
            else if (now - job.CreatedAt > options.UploadUrlMinutes * 60_000)
                await runner.FinishAsync(job, JobStatuses.Failed, null, "The project upload never arrived; push the job again.", ct);
            return;
        }

        if (state is null)
            return;
        if (state.Kind == JobProcessKind.Exited)
        {
            var status = job.Status == JobStatuses.Canceling ? JobStatuses.Canceled : state.ExitCode == 0 ? JobStatuses.Completed : JobStatuses.Error;
            await runner.FinishAsync(job, status, state.ExitCode, null, ct);
            return;
        }
        if (state.Kind == JobProcessKind.Lost)
        {
            if (job.Status == JobStatuses.Canceling)
                await runner.FinishAsync(job, JobStatuses.Canceled, null, null, ct);
            else
                await runner.FinishAsync(job, JobStatuses.Failed, null, "The job's processes ended without reporting an exit code.", ct);
            return;
        }
        if (state.Kind == JobProcessKind.Starting && job.Status == JobStatuses.Canceling && job.StartedAt is null)
        {
            await runner.FinishAsync(job, JobStatuses.Canceled, null, null, ct);
            return;
        }
        if (job.Status == JobStatuses.Canceling)
        {
            var force = now - (job.CancelRequestedAt ?? now) > options.CancelGraceSeconds * 1000;
            await provider.SignalJobAsync(job.Node, force, ct);
            return;
        }
        if (state.OutputBytes > options.MaxOutputBytes)
        {
            await provider.SignalJobAsync(job.Node, force: true, ct);
            await runner.FinishAsync(job, JobStatuses.Failed, null,
                $"The job wrote more than {options.MaxOutputBytes / (1024 * 1024)} MB of output (Jobs:MaxOutputBytes) and was stopped.", ct);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(runner.Options.MonitorIntervalMs), clock);
        try
        {
            do
            {
                await CheckOnceAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
