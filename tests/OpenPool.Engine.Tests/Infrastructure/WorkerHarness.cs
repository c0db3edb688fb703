using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Providers.Simulated;
using OpenPool.Engine.Requests;
using OpenPool.Engine.Storage;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// The request model's parts wired by hand on a real SQLite file and a <see cref="FakeTimeProvider"/>,
/// so worker rules are tested step by step without sleeping. "Crashing" a worker means dropping it
/// and building a new one on the same database, which is all a restarted process has.
/// </summary>
internal sealed class WorkerHarness : IDisposable
{
    private readonly TempDir _dir = new();

    private WorkerHarness(SimulatedOptions simulated, RequestOptions requests, BillingOptions billing, Database? db)
    {
        Simulated = simulated;
        RequestOptions = requests;
        Billing = billing;
        Db = db ?? Database.Sqlite(Path.Combine(_dir.Path, "openpool.db"));
        Requests = new RequestStore(Db);
        Clusters = new ClusterStore(Db, Clock, Options.Create(Billing));
        Accounts = new AccountStore(Db, Clock, Options.Create(Billing));
        Volumes = new VolumeStore(Db, Clock, Options.Create(Billing));
    }

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));
    public SimulatedOptions Simulated { get; }
    public RequestOptions RequestOptions { get; }
    public BillingOptions Billing { get; }
    public AccountStore Accounts { get; }
    public VolumeStore Volumes { get; }
    public Database Db { get; }
    public RequestStore Requests { get; }
    public ClusterStore Clusters { get; }
    public RequestSignals Signals { get; } = new();
    public Principal Owner { get; private set; } = null!;
    public long LeaseMs => (long)(RequestOptions.LeaseSeconds * 1000);

    public static async Task<WorkerHarness> CreateAsync(
        SimulatedOptions? simulated = null, RequestOptions? requests = null, BillingOptions? billing = null, decimal? balanceUsd = null, Database? db = null)
    {
        var harness = new WorkerHarness(
            simulated ?? new SimulatedOptions { ProvisionSeconds = 0, ReleaseSeconds = 0, VolumeSeconds = 0, RestartSeconds = 0 }, requests ?? new RequestOptions(),
            billing ?? new BillingOptions(), db);
        await Migrator.MigrateAsync(harness.Db, harness.Clock);
        var (userId, _) = await harness.Accounts.CreateUserAsync("owner@example.com", "lab", "admin", isOperator: false, CancellationToken.None, balanceUsd);
        harness.Owner = new Principal(userId, "owner@example.com", await harness.Db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT org_id FROM users")), "lab", "admin", false);
        return harness;
    }

    /// <summary>A provider as a fresh process would build it: no memory but the database.</summary>
    public SimulatedCloud NewCloud(Database? db = null)
    {
        var engine = new EngineOptions { DataDir = _dir.Path, DatabasePath = Db.SqlitePath };
        return TestLogins.Cloud(db ?? Db, Simulated, engine, Clock);
    }

    /// <summary>A worker as a separate replica would run it; pass another <see cref="Database"/> on the same PostgreSQL to make it one.</summary>
    public RequestWorker NewWorker(Database? db = null)
    {
        db ??= Db;
        var cloud = NewCloud(db);
        var requests = new RequestStore(db);
        var clusters = new ClusterStore(db, Clock, Options.Create(Billing));
        var volumes = new VolumeStore(db, Clock, Options.Create(Billing));
        IRequestHandler[] handlers =
        [
            new ClaimHandler(clusters, cloud), new ReleaseHandler(cloud), new EditHandler(),
            new StorageCreateHandler(volumes, cloud), new StorageDestroyHandler(volumes, cloud), new StorageEditHandler(volumes, cloud),
            new StorageAttachHandler(volumes, clusters, cloud), new StorageDetachHandler(clusters, cloud),
        ];
        return new RequestWorker(requests, db, handlers, Signals, Options.Create(RequestOptions), Clock, NullLogger<RequestWorker>.Instance);
    }

    public async Task<(string ClusterId, string RequestId)> CreateClusterAsync(string type = "1xH100", int nodes = 1)
    {
        var spec = new ClusterSpec(InstanceCatalog.Defaults().Single(t => t.Name == type), nodes, null, null, false);
        var (cluster, request) = await Clusters.CreateAsync(Owner, spec, CancellationToken.None);
        return (cluster.Id, request.Id);
    }

    public async Task<RequestRow> RequestAsync(string id) => (await Requests.GetAsync(id))!;

    public Task<long> CountAsync(string sql, object? args = null) => Db.ReadAsync(c => c.ExecuteScalarAsync<long>(sql, args));

    public Task<long> EffectsAsync(string kind, string objectId) =>
        CountAsync("SELECT COUNT(*) FROM sim_effects WHERE kind = @kind AND object_id = @objectId", new { kind, objectId });

    public void Dispose()
    {
        Db.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
