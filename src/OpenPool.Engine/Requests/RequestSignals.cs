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

    /// <summary>A task that completes at the next change of <paramref name="requestId"/>.</summary>
    public Task WhenChanged(string requestId) =>
        _requestWaiters.GetOrAdd(requestId, _ => NewSource()).Task;

    public void NotifyChanged(string requestId)
    {
        if (_requestWaiters.TryRemove(requestId, out var source))
            source.TrySetResult();
    }

    public int WaiterCount => _requestWaiters.Count;

    /// <summary>A task that completes at the next <see cref="PulseWork"/>.</summary>
    public Task WhenWork() => Volatile.Read(ref _work).Task;

    public void PulseWork()
    {
        var previous = Interlocked.Exchange(ref _work, NewSource());
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
