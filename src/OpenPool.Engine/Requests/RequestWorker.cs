using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Requests;

/// <summary>
/// Carries requests out. It claims due rows with a lease, runs their handler one step at a time,
/// and writes every result under the lease's fencing token, so a worker that lost its lease (paused,
/// partitioned, superseded) can never overwrite newer state. Idle, it sleeps until woken by new
/// work, until the next row falls due, or for a slow safety sweep.
/// </summary>
internal sealed class RequestWorker : BackgroundService
{
    private readonly RequestStore _store;
    private readonly Database _db;
    private readonly RequestSignals _signals;
    private readonly RequestOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<RequestWorker> _log;
    private readonly Dictionary<string, IRequestHandler> _handlers;
    private readonly ConcurrentDictionary<long, Task> _inFlight = new();

    public RequestWorker(
        RequestStore store, Database db, IEnumerable<IRequestHandler> handlers, RequestSignals signals,
        IOptions<RequestOptions> options, TimeProvider clock, ILogger<RequestWorker> log)
    {
        _store = store;
        _db = db;
        _signals = signals;
        _options = options.Value;
        _clock = clock;
        _log = log;
        _handlers = handlers.ToDictionary(h => h.Type.Name());
    }

    /// <summary>This worker's identity in <c>lease_owner</c>; unique per process start.</summary>
    public string Owner { get; } = "w-" + Ids.Random(10);

    private long LeaseMs => (long)(_options.LeaseSeconds * 1000);

