using OpenPool.Contracts;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Providers;

namespace OpenPool.Engine.Jobs;

/// <summary>
/// Watches every unfinished job: starts uploaded jobs a crash left unstarted, carries out cancels
/// (SIGTERM, then SIGKILL after the grace period), stops jobs that exceed the output limit or whose
/// cluster went away, seals idle unfinished output lines, and records each job's end with its real
/// exit code. Its only memory is the last output size seen per running job, so a restarted engine
/// simply carries on with the jobs it finds.
/// </summary>
internal sealed class JobMonitor(JobStore jobs, JobRunner runner, ICloudProvider provider, TimeProvider clock, ILogger<JobMonitor> log)
    : BackgroundService
{
    // A redraw loop (tqdm redraws up to ten times a second) never pauses for a whole interval, so
    // while its unfinished line is a \r redraw it is cut this often instead.
    private const long RedrawSealMs = 1000;

    // Output size at the previous check, whether that size was already looked at for sealing, and
    // when the tail was last looked at. Touched only by the monitor's own loop.
    private readonly Dictionary<string, (long Size, bool Looked, long LookedAt)> _outputSeen = new(StringComparer.Ordinal);

    public async Task CheckOnceAsync(CancellationToken ct = default)
    {
        var active = await jobs.ActiveAsync(ct);
        if (_outputSeen.Count > 0)
        {
            var watched = active.Select(j => j.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _outputSeen.Keys.Where(id => !watched.Contains(id)).ToList())
                _outputSeen.Remove(gone);
        }
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
        if (job.ClusterStatus is ClusterStatuses.Destroying or ClusterStatuses.Destroyed or ClusterStatuses.Failed
            && !(state is { Kind: JobProcessKind.Exited, ExitCode: 0 }))
        {
            await EndWithClusterAsync(job, state, ct);
            return;
        }
        if (job.Status == JobStatuses.Pending)
        {
            if (job.UploadReceivedAt is not null)
            {
                // Uploaded, but the push handler has not started it (the engine died, or the client is slow to answer).
                try
                {
                    await runner.StartAsync(job, ct);
                }
                catch (JobStartException ex)
                {
                    await runner.FinishAsync(job, JobStatuses.Failed, null, ex.Message, ct); // the archive will not unpack any better later
                }
            }
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
            return;
        }
        if (state.Kind == JobProcessKind.Running)
            await SealIdleTailAsync(job, state.OutputBytes, now, ct);
    }

    /// <summary>
    /// A job outlives nothing of its cluster: once the cluster is being destroyed (or failed), its
    /// processes are killed and the job ends failed, saying why, instead of running on unbilled.
    /// </summary>
    private async Task EndWithClusterAsync(JobRecord job, JobProcessState? state, CancellationToken ct)
    {
        // Even a job seen pending is signalled: its push may have started it since (a no-op otherwise).
        if (state?.Kind is not JobProcessKind.Exited)
        {
            try
            {
                await provider.SignalJobAsync(job.Node, force: true, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The node may be gone with its cluster, and its processes with it; the job must end either way.
                log.LogWarning(ex, "Stopping job {JobId} of a released cluster failed", job.Id);
            }
        }
        var what = job.ClusterStatus == ClusterStatuses.Failed ? "failed" : "was destroyed";
        var message = $"The cluster {job.ClusterId} {what} while the job {(job.Status == JobStatuses.Pending ? "waited to start" : "ran")}.";
        await runner.FinishAsync(job, JobStatuses.Failed, null, message, ct);
        log.LogInformation("Job {JobId} ended: {Message}", job.Id, message);
    }

    /// <summary>
    /// Seals a break at the end of output that has stayed unfinished (no newline) for a whole
    /// interval, such as a progress bar redrawn with \r, so that listeners show it now; and, once a
    /// second, at the end of a \r redraw that never pauses. The monitor is the only writer of breaks,
    /// so every listener, live or replaying later, cuts at the same places.
    /// </summary>
    private async Task SealIdleTailAsync(JobRecord job, long size, long now, CancellationToken ct)
    {
        if (!_outputSeen.TryGetValue(job.Id, out var seen))
        {
            _outputSeen[job.Id] = (size, false, now);
            return;
        }
        var idle = seen.Size == size;
        if (idle && seen.Looked)
            return;
        var redrawing = !idle && now - seen.LookedAt >= RedrawSealMs;
        if (!idle && !redrawing)
        {
            _outputSeen[job.Id] = (size, false, seen.LookedAt);
            return;
        }
        _outputSeen[job.Id] = (size, true, now);
        if (size == 0)
            return;

        // An idle tail needs only its last character; a redraw, its whole unfinished line.
        var from = Math.Max(0, size - (idle ? 4 : 4096));
        var tail = await provider.ReadOutputAsync(job.Node, from, (int)(size - from), ct);
        if (tail.Bytes.Length != size - from)
            return;
        var cut = size - IncompleteCharacterLength(tail.Bytes.Span);
        var before = tail.Bytes.Span[..(int)(cut - from)];
        // Nothing to seal: the output ends a line, it was sealed here already, or all that is left is
        // the start of a character still being written (sealing inside it would garble it for everyone).
        if (before.IsEmpty || before[^1] == (byte)'\n' || tail.Breaks.Any(b => b >= cut))
            return;
        if (redrawing)
        {
            // A plain line written in pieces is left whole: it waits for its newline or a pause.
            var lineStart = Math.Max(before.LastIndexOf((byte)'\n') + 1, (int)(tail.Breaks.LastOrDefault(from) - from));
            if (!before[lineStart..].Contains((byte)'\r'))
                return;
        }
        // The job may have written since it was inspected; a break sealed behind bytes a listener has
        // already read would cut differently for it than for a replay, so look once more, just before.
        var current = await provider.InspectJobsAsync([job.Node], ct);
        if (current.Count != 1 || current[0].OutputBytes != size)
            return;
        await provider.SealOutputAsync(job.Node, cut, ct);
    }

    /// <summary>How many bytes at the end of <paramref name="tail"/> are a UTF-8 character whose last bytes are not written yet.</summary>
    private static int IncompleteCharacterLength(ReadOnlySpan<byte> tail)
    {
        for (var back = 1; back <= Math.Min(3, tail.Length); back++)
        {
            var value = tail[^back];
            if ((value & 0xC0) == 0x80)
                continue; // a continuation byte: the character started further back
            var length = value >= 0xF0 ? 4 : value >= 0xE0 ? 3 : value >= 0xC0 ? 2 : 1;
            return length > back ? back : 0;
        }
        return 0;
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
