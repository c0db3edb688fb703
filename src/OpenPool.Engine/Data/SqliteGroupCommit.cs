using System.Data.Common;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace OpenPool.Engine.Data;

/// <summary>
/// SQLite's one writer, with group commit. Writes queue here; one loop takes every write waiting at
/// that moment (up to <see cref="MaxBatch"/>), runs each inside its own savepoint of one transaction,
/// and commits them together. A write that throws is rolled back to its savepoint alone, so it
/// fails exactly as if it had its own transaction. No caller learns its result before the commit
/// that made it durable. Under load this turns a commit, a lock hand-off and a thread hop per write
/// into one per batch; with a single caller it behaves like a plain transaction per write.
/// The writer does not checkpoint the WAL itself (its connection sets wal_autocheckpoint=0): copying
/// pages back into the database file, with its fsync, runs on a connection of its own a moment after
/// commits, on the other core, instead of inside whichever commit crossed the threshold.
/// </summary>
internal sealed class SqliteGroupCommit : IDisposable
{
    // Bounds how long the first write of a batch waits for the commit while later ones run.
    private const int MaxBatch = 64;
    private const string Savepoint = "SAVEPOINT write";
    private const string ReleaseSavepoint = "RELEASE write";
    private const string RollbackToSavepoint = "ROLLBACK TO write";

    private readonly Channel<IQueuedWrite> _queue =
        Channel.CreateUnbounded<IQueuedWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly Task _loop;
    private StatementCachingConnection? _connection;

    // Commits since the last checkpoint wake the checkpointer, which then waits this long so that
    // one checkpoint covers many commits.
    private static readonly TimeSpan CheckpointDelay = TimeSpan.FromMilliseconds(200);
    private readonly SemaphoreSlim _checkpointDue = new(0, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Thread _checkpointer;

    public SqliteGroupCommit(Func<CancellationToken, Task<SqliteConnection>> open)
    {
        _open = open;
        _loop = Task.Run(RunAsync);
        _checkpointer = new Thread(CheckpointLoop) { IsBackground = true, Name = "SQLite checkpoint" };
        _checkpointer.Start();
    }

    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct) =>
        QueuedWrites.Enqueue(_queue.Writer, work, ct);

    private async Task RunAsync()
    {
        var batch = new List<IQueuedWrite>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            QueuedWrites.TakeBatch(_queue.Reader, batch, MaxBatch);
            if (batch.Count > 0)
                await CommitAsync(batch);
        }
    }

    private async Task CommitAsync(List<IQueuedWrite> batch)
    {
        try
        {
            _connection ??= new StatementCachingConnection(await _open(CancellationToken.None));
            using var transaction = _connection.Inner.BeginTransaction(deferred: false);
            foreach (var write in batch)
            {
                Execute(transaction, Savepoint);
                try
                {
                    await write.RunAsync(_connection, transaction);
                    Execute(transaction, ReleaseSavepoint);
                }
                catch (Exception ex)
                {
                    // Rolling back to the savepoint undoes this write alone; should that fail too,
                    // the transaction is lost and the outer handler fails the whole batch.
                    Execute(transaction, RollbackToSavepoint);
                    Execute(transaction, ReleaseSavepoint);
                    write.Fail(ex);
                }
            }
            transaction.Commit();
        }
        catch (Exception ex)
        {
            // Nothing in the batch committed (a broken connection, I/O error, full disk): every write
            // not already failed on its own fails with this, and the next batch starts on a fresh
            // connection.
            foreach (var write in batch)
                write.Fail(ex);
            _connection?.Dispose();
            _connection = null;
            return;
        }
        foreach (var write in batch)
            write.Complete();
        if (_checkpointDue.CurrentCount == 0)
        {
            try { _checkpointDue.Release(); }
            catch (SemaphoreFullException) { } // already due
        }
    }

    // A thread of its own: a checkpoint blocks for as long as its copying and fsync take, and on a
    // two-core machine the thread pool starts with two threads, which HTTP and the writer need.
    private void CheckpointLoop()
    {
        SqliteConnection? connection = null;
        try
        {
            while (true)
            {
                _checkpointDue.Wait(_stopping.Token);
                if (_stopping.Token.WaitHandle.WaitOne(CheckpointDelay))
                    return;
                try
                {
                    connection ??= _open(_stopping.Token).GetAwaiter().GetResult();
                    using var checkpoint = connection.CreateCommand();
                    // PASSIVE: copies what no reader still needs and never waits for the writer or readers.
                    checkpoint.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                    checkpoint.ExecuteNonQuery();
                }
                catch (SqliteException)
                {
                    // Left for the next round; the WAL keeps every page until then.
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            connection?.Dispose();
        }
    }

    // Savepoint statements run twice per write: straight on their prepared statements, without the
    // command wrapper Dapper's calls need.
    private void Execute(SqliteTransaction transaction, string sql)
    {
        var command = _connection!.CommandFor(sql, out var cached);
        command.Transaction = transaction;
        command.ExecuteNonQuery();
        if (!cached)
            command.Dispose();
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _loop.Wait(TimeSpan.FromSeconds(30));
        _stopping.Cancel();
        _checkpointer.Join(TimeSpan.FromSeconds(30));
        // The last connection to close checkpoints what is left.
        _connection?.Dispose();
        _stopping.Dispose();
        _checkpointDue.Dispose();
    }
}
