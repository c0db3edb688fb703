using System.Data.Common;
using System.Globalization;
using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.ObjectStorage.Management;

/// <summary>A scope's object storage usage this month, and what it has cost so far (posted or not).</summary>
internal sealed record ObjectStorageUsageSummary(long StoredBytes, long PeakBytes, long Requests, long MonthStart, long ChargedMicros, long PendingMicros);

/// <summary>
/// Counts what object storage bills and turns it into ledger entries.
/// <para>
/// Requests and stored-byte changes arrive on every S3 call, so they are buffered in memory per
/// scope and written in one batch every <see cref="ObjectStorageOptions.MeterFlushSeconds"/> (and at
/// shutdown): one small write per second per replica instead of one per request. Replicas add their
/// own deltas, so their counts sum. The buffer also keeps each scope's highest running delta, so a
/// peak reached and undone between two flushes still counts toward the month's peak. A crash loses at
/// most one flush interval of counts: its requests go unbilled, and its stored-byte deltas are
/// recovered when the engine starts again, by <see cref="ReconcileStoredBytesAsync"/>, which sets
/// each scope's stored bytes to what its rows hold (so the loss never accumulates across months).
/// </para>
/// <para>
/// Billing (spec §4.4: $0.05 per GB-month on the month's peak stored size, $0.005 per 1,000 requests):
/// per UTC calendar month, as cumulative functions of time like clusters' and volumes' (see
/// <see cref="Ledger"/>), so charges telescope however often the sweep runs:
/// storage(t) = ⌊peak GB so far × price × (t − period start) / month length⌋ and
/// requests(t) = ⌊requests × price / 1000⌋. The period starts at the month's start, or when object
/// storage was first enabled that month. At the month's end the month has cost exactly peak × price
/// (prorated only for a first partial month) plus its requests, which is TensorPool's rule; during the
/// month the balance goes down steadily instead of all at once at the end. When the peak rises the
/// elapsed part of the month is charged at the new peak at once: the month's bill is its peak, wherever
/// in the month it fell. GB is 10^9 bytes.
/// </para>
/// </summary>
internal sealed class ObjectStorageMeter(Database db, TimeProvider clock, IOptions<ObjectStorageOptions> options, IOptions<BillingOptions> billing,
    ILogger<ObjectStorageMeter> log, IBucketCatalog? buckets = null) : BackgroundService, IObjectStorageMeter
{
    private const long BytesPerGb = 1_000_000_000;
    public const string LedgerKind = "object_storage";

    private readonly Lock _gate = new();
    private Dictionary<string, Pending> _pending = new(StringComparer.Ordinal);

    private sealed class Pending
    {
        public long Requests;
        public long NetBytes;
        public long MaxPrefixBytes;
    }

    public ValueTask StoredBytesChangedAsync(string scopeId, long deltaBytes, CancellationToken ct)
    {
        lock (_gate)
        {
            var p = Entry(scopeId);
            p.NetBytes += deltaBytes;
            p.MaxPrefixBytes = Math.Max(p.MaxPrefixBytes, p.NetBytes);
        }
        return ValueTask.CompletedTask;
    }

    public void RequestServed(string scopeId)
    {
        lock (_gate)
            Entry(scopeId).Requests++;
    }

    private Pending Entry(string scopeId)
    {
        if (!_pending.TryGetValue(scopeId, out var p))
            _pending[scopeId] = p = new Pending();
        return p;
    }

    /// <summary>Writes what the buffer holds. A failed write puts it back for the next flush.</summary>
    public async Task FlushAsync(CancellationToken ct = default)
    {
        Dictionary<string, Pending> batch;
        lock (_gate)
        {
            if (_pending.Count == 0)
                return;
            batch = _pending;
            _pending = new Dictionary<string, Pending>(StringComparer.Ordinal);
        }
        var now = clock.Now();
        try
        {
            await db.WriteAsync(async (c, t) =>
            {
                // Scopes in one order, so two replicas' batches cannot wait on each other's locks in a cycle.
                foreach (var (scopeId, p) in batch.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    await db.LockAsync(c, t, LockKey(scopeId));
                    await EnsureUsageRowAsync(c, t, scopeId, now);
                    // A month that ended since the row was last written is closed first, so these counts land in this month.
                    await SettleAsync(c, t, scopeId, now, chargeCurrent: false);
                    await c.ExecuteAsync(
                        """
                        UPDATE object_storage_usage SET
                            peak_bytes = CASE WHEN stored_bytes + @MaxPrefixBytes > peak_bytes THEN stored_bytes + @MaxPrefixBytes ELSE peak_bytes END,
                            stored_bytes = CASE WHEN stored_bytes + @NetBytes < 0 THEN 0 ELSE stored_bytes + @NetBytes END,
                            requests = requests + @Requests
                        WHERE scope_id = @scopeId
                        """, new { scopeId, p.MaxPrefixBytes, p.NetBytes, p.Requests }, t);
                }
            }, ct);
        }
        catch
        {
            lock (_gate)
            {
                foreach (var (scopeId, p) in batch)
                {
                    var e = Entry(scopeId);
                    e.MaxPrefixBytes = Math.Max(p.MaxPrefixBytes, p.NetBytes + e.MaxPrefixBytes);
                    e.NetBytes += p.NetBytes;
                    e.Requests += p.Requests;
                }
            }
            throw;
        }
    }

    /// <summary>
    /// Sets every scope's stored bytes to what its objects and parts hold, raising the month's peak
    /// if the truth is above it. Run at startup: deltas a crashed engine never flushed are the only
    /// lasting error in the running count. Another replica's unflushed deltas (at most one flush
    /// interval of writes) land on top and are off by that much until this runs again.
    /// Returns the number of scopes whose count was corrected.
    /// </summary>
    public async Task<int> ReconcileStoredBytesAsync(CancellationToken ct = default)
    {
        if (buckets is null)
            return 0;
        await FlushAsync(ct);
        var corrected = 0;
        var scopes = await db.ReadAsync(c => c.QueryAsync<string>("SELECT scope_id FROM object_storage_usage ORDER BY scope_id"), ct);
        foreach (var scopeId in scopes)
        {
            var truth = await buckets.StoredBytesAsync(scopeId, ct);
            corrected += await db.WriteAsync(async (c, t) =>
            {
                await db.LockAsync(c, t, LockKey(scopeId));
                return await c.ExecuteAsync(
                    """
                    UPDATE object_storage_usage SET stored_bytes = @truth,
                        peak_bytes = CASE WHEN @truth > peak_bytes THEN @truth ELSE peak_bytes END
                    WHERE scope_id = @scopeId AND stored_bytes <> @truth
                    """, new { scopeId, truth }, t);
            }, ct);
        }
        if (corrected > 0)
            log.LogWarning("Object storage metering: stored bytes of {Scopes} scope(s) corrected to what their objects hold (counts lost in a crash)", corrected);
        return corrected;
    }

    /// <summary>Flushes, then posts every scope's usage up to now to its account's ledger.</summary>
    public async Task SweepOnceAsync(CancellationToken ct = default)
    {
        await FlushAsync(ct);
        var now = clock.Now();
        var scopes = await db.ReadAsync(c => c.QueryAsync<string>("SELECT scope_id FROM object_storage_usage ORDER BY scope_id"), ct);
        foreach (var scopeId in scopes)
        {
            // One transaction per scope: a sweep over many scopes holds no lock for long.
            await db.WriteAsync(async (c, t) =>
            {
                await db.LockAsync(c, t, LockKey(scopeId));
                await SettleAsync(c, t, scopeId, now, chargeCurrent: true);
            }, ct);
        }
    }

    /// <summary>The scope's usage this month and its cost, posted and pending; null before it was ever enabled.</summary>
    public async Task<ObjectStorageUsageSummary?> SummaryAsync(string scopeId, CancellationToken ct)
    {
        var row = await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<UsageRow>(UsageSql, new { scopeId }), ct);
        if (row is null)
            return null;
        var (charges, current) = Settle(row, clock.Now(), options.Value);
        var pending = charges.Sum(ch => ch.Micros);
        return new ObjectStorageUsageSummary(current.StoredBytes, current.PeakBytes, current.Requests, current.MonthStart,
            current.BilledStorageMicros + current.BilledRequestMicros, pending);
    }

    internal static Task EnsureUsageRowAsync(DbConnection c, DbTransaction t, string scopeId, long now) =>
        c.ExecuteAsync(
            """
            INSERT INTO object_storage_usage (scope_id, month_start, period_start) VALUES (@scopeId, @monthStart, @now)
            ON CONFLICT (scope_id) DO NOTHING
            """, new { scopeId, monthStart = MonthStart(now), now }, t);

    /// <summary>Posts what is due (closing any months that ended) and stores the row as of now, in the caller's transaction.</summary>
    private async Task SettleAsync(DbConnection c, DbTransaction t, string scopeId, long now, bool chargeCurrent)
    {
        var row = await c.QuerySingleOrDefaultAsync<UsageRow>(UsageSql, new { scopeId }, t);
        if (row is null)
            return;
        if (!chargeCurrent && MonthEnd(row.MonthStart) > now)
            return;
        // A flush closes only months that ended; the current month's accrual is left to the sweep.
        var (charges, after) = Settle(row, now, options.Value, includeCurrent: chargeCurrent);
        var account = AccountOf(scopeId);
        foreach (var charge in charges)
            await Ledger.PostAsync(c, t, account, account.Kind == "user" ? account.Id : null, "object-storage:" + scopeId, LedgerKind,
                -charge.Micros, charge.PeriodStart, charge.PeriodEnd, charge.Description, now);
        await c.ExecuteAsync(
            """
            UPDATE object_storage_usage SET month_start = @MonthStart, period_start = @PeriodStart, peak_bytes = @PeakBytes, requests = @Requests,
                billed_storage_micros = @BilledStorageMicros, billed_request_micros = @BilledRequestMicros
            WHERE scope_id = @ScopeId
            """, after, t);
    }

    internal sealed record Charge(long Micros, long PeriodStart, long PeriodEnd, string Description);

    /// <summary>
    /// Pure: the ledger entries due for <paramref name="row"/> at <paramref name="now"/>, and the row
    /// after them. Each month that ended is closed at its end (the following months start with their
    /// peak at the bytes then stored and no requests); the current month is charged up to now.
    /// </summary>
    internal static (List<Charge> Charges, UsageRow After) Settle(UsageRow row, long now, ObjectStorageOptions prices, bool includeCurrent = true)
    {
        var charges = new List<Charge>();
        var current = row;
        while (MonthEnd(current.MonthStart) <= now)
        {
            var end = MonthEnd(current.MonthStart);
            AddDue(charges, current, end, prices, final: true);
            current = current with
            {
                MonthStart = end, PeriodStart = end, PeakBytes = current.StoredBytes, Requests = 0, BilledStorageMicros = 0, BilledRequestMicros = 0,
            };
        }
        if (includeCurrent)
        {
            var (storage, requests) = AddDue(charges, current, now, prices, final: false);
            current = current with { BilledStorageMicros = storage, BilledRequestMicros = requests };
        }
        return (charges, current);
    }

    private static (long Storage, long Requests) AddDue(List<Charge> charges, UsageRow row, long upTo, ObjectStorageOptions prices, bool final)
    {
        var storage = StorageAccrued(row.PeakBytes, prices, row.PeriodStart, upTo, row.MonthStart);
        var requests = RequestsAccrued(row.Requests, prices);
        var month = DateTimeOffset.FromUnixTimeMilliseconds(row.MonthStart).ToString("yyyy-MM", CultureInfo.InvariantCulture);
        // Never negative: a peak only rises within a month, and so does the elapsed part.
        if (storage > row.BilledStorageMicros)
            charges.Add(new Charge(storage - row.BilledStorageMicros, row.PeriodStart, upTo,
                string.Create(CultureInfo.InvariantCulture, $"Object storage {month}: peak {row.PeakBytes / (double)BytesPerGb:0.###} GB{(final ? " (month closed)" : "")}")));
        if (requests > row.BilledRequestMicros)
            charges.Add(new Charge(requests - row.BilledRequestMicros, row.PeriodStart, upTo,
                string.Create(CultureInfo.InvariantCulture, $"Object storage {month}: {row.Requests:N0} requests")));
        return (Math.Max(storage, row.BilledStorageMicros), Math.Max(requests, row.BilledRequestMicros));
    }

    /// <summary>Micro-dollars for holding <paramref name="peakBytes"/> from the period's start to <paramref name="upTo"/> of the month.</summary>
    internal static long StorageAccrued(long peakBytes, ObjectStorageOptions prices, long periodStart, long upTo, long monthStart)
    {
        var monthMs = MonthEnd(monthStart) - monthStart;
        var elapsed = Math.Clamp(upTo - periodStart, 0, monthMs);
        return (long)((Int128)peakBytes * Ledger.ToMicros(prices.PricePerGbMonthUsd) * elapsed / ((Int128)BytesPerGb * monthMs));
    }

    internal static long RequestsAccrued(long requests, ObjectStorageOptions prices) =>
        (long)((Int128)requests * Ledger.ToMicros(prices.PricePer1000RequestsUsd) / 1000);

    /// <summary>Whose balance pays for a scope: the organization's, or the user's for <c>user:&lt;id&gt;</c>.</summary>
    public static BillingAccount AccountOf(string scopeId) =>
        scopeId.StartsWith("user:", StringComparison.Ordinal) ? new BillingAccount("user", scopeId[5..]) : new BillingAccount("org", scopeId);

    public static long MonthStart(long unixMs)
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(unixMs);
        return new DateTimeOffset(at.Year, at.Month, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
    }

    public static long MonthEnd(long monthStart) =>
        DateTimeOffset.FromUnixTimeMilliseconds(monthStart).AddMonths(1).ToUnixTimeMilliseconds();

    private static string LockKey(string scopeId) => "object-storage-usage:" + scopeId;

    private const string UsageSql =
        """
        SELECT scope_id AS ScopeId, stored_bytes AS StoredBytes, month_start AS MonthStart, period_start AS PeriodStart, peak_bytes AS PeakBytes,
               requests AS Requests, billed_storage_micros AS BilledStorageMicros, billed_request_micros AS BilledRequestMicros
        FROM object_storage_usage WHERE scope_id = @scopeId
        """;

    internal sealed record UsageRow
    {
        public string ScopeId { get; init; } = "";
        public long StoredBytes { get; init; }
        public long MonthStart { get; init; }
        public long PeriodStart { get; init; }
        public long PeakBytes { get; init; }
        public long Requests { get; init; }
        public long BilledStorageMicros { get; init; }
        public long BilledRequestMicros { get; init; }
    }

    /// <summary>
    /// Reconciles before the engine takes requests (hosted services start before the server), so no
    /// write of this replica can be counted both in the rows and in a delta flushed after them.
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await ReconcileStoredBytesAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            log.LogWarning(ex, "Object storage metering could not check stored bytes against the objects; it goes on with the running count");
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var flushEvery = TimeSpan.FromSeconds(Math.Max(0.05, options.Value.MeterFlushSeconds));
        var sweepEvery = TimeSpan.FromSeconds(billing.Value.SweepSeconds);
        using var timer = new PeriodicTimer(flushEvery, clock);
        var lastSweep = clock.GetUtcNow();
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    if (clock.GetUtcNow() - lastSweep >= sweepEvery)
                    {
                        lastSweep = clock.GetUtcNow();
                        await SweepOnceAsync(stoppingToken);
                    }
                    else
                    {
                        await FlushAsync(stoppingToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    log.LogWarning(ex, "Object storage metering failed; the counts stay buffered until the next try");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await FlushAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            log.LogWarning(ex, "Object storage metering could not write its last counts at shutdown");
        }
    }
}
