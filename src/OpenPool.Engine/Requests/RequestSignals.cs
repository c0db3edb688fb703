using System.Collections.Concurrent;

namespace OpenPool.Engine.Requests;

/// <summary>
/// In-process wake-ups: one for the worker ("there is new or unblocked work") and one per request id
/// for long-polling clients ("this request changed"). Signals carry no data; whoever wakes re-reads
/// the database, so a lost or spurious signal costs at most a wait, never a wrong answer.
/// </summary>
internal sealed class RequestSignals
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _requestWaiters = new();
    private TaskCompletionSource _work = NewSource();

    /// <summary>Carries signals to the other replicas (PostgreSQL LISTEN/NOTIFY); null for a lone SQLite engine.</summary>
    public Action<string>? Broadcast { get; set; }

    /// <summary>What <see cref="Broadcast"/> sends for "new or unblocked work".</summary>
    public const string WorkToken = "*";

    /// <summary>A task that completes at the next change of <paramref name="requestId"/>.</summary>
    public Task WhenChanged(string requestId) =>
        _requestWaiters.GetOrAdd(requestId, _ => NewSource()).Task;

    public void NotifyChanged(string requestId)
    {
        NotifyChangedHere(requestId);
        Broadcast?.Invoke(requestId);
    }

    /// <summary>A change seen on another replica: wake local waiters only.</summary>
    public void NotifyChangedHere(string requestId)
    {
        if (_requestWaiters.TryRemove(requestId, out var source))
            source.TrySetResult();
    }

    public int WaiterCount => _requestWaiters.Count;

    /// <summary>A task that completes at the next <see cref="PulseWork"/>.</summary>
    public Task WhenWork() => Volatile.Read(ref _work).Task;

    public void PulseWork()
    {
        PulseWorkHere();
        Broadcast?.Invoke(WorkToken);
    }

    public void PulseWorkHere()
    {
        var previous = Interlocked.Exchange(ref _work, NewSource());
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
