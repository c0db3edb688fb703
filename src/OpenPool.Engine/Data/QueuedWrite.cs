using System.Data.Common;
using System.Threading.Channels;

namespace OpenPool.Engine.Data;

/// <summary>One caller's write waiting in a group commit's queue (SQLite's or PostgreSQL's).</summary>
internal interface IQueuedWrite
{
    CancellationToken CancellationToken { get; }

    /// <summary>How many times this write was rolled back over a lock conflict and queued again.</summary>
    int Retries { get; set; }

    Task RunAsync(DbConnection connection, DbTransaction transaction);
    void Complete();
    void Fail(Exception error);
}

internal sealed class QueuedWrite<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct) : IQueuedWrite
{
    // Continuations run on the pool, not inline on a committer loop.
    private readonly TaskCompletionSource<T> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _value;

    public Task<T> Result => _result.Task;
    public CancellationToken CancellationToken => ct;
    public int Retries { get; set; }

    // The write runs as its caller: ambient state that code inside a write reads (the
    // Idempotency-Key scope an enqueue records its request under) must be the caller's, not
    // the committer loop's.
    private readonly ExecutionContext? _caller = ExecutionContext.Capture();

    public Task RunAsync(DbConnection connection, DbTransaction transaction)
    {
        if (_caller is null)
            return RunInCallerContextAsync(connection, transaction);
        Task? running = null;
        ExecutionContext.Run(_caller, _ => running = RunInCallerContextAsync(connection, transaction), null);
        return running!;
    }

    private async Task RunInCallerContextAsync(DbConnection connection, DbTransaction transaction) =>
        _value = await work(connection, transaction);

    // TrySet: a write that failed on its own keeps that error when the batch later completes or fails.
    public void Complete() => _result.TrySetResult(_value!);
    public void Fail(Exception error) => _result.TrySetException(error);
}

internal static class QueuedWrites
{
    /// <summary>Queues a caller's write; the task answers once a committer has committed or failed it.</summary>
    public static Task<T> Enqueue<T>(ChannelWriter<IQueuedWrite> queue, Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var write = new QueuedWrite<T>(work, ct);
        if (!queue.TryWrite(write))
            throw ShuttingDown();
        return write.Result;
    }

    /// <summary>What a write gets when its queue has closed.</summary>
    public static ObjectDisposedException ShuttingDown() => new(nameof(Database), "The database is shutting down.");

    /// <summary>
    /// Refills <paramref name="batch"/> with up to <paramref name="max"/> writes waiting now; a
    /// write whose caller gave up meanwhile is failed instead of run.
    /// </summary>
    public static void TakeBatch(ChannelReader<IQueuedWrite> queue, List<IQueuedWrite> batch, int max)
    {
        batch.Clear();
        while (batch.Count < max && queue.TryRead(out var write))
        {
            if (write.CancellationToken.IsCancellationRequested)
                write.Fail(new OperationCanceledException(write.CancellationToken));
            else
                batch.Add(write);
        }
    }
}
