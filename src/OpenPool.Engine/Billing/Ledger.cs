using System.Data.Common;
using Dapper;

namespace OpenPool.Engine.Billing;

/// <summary>Whose balance pays: the organization's for its members, otherwise the user's own.</summary>
internal readonly record struct BillingAccount(string Kind, string Id)
{
    public static BillingAccount Of(string userId, string? orgId) => orgId is null ? new("user", userId) : new("org", orgId);

    public string Table => Kind == "org" ? "orgs" : "users";
}

/// <summary>
/// Money in micro-dollars. Usage is metered as a cumulative function of time since the resource
/// started costing money, C(t) = ⌊rate × elapsed⌋, and each charge is C(now) − what was already
/// charged. Charges therefore telescope: however often the meter is read, the sum is exactly C(end).
/// </summary>
internal static class Ledger
{
    public const long MicrosPerUsd = 1_000_000;

    /// <summary>
    /// The largest amount any input may name (a balance, a credit, a threshold): far beyond any real
    /// account, and far inside a 64-bit micro-dollar count, so sums and comparisons cannot overflow.
    /// </summary>
    public const decimal MaxAmountUsd = 1_000_000_000m;
    private const long MsPerHour = 3_600_000;

    public static long ToMicros(decimal usd) => (long)decimal.Round(usd * MicrosPerUsd, MidpointRounding.AwayFromZero);
    public static decimal ToUsd(long micros) => micros / (decimal)MicrosPerUsd;

    /// <summary>Micro-dollars accrued by a cluster costing <paramref name="microsPerHour"/> over the span.</summary>
    public static long ClusterAccrued(long microsPerHour, long startMs, long endMs) =>
        (long)((Int128)microsPerHour * Math.Max(0, endMs - startMs) / MsPerHour);

    /// <summary>Micro-dollars accrued by a volume of <paramref name="sizeGb"/> over the span.</summary>
    public static long VolumeAccrued(int sizeGb, BillingOptions options, long startMs, long endMs) =>
        (long)((Int128)sizeGb * ToMicros(options.StoragePricePerGbMonthUsd) * Math.Max(0, endMs - startMs) / ((Int128)options.HoursPerMonth * MsPerHour));

    public static long VolumeMicrosPerHour(int sizeGb, BillingOptions options) =>
        (long)((Int128)sizeGb * ToMicros(options.StoragePricePerGbMonthUsd) / options.HoursPerMonth);

    /// <summary>Adds a ledger entry and moves the account's balance by the same amount, in the caller's transaction.</summary>
    public static async Task PostAsync(DbConnection c, DbTransaction t, BillingAccount account, string? userId, string? resourceId,
        string kind, long amountMicros, long? periodStart, long? periodEnd, string description, long now)
    {
        if (amountMicros == 0)
            return;
        // The account's kind is named apart from @kind: Npgsql matches parameter names case-insensitively,
        // so @Kind and @kind were one parameter and PostgreSQL ledger rows got the account's kind as their own.
        await c.ExecuteAsync(
            """
            INSERT INTO ledger (account_kind, account_id, user_id, resource_id, kind, amount_micros, period_start, period_end, description, created_at)
            VALUES (@accountKind, @accountId, @userId, @resourceId, @kind, @amountMicros, @periodStart, @periodEnd, @description, @now)
            """, new { accountKind = account.Kind, accountId = account.Id, userId, resourceId, kind, amountMicros, periodStart, periodEnd, description, now }, t);
        await c.ExecuteAsync($"UPDATE {account.Table} SET balance_micros = balance_micros + @amountMicros WHERE id = @Id",
            new { amountMicros, account.Id }, t);
    }

    /// <summary>Charges a cluster's usage up to <paramref name="now"/> (or its end), if any is due.</summary>
    public static async Task ChargeClusterAsync(DbConnection c, DbTransaction t, string clusterId, long now)
    {
        var row = await c.QuerySingleOrDefaultAsync<Metered>(
            """
            SELECT id, user_id AS UserId, org_id AS OrgId, price_micros_per_hour AS MicrosPerHour, billing_started_at AS StartedAt,
                   billing_ended_at AS EndedAt, billed_until AS BilledUntil, billed_micros AS BilledMicros, 0 AS SizeGb
            FROM clusters WHERE id = @clusterId
            """, new { clusterId }, t);
        if (row?.StartedAt is not { } start)
            return;
        var end = Math.Min(now, row.EndedAt ?? now);
        var total = ClusterAccrued(row.MicrosPerHour, start, end);
        var due = total - row.BilledMicros;
        if (due <= 0)
            return;
        await PostAsync(c, t, BillingAccount.Of(row.UserId, row.OrgId), row.UserId, clusterId, "cluster", -due, row.BilledUntil ?? start, end,
            $"Cluster {clusterId}", now);
        await c.ExecuteAsync("UPDATE clusters SET billed_micros = @total, billed_until = @end WHERE id = @clusterId", new { total, end, clusterId }, t);
    }

