using System.Net;
using System.Net.Http.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.ObjectStorage.Management;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// $0.05 per GB-month on the month's peak and $0.005 per 1,000 requests (spec §4.4), exact to the
/// micro-dollar on a fake clock (the harness starts at 2026-11-28 12:00 UTC; November has 30 days).
/// </summary>
public abstract class ObjectStorageBillingTests(Backend backend)
{
    private const long Gb = 1_000_000_000;

    private async Task<(WorkerHarness H, ObjectStorageMeter Meter, string Scope)> CreateAsync()
    {
        var h = await WorkerHarness.CreateAsync(balanceUsd: 100, db: backend == Backend.Postgres ? Database.Postgres(PostgresServer.Instance.CreateDatabase()) : null);
        var meter = new ObjectStorageMeter(h.Db, h.Clock, Options.Create(new ObjectStorageOptions()), Options.Create(h.Billing), NullLogger<ObjectStorageMeter>.Instance);
        return (h, meter, ObjectStorageScope.Of(h.Owner));
    }

    private static Task<long> ChargedAsync(WorkerHarness h) =>
        h.CountAsync("SELECT COALESCE(-SUM(amount_micros), 0) FROM ledger WHERE kind = 'object_storage'");

    private static Task<long> BalanceAsync(WorkerHarness h) =>
        h.Db.ReadAsync(c => Ledger.BalanceMicrosAsync(c, null, BillingAccount.Of(h.Owner.UserId, h.Owner.OrgId), h.Billing, h.Clock.Now()));

    [Fact]
    public async Task The_months_peak_and_its_requests_are_charged_exactly_and_a_month_closes_at_its_end()
    {
        var (h, meter, scope) = await CreateAsync();
        using var _ = h;
        await meter.StoredBytesChangedAsync(scope, 10 * Gb, default);
        for (var i = 0; i < 2000; i++)
            meter.RequestServed(scope);
        await meter.SweepOnceAsync();
        Assert.Equal(10_000, await ChargedAsync(h)); // 2,000 requests; no time has passed yet for storage

        // One day at 10 GB: 10 × $0.05 × 1/30 of the month.
        h.Clock.Advance(TimeSpan.FromDays(1));
        await meter.SweepOnceAsync();
        Assert.Equal(10_000 + 16_666, await ChargedAsync(h));

        // 20 GB more, deleted again before any flush: the month's peak is still 30 GB.
        await meter.StoredBytesChangedAsync(scope, 20 * Gb, default);
        await meter.StoredBytesChangedAsync(scope, -20 * Gb, default);
        h.Clock.Advance(TimeSpan.FromDays(1));
        await meter.SweepOnceAsync();
        // The elapsed two days are now charged at the 30 GB peak: 30 × $0.05 × 2/30.
        Assert.Equal(10_000 + 100_000, await ChargedAsync(h));
        var usage = (await meter.SummaryAsync(scope, default))!;
        Assert.Equal(10 * Gb, usage.StoredBytes);
        Assert.Equal(30 * Gb, usage.PeakBytes);
        Assert.Equal(2000, usage.Requests);
        Assert.Equal(0, usage.PendingMicros);

        // Into December: November closes at 30 GB for its 2.5 days since enable (the first month is prorated
        // from when metering began), December starts at the 10 GB stored, with no requests.
        h.Clock.SetUtcNow(new DateTimeOffset(2026, 12, 2, 0, 0, 0, TimeSpan.Zero));
        meter.RequestServed(scope);
        await meter.SweepOnceAsync();
        var november = 125_000 + 10_000;
        var december = 500_000 / 31 + 5; // one day of 10 GB in a 31-day month, plus one request (5 micro-dollars)
        Assert.Equal(november + december, await ChargedAsync(h));
        usage = (await meter.SummaryAsync(scope, default))!;
        Assert.Equal(10 * Gb, usage.PeakBytes);
        Assert.Equal(1, usage.Requests);
        Assert.Equal(100_000_000 - november - december, await BalanceAsync(h));

        // Rows of the ledger say what they were for.
        var descriptions = await h.Db.ReadAsync(c => c.QueryAsync<string>("SELECT description FROM ledger WHERE kind = 'object_storage' ORDER BY seq"));
        Assert.Contains(descriptions, d => d.Contains("2026-11") && d.Contains("peak 30 GB"));
        Assert.Contains(descriptions, d => d.Contains("2026-11") && d.Contains("2,000 requests"));
    }

