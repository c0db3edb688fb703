using System.Threading.Channels;
using Dapper;
using Npgsql;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Requests;

/// <summary>
/// Carries request wake-ups between replicas sharing one PostgreSQL: every local signal is sent as a
/// NOTIFY (batched, so a burst costs one statement), and every NOTIFY from any replica wakes this
/// replica's long-polls and idle worker. Without it a replica would only notice others' work at its
/// safety sweep.
/// </summary>
internal sealed class PostgresChangeFeed : BackgroundService
{
    public const string ChannelName = "openpool_requests";

    private readonly Database _db;
    private readonly RequestSignals _signals;
    private readonly ILogger<PostgresChangeFeed> _log;
    private readonly Channel<string> _outgoing = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    public PostgresChangeFeed(Database db, RequestSignals signals, ILogger<PostgresChangeFeed> log)
    {
        _db = db;
        _signals = signals;
        _log = log;
        if (db.IsPostgres)
            signals.Broadcast = id => _outgoing.Writer.TryWrite(id);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        _db.IsPostgres ? Task.WhenAll(ListenAsync(stoppingToken), PublishAsync(stoppingToken)) : Task.CompletedTask;

    private async Task ListenAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = _db.CreateListenerConnection()!;
                connection.Notification += (_, e) => OnNotification(e.Payload);
                await connection.OpenAsync(ct);
                await connection.ExecuteAsync($"LISTEN {ChannelName}");
                // Anything missed while (re)connecting: let the worker and waiters look again.
                _signals.PulseWorkHere();
                while (!ct.IsCancellationRequested)
                    await connection.WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or IOException)
            {
                _log.LogWarning(ex, "Lost the LISTEN connection; reconnecting");
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
    }

    private void OnNotification(string payload)
    {
        if (payload == RequestSignals.WorkToken)
        {
            _signals.PulseWorkHere();
            return;
        }
        _signals.NotifyChangedHere(payload);
        _signals.PulseWorkHere(); // a request that changed may have unblocked the next one on its object
    }

    private async Task PublishAsync(CancellationToken ct)
    {
        var batch = new HashSet<string>();
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(ct))
            {
                while (batch.Count < 1000 && _outgoing.Reader.TryRead(out var id))
                    batch.Add(id);
                try
                {
                    await using var connection = await _db.OpenAsync(ct);
                    await connection.ExecuteAsync($"SELECT pg_notify('{ChannelName}', id) FROM unnest(@ids) AS id", new { ids = batch.ToArray() });
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                {
                    _log.LogWarning(ex, "Could not publish {Count} wake-ups; other replicas will see the changes at their next sweep", batch.Count);
                }
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }
}
