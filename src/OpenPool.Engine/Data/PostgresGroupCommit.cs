using System.Data;
using System.Data.Common;
using System.Threading.Channels;
using Npgsql;

namespace OpenPool.Engine.Data;

/// <summary>
/// PostgreSQL writes with group commit. Writes queue here; a few committer loops, each on a
/// connection of its own, take every write waiting at that moment (up to <see cref="MaxBatch"/>),
/// run each inside its own savepoint of one transaction, and commit them together. A write that
/// throws is rolled back to its savepoint alone and fails as if it had its own transaction; no
/// caller learns its result before the commit that made it durable.
/// Why: a claim is three write transactions of a few statements each, and on a two-core machine the
/// round trips and per-commit work, not the statements, were most of PostgreSQL's CPU (a perf
/// profile of bench/run.sh --only claims-postgres: a fifth of all samples in PostgreSQL's kernel
/// side). Npgsql sends a savepoint along with the write's first statement, so a write in a batch
/// costs only its own statements.
/// Batches of different loops (and replicas) hold their row locks until they commit, so two of them
/// can wait on each other. PostgreSQL breaks such a cycle by failing one statement; that write is
/// rolled back to its savepoint and queued again once its batch has committed and released its
/// locks, instead of failing its caller.
/// </summary>
internal sealed class PostgresGroupCommit : IDisposable
{
    // A savepoint that writes takes a subtransaction id; past 64 in one transaction PostgreSQL's
    // per-backend cache overflows and every other backend's snapshot checks get slower.
    private const int MaxBatch = 32;
    private const int MaxLockRetries = 5;
    private const string Savepoint = "write";

    private readonly Channel<IQueuedWrite> _queue = Channel.CreateUnbounded<IQueuedWrite>();
    private readonly Func<int, CancellationToken, Task<NpgsqlConnection>> _open;
    private readonly Task[] _committers;

    /// <param name="open">Opens committer <c>i</c>'s connection (it stays open for the loop's life).</param>
    /// <param name="committers">How many batches may be open at once.</param>
    public PostgresGroupCommit(Func<int, CancellationToken, Task<NpgsqlConnection>> open, int committers)
    {
        _open = open;
        _committers = Enumerable.Range(0, committers).Select(i => Task.Run(() => RunAsync(i))).ToArray();
    }

    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct) =>
        QueuedWrites.Enqueue(_queue.Writer, work, ct);

    private async Task RunAsync(int index)
    {
        NpgsqlConnection? connection = null;
        var batch = new List<IQueuedWrite>(MaxBatch);
        var retry = new List<IQueuedWrite>();
        try
        {
            while (await _queue.Reader.WaitToReadAsync())
            {
                QueuedWrites.TakeBatch(_queue.Reader, batch, MaxBatch);
                if (batch.Count == 0)
                    continue;
                retry.Clear();
                connection = await CommitAsync(index, connection, batch, retry);
                // Only now, with this batch's locks released, can a write that lost a lock cycle to
                // another batch succeed.
                foreach (var write in retry)
                {
                    if (!_queue.Writer.TryWrite(write))
                        write.Fail(QueuedWrites.ShuttingDown());
                }
            }
        }
        finally
        {
            if (connection is not null)
                await connection.DisposeAsync();
        }
    }

    /// <returns>The connection to use for the next batch (null: open a fresh one).</returns>
    private async Task<NpgsqlConnection?> CommitAsync(int index, NpgsqlConnection? connection, List<IQueuedWrite> batch, List<IQueuedWrite> retry)
    {
        try
        {
            connection ??= await _open(index, CancellationToken.None);
            var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted);
            foreach (var write in batch)
            {
                // Not released after the write: RELEASE would cost a round trip, and savepoints of
                // one name simply nest; ROLLBACK TO returns to the innermost, this write's.
                transaction.Save(Savepoint);
                try
                {
                    await write.RunAsync(connection, transaction);
                }
                catch (Exception ex)
                {
                    // Should this fail too, the transaction is lost and the handler below fails the batch.
                    await transaction.RollbackAsync(Savepoint);
                    if (IsLockConflict(ex) && write.Retries < MaxLockRetries)
                    {
                        write.Retries++;
                        retry.Add(write);
                    }
                    else
                    {
                        write.Fail(ex);
                    }
                }
            }
            await transaction.CommitAsync();
            await transaction.DisposeAsync();
        }
        catch (Exception ex)
        {
            // Nothing in the batch committed (a broken connection, the server restarting): every
            // write not already failed on its own fails with this, and the next batch starts on a
            // fresh connection.
            foreach (var write in batch)
                write.Fail(ex);
            retry.Clear();
            if (connection is not null)
                await connection.DisposeAsync();
            return null;
        }
        foreach (var write in batch)
        {
            if (!retry.Contains(write))
                write.Complete();
        }
        return connection;
    }

    /// <summary>Errors that say the write met another transaction's locks, not that it was wrong.</summary>
    private static bool IsLockConflict(Exception ex) =>
        ex is PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.LockNotAvailable or PostgresErrorCodes.SerializationFailure };

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        Task.WaitAll(_committers, TimeSpan.FromSeconds(30));
    }
}