    /// <summary>At most this many steps are carried in memory before a checkpoint is written anyway.</summary>
    private const int MaxCoalescedSteps = 8;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var heartbeat = HeartbeatLoopAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Taken before the claim so a pulse that arrives while claiming is not lost.
                var woken = _signals.WhenWork();
                var free = _options.Concurrency - _inFlight.Count;
                var claimedAny = false;
                if (free > 0)
                {
                    var claimed = await _store.ClaimAsync(Owner, free, _clock.Now(), LeaseMs, stoppingToken);
                    foreach (var row in claimed)
                        Track(row, stoppingToken);
                    if (claimed.Count == free)
                        continue;
                    claimedAny = claimed.Count > 0;
                }
                // Work just claimed wakes this loop when it ends (Track), and the loop then asks when
                // the next request falls due. Asking now as well would scan every unfinished request
                // on each pass of a busy worker: under load that scan was a tenth of PostgreSQL's time.
                var delay = await IdleDelayAsync(free > 0 && !claimedAny, stoppingToken);
                if (delay > TimeSpan.Zero)
                {
                    // Cancel the timer when a wake-up wins, so a busy worker does not pile up pending timers.
                    using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    var timer = Task.Delay(delay, _clock, sleep.Token);
                    await Task.WhenAny(woken, timer);
                    await sleep.CancelAsync();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                _log.LogError(ex, "Request worker loop fault; continuing after a pause");
                await Task.Delay(TimeSpan.FromSeconds(1), _clock, CancellationToken.None);
            }
        }
        await Task.WhenAll(_inFlight.Values);
        await heartbeat;
    }

    /// <summary>Claims everything due now and runs each request to its next wait or end. For tests and tools.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct = default)
    {
        var claimed = await _store.ClaimAsync(Owner, 10_000, _clock.Now(), LeaseMs, ct);
        await Task.WhenAll(claimed.Select(row => ProcessAsync(row, ct)));
        return claimed.Count;
    }

    private void Track(RequestRow row, CancellationToken ct)
    {
        var task = ProcessAsync(row, ct);
        _inFlight[row.Seq] = task;
        _ = task.ContinueWith(_ =>
        {
            _inFlight.TryRemove(row.Seq, out var _);
            _signals.PulseWork();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task<TimeSpan> IdleDelayAsync(bool lookForNextDue, CancellationToken ct)
    {
        var safety = TimeSpan.FromSeconds(_options.SafetySweepSeconds);
        if (!lookForNextDue)
            return safety;
        var nextDue = await _store.NextDueAtAsync(Owner, ct);
        if (nextDue is null)
            return safety;
        var untilDue = TimeSpan.FromMilliseconds(nextDue.Value - _clock.Now());
        return untilDue < safety ? untilDue : safety;
    }

    private async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        var period = TimeSpan.FromMilliseconds(Math.Max(100, LeaseMs / 3));
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, _clock, ct);
                if (!_inFlight.IsEmpty)
                    await _store.HeartbeatAsync(Owner, _clock.Now() + LeaseMs, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _log.LogWarning(ex, "Lease heartbeat failed; leases may lapse and be retaken");
            }
        }
    }

    internal async Task ProcessAsync(RequestRow row, CancellationToken ct)
    {
        var token = row.LeaseToken;
        if (!_handlers.TryGetValue(row.Type, out var handler))
        {
            await ApplyAsync(row, token, null, new StepOutcome.Fail($"No handler for {row.Type} in this engine version."), null, ct);
            return;
        }
        // Steps that lead straight into the next (an Advance) are written together with the outcome
        // of the step that follows, so a claim that provisions at once costs one commit, not three.
        // Checkpoints still land at every wait, retry and end; a crash in between re-runs those quick
        // steps, which are idempotent like every step.
        ResourceUpdate? carried = null;
        var working = row.Clone();
        var coalesced = 0;
        while (true)
        {
            StepOutcome outcome;
            try
            {
                outcome = await handler.RunStepAsync(working, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return; // Shutting down: the lease lapses and the step runs again from its checkpoint.
            }
            catch (Exception ex)
            {
                _log.LogWarning(ex, "Step {Step} of {RequestId} faulted", working.Step, working.Id);
                outcome = new StepOutcome.Retry($"Internal fault during '{working.Step}'");
            }

            if (outcome is StepOutcome.Advance advance && ++coalesced < MaxCoalescedSteps)
            {
                working.Step = advance.NextStep;
                working.ExternalMessage = advance.Message ?? working.ExternalMessage;
                carried = Combine(carried, advance.Update);
                continue;
            }

            RequestRow? applied;
            try
            {
                applied = await ApplyAsync(working, token, handler, outcome, carried, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _log.LogWarning(ex, "Could not record step {Step} of {RequestId}; its lease will lapse and it will be retried", working.Step, working.Id);
                return;
            }
            if (applied is null)
            {
                _log.LogInformation("Discarded a stale result for {RequestId}: its lease token moved on", working.Id);
                return;
            }
            _signals.NotifyChanged(applied.Id);
            if (outcome is not StepOutcome.Advance)
                return;
            working = applied.Clone();
            carried = null;
            coalesced = 0;
        }
    }

    /// <summary>
    /// Turns an outcome into the row's next state and writes it, fenced, with the handler's resource
    /// updates. Returns the new state, or null when the token moved on and nothing was written.
    /// </summary>
    private async Task<RequestRow?> ApplyAsync(RequestRow row, long token, IRequestHandler? handler, StepOutcome outcome, ResourceUpdate? carried, CancellationToken ct)
    {
        var now = _clock.Now();
        var next = row.Clone();
        next.UpdatedAt = now;
        var update = Combine(carried, outcome.Update);
        switch (outcome)
        {
            case StepOutcome.Advance advance:
                next.Step = advance.NextStep;
                next.ExternalMessage = advance.Message ?? row.ExternalMessage;
                break;
            case StepOutcome.Wait wait:
                next.NextRunAt = now + (long)Math.Ceiling(wait.Delay.TotalMilliseconds);
                next.ExternalMessage = wait.Message;
                ReleaseLease(next);
                break;
            case StepOutcome.Retry retry:
                next.Attempts = row.Attempts + 1;
                if (next.Attempts >= _options.MaxAttempts)
                {
                    Finish(next, RequestStatus.Failed, $"{retry.Message}. Gave up after {next.Attempts} attempts.", now);
                    update = Combine(update, handler?.OnGaveUp(row));
                }
                else
                {
                    var delay = Backoff(next.Attempts);
                    next.Status = RequestStatus.Retrying.Name();
                    next.NextRunAt = now + (long)delay.TotalMilliseconds;
                    next.ExternalMessage = $"{retry.Message}. Retrying in {Math.Ceiling(delay.TotalSeconds)}s (attempt {next.Attempts} of {_options.MaxAttempts}).";
                    ReleaseLease(next);
                }
                break;
            case StepOutcome.Complete complete:
                Finish(next, RequestStatus.Completed, complete.Message ?? "Completed.", now);
                break;
            case StepOutcome.Fail fail:
                Finish(next, RequestStatus.Failed, fail.Message ?? "Failed.", now);
                break;
        }

        try
        {
            await _db.WriteAsync(write =>
            {
                RequestStore.AddFencedUpdate(write, next, token);
                update?.Invoke(write, now);
            }, ct);
        }
        catch (GuardFailedException)
        {
            return null; // the token moved on; the whole write was rolled back
        }
        if (next.IsFinished)
            _signals.PulseWork(); // requests queued behind this one may start now
        return next;
    }

    /// <summary>Exponential backoff with jitter (±25%), capped; attempt 1 waits about the base.</summary>
    internal TimeSpan Backoff(int attempt)
    {
        var exponential = _options.BackoffBaseSeconds * Math.Pow(2, attempt - 1);
        var capped = Math.Min(exponential, _options.BackoffMaxSeconds);
        var jittered = capped * (0.75 + (Random.Shared.NextDouble() * 0.5));
        return TimeSpan.FromSeconds(Math.Min(jittered, _options.BackoffMaxSeconds));
    }

    private static void Finish(RequestRow row, RequestStatus status, string message, long now)
    {
        row.Status = status.Name();
        row.ExternalMessage = message;
        row.FinishedAt = now;
        ReleaseLease(row);
    }

    private static void ReleaseLease(RequestRow row)
    {
        row.LeaseOwner = null;
        row.LeaseExpiresAt = null;
    }

    private static ResourceUpdate? Combine(ResourceUpdate? first, ResourceUpdate? second) =>
        first is null ? second : second is null ? first : (write, now) =>
        {
            first(write, now);
            second(write, now);
        };
}