    [Fact]
    public async Task A_full_month_costs_its_peak_times_the_price_however_often_it_is_swept()
    {
        var (h, meter, scope) = await CreateAsync();
        using var _ = h;
        h.Clock.SetUtcNow(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        await meter.StoredBytesChangedAsync(scope, 3 * Gb, default);
        await meter.FlushAsync();
        for (var i = 0; i < 50; i++)
        {
            h.Clock.Advance(TimeSpan.FromHours(13) + TimeSpan.FromSeconds(7 * i));
            if (i == 20)
                await meter.StoredBytesChangedAsync(scope, 4 * Gb, default); // peak 7 GB from here
            await meter.SweepOnceAsync();
        }
        h.Clock.SetUtcNow(new DateTimeOffset(2027, 1, 1, 0, 0, 1, TimeSpan.Zero));
        await meter.SweepOnceAsync();
        var december = await h.CountAsync("SELECT COALESCE(-SUM(amount_micros), 0) FROM ledger WHERE kind = 'object_storage' AND period_end <= @end",
            new { end = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() });
        Assert.Equal(7 * 50_000, december); // 7 GB × $0.05
    }

    [Fact]
    public async Task Counts_buffered_on_two_meters_add_up_and_a_failed_flush_keeps_them()
    {
        var (h, meter, scope) = await CreateAsync();
        using var _ = h;
        var replica = new ObjectStorageMeter(h.Db, h.Clock, Options.Create(new ObjectStorageOptions()), Options.Create(h.Billing), NullLogger<ObjectStorageMeter>.Instance);
        for (var i = 0; i < 300; i++)
        {
            meter.RequestServed(scope);
            replica.RequestServed(scope);
        }
        await meter.StoredBytesChangedAsync(scope, 5 * Gb, default);
        await replica.StoredBytesChangedAsync(scope, 2 * Gb, default);
        await Task.WhenAll(meter.FlushAsync(), replica.FlushAsync());

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        meter.RequestServed(scope);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => meter.FlushAsync(cancelled.Token));
        await meter.FlushAsync();

        var usage = (await meter.SummaryAsync(scope, default))!;
        Assert.Equal(601, usage.Requests);
        Assert.Equal(7 * Gb, usage.StoredBytes);
        Assert.Equal(7 * Gb, usage.PeakBytes);
    }
}

public sealed class ObjectStorageBillingOnSqlite() : ObjectStorageBillingTests(Backend.Sqlite);

public sealed class ObjectStorageBillingOnPostgres() : ObjectStorageBillingTests(Backend.Postgres);

/// <summary><c>tp me</c> shows object storage: what is stored, the peak, the requests and the month's cost.</summary>
public sealed class UserInfoObjectStorageTests : IDisposable
{
    private readonly EngineFactory _engine = new();

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task Tp_me_has_an_object_storage_line()
    {
        var response = await _engine.Admin().PostAsJsonAsync("/admin/users", new { email = "admin@a.example", org_name = "lab-a", role = "admin", balance_usd = 50 });
        var admin = _engine.ClientWithKey((await response.Json()).GetProperty("api_key").GetString());
        Assert.Contains("Object storage:   not enabled", (await (await admin.GetAsync("/user/info")).Json()).GetProperty("message").GetString());

        var keys = await (await admin.PostAsync("/object-storage/enable", null)).Json();
        var scope = keys.GetProperty("org_id").GetString()!;
        var meter = _engine.Services.GetRequiredService<ObjectStorageMeter>();
        for (var i = 0; i < 1500; i++)
            _engine.Services.GetRequiredService<IObjectStorageMeter>().RequestServed(scope);
        await meter.StoredBytesChangedAsync(scope, 2 * 1_000_000_000L, default);
        await meter.FlushAsync();

        var info = await admin.GetAsync("/user/info");
        Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        var body = await info.Json();
        var message = body.GetProperty("message").GetString()!;
        Assert.Contains("Object storage:   2 GB stored (peak 2 GB), 1,500 requests, $0.01 this month", message);
        // 1,500 requests cost $0.0075 whether or not the sweep has posted them yet: the balance already shows it.
        Assert.True(body.GetProperty("user").GetProperty("balance_usd").GetDecimal() <= 50m - 0.0075m);
    }
}
