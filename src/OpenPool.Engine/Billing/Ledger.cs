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
        await c.ExecuteAsync(
            """
            INSERT INTO ledger (account_kind, account_id, user_id, resource_id, kind, amount_micros, period_start, period_end, description, created_at)
            VALUES (@Kind, @Id, @userId, @resourceId, @kind, @amountMicros, @periodStart, @periodEnd, @description, @now)
            """, new { account.Kind, account.Id, userId, resourceId, kind, amountMicros, periodStart, periodEnd, description, now }, t);
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
    /// since the meter was last written, so it is current without waiting for the next sweep.
    /// </summary>
    public static async Task<long> BalanceMicrosAsync(DbConnection c, DbTransaction? t, BillingAccount account, BillingOptions options, long now)
    {
        var stored = await c.ExecuteScalarAsync<long?>($"SELECT balance_micros FROM {account.Table} WHERE id = @Id", new { account.Id }, t) ?? 0;
        var owner = account.Kind == "org" ? "org_id = @Id" : "user_id = @Id AND org_id IS NULL";
        // Summed in SQL over the time since each meter was last written (at most a sweep interval,
        // so the products stay far from overflow), one round trip however many resources run. It
        // can differ from the next charge by under a micro-dollar of rounding per resource.
        var clusters = await c.ExecuteScalarAsync<long?>(
            $"""
            SELECT SUM((price_micros_per_hour * (@now - billed_until)) / {MsPerHour})
            FROM clusters WHERE {owner} AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL
            """, new { account.Id, now }, t) ?? 0;
        var gbMonthMicros = ToMicros(options.StoragePricePerGbMonthUsd);
        var volumes = await c.ExecuteScalarAsync<long?>(
            $"""
            SELECT SUM((size_gb * @gbMonthMicros * (@now - billed_until)) / @perMonthMs)
            FROM volumes WHERE {owner} AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL
            """, new { account.Id, now, gbMonthMicros, perMonthMs = (long)options.HoursPerMonth * MsPerHour }, t) ?? 0;
        var pending = clusters + volumes;
        return stored - pending;
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