    /// <summary>Charges a volume's usage up to <paramref name="now"/> (or its end), if any is due.</summary>
    public static async Task ChargeVolumeAsync(DbConnection c, DbTransaction t, string volumeId, BillingOptions options, long now)
    {
        var row = await c.QuerySingleOrDefaultAsync<Metered>(
            """
            SELECT id, user_id AS UserId, org_id AS OrgId, 0 AS MicrosPerHour, billing_started_at AS StartedAt, billing_ended_at AS EndedAt,
                   billed_until AS BilledUntil, billed_micros AS BilledMicros, size_gb AS SizeGb
            FROM volumes WHERE id = @volumeId
            """, new { volumeId }, t);
        if (row?.StartedAt is not { } start)
            return;
        var end = Math.Min(now, row.EndedAt ?? now);
        var total = VolumeAccrued(row.SizeGb, options, start, end);
        var due = total - row.BilledMicros;
        if (due <= 0)
            return;
        await PostAsync(c, t, BillingAccount.Of(row.UserId, row.OrgId), row.UserId, volumeId, "storage", -due, row.BilledUntil ?? start, end,
            $"Volume {volumeId} ({row.SizeGb} GB)", now);
        await c.ExecuteAsync("UPDATE volumes SET billed_micros = @total, billed_until = @end WHERE id = @volumeId", new { total, end, volumeId }, t);
    }

    /// <summary>
    /// The account's balance as of <paramref name="now"/>: the stored balance less usage accrued
    /// since the meters were last written, so it is current without waiting for the next sweep.
    /// One small read, however many resources run: the accrual comes from the account's running sums
    /// (<c>account_meters</c>, kept by triggers; migration 0006 explains the split into high and low
    /// parts). Being the floor of a sum rather than a sum of floors, it can exceed what the next
    /// charges will post by under a micro-dollar per running resource.
    /// </summary>
    public static async Task<long> BalanceMicrosAsync(DbConnection c, DbTransaction? t, BillingAccount account, BillingOptions options, long now) =>
        BalanceMicros(await c.QuerySingleOrDefaultAsync<AccountMeter>(BalanceSql(account), new { account.Kind, account.Id }, t), options, now);

    /// <summary>
    /// The read behind <see cref="BalanceMicrosAsync"/>, for a caller that sends it with its own
    /// reads in one round trip; its parameters are <c>@Kind</c> and <c>@Id</c>, the account's.
    /// </summary>
    public static string BalanceSql(BillingAccount account) => account.Kind == "org" ? OrgBalanceSql : UserBalanceSql;

    private const string BalanceSelect =
        """
        SELECT a.balance_micros AS BalanceMicros,
               CAST(COALESCE(SUM(m.cluster_rate), 0) AS BIGINT) AS ClusterRate, CAST(COALESCE(SUM(m.cluster_high), 0) AS BIGINT) AS ClusterHigh,
               CAST(COALESCE(SUM(m.cluster_low), 0) AS BIGINT) AS ClusterLow, CAST(COALESCE(SUM(m.volume_gb), 0) AS BIGINT) AS VolumeGb,
               CAST(COALESCE(SUM(m.volume_high), 0) AS BIGINT) AS VolumeHigh, CAST(COALESCE(SUM(m.volume_low), 0) AS BIGINT) AS VolumeLow
        FROM
        """;

    private const string BalanceJoin =
        " a LEFT JOIN account_meters m ON m.account_kind = @Kind AND m.account_id = a.id WHERE a.id = @Id GROUP BY a.balance_micros";

    private const string UserBalanceSql = BalanceSelect + " users" + BalanceJoin;
    private const string OrgBalanceSql = BalanceSelect + " orgs" + BalanceJoin;

    /// <summary>The balance from the row <see cref="BalanceSql"/> read (null: no such account, no money).</summary>
    public static long BalanceMicros(AccountMeter? row, BillingOptions options, long now)
    {
        if (row is null)
            return 0;
        var clusters = Accrued(row.ClusterRate, row.ClusterHigh, row.ClusterLow, now) / MsPerHour;
        var volumes = Accrued(row.VolumeGb, row.VolumeHigh, row.VolumeLow, now) * ToMicros(options.StoragePricePerGbMonthUsd)
                      / ((Int128)options.HoursPerMonth * MsPerHour);
        return row.BalanceMicros - (long)(clusters + volumes);
    }

    /// <summary>Σ rate × (now − since) from Σ rate and the split Σ rate × since (see migration 0006), in 128 bits.</summary>
    private static Int128 Accrued(long rate, long high, long low, long now) =>
        (Int128)rate * now - (((Int128)high << 20) + low);

    internal sealed class AccountMeter
    {
        public long BalanceMicros { get; set; }
        public long ClusterRate { get; set; }
        public long ClusterHigh { get; set; }
        public long ClusterLow { get; set; }
        public long VolumeGb { get; set; }
        public long VolumeHigh { get; set; }
        public long VolumeLow { get; set; }
    }

    private sealed class Metered
    {
        public string Id { get; set; } = "";
        public string UserId { get; set; } = "";
        public string? OrgId { get; set; }
        public long MicrosPerHour { get; set; }
        public long? StartedAt { get; set; }
        public long? EndedAt { get; set; }
        public long? BilledUntil { get; set; }
        public long BilledMicros { get; set; }
        public int SizeGb { get; set; }
    }
}
