using Dapper;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Jobs;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Providers.Simulated;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Providers;

/// <summary>
/// The simulated cloud held to the provider contract: a scratch SQLite database and data directory
/// per case, a fake clock, and jobs in real bubblewrap sandboxes (the engine's default).
/// </summary>
public sealed class SimulatedCloudContractTests : CloudProviderContract, IDisposable
{
    private readonly TempDir _dir = new();
    // Started at the real time, not a fixed date: the job runtime compares the clock with the
    // modification times of its files, which the kernel stamps with the real one.
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private Database? _db;

    private protected override async Task<ICloudProvider> StartAsync()
    {
        _db = Database.Sqlite(Path.Combine(_dir.Path, "openpool.db"));
        await Migrator.MigrateAsync(_db, _clock);
        return Restart();
    }

    private protected override ICloudProvider Restart() => Build(transientRate: 0, permanentRate: 0);

    // Fault rates of 1 make the very next new provision meet the fault; it strikes before anything is reserved.
    private protected override ICloudProvider FailingNextProvision(ProgressState failure) => failure switch
    {
        ProgressState.TransientFailure => Build(transientRate: 1, permanentRate: 0),
        ProgressState.PermanentFailure => Build(transientRate: 0, permanentRate: 1),
        _ => throw new ArgumentOutOfRangeException(nameof(failure), failure, "only failures can be injected"),
    };

    private protected override Task AdvanceAsync(TimeSpan by)
    {
        _clock.Advance(by);
        return Task.CompletedTask;
    }

    private protected override Task<long> EffectsOfAsync(string requestId) =>
        _db!.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM sim_effects WHERE request_id = @requestId", new { requestId }));

    private protected override string PlaceSecretInEngineData(string secret)
    {
        var path = Path.Combine(_dir.Path, "contract-secret.txt");
        File.WriteAllText(path, secret);
        return path;
    }

    [Fact]
    public async Task Keys_installed_after_the_provision_replace_the_ones_it_was_given_on_every_node()
    {
        var provider = Restart();
        var provision = new ProvisionOrder("req-keys", "c-keys", "8xH100", ["i-keys-1", "i-keys-2"], 0, ["ssh-ed25519 AAAAfirst a@x"], "org-keys");
        Assert.Equal(ProgressState.InProgress, (await provider.ProvisionAsync(provision, CancellationToken.None)).State);
        await AdvanceAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(ProgressState.Done, (await provider.ProvisionAsync(provision, CancellationToken.None)).State);
        Assert.Equal(["ssh-ed25519 AAAAfirst a@x"], await KeysOnNodesAsync("c-keys"));

        // The claim's own step finds the same keys there; a later change (and its repetition after a restart) replaces them.
        var same = await provider.InstallKeysAsync(new KeyOrder("req-keys", "c-keys", ["ssh-ed25519 AAAAfirst a@x"]), CancellationToken.None);
        Assert.Equal(ProgressState.Done, same.State);
        var change = new KeyOrder("req-change", "c-keys", ["ssh-ed25519 AAAAsecond b@x", "ssh-ed25519 AAAAthird c@x"]);
        Assert.Equal(ProgressState.Done, (await provider.InstallKeysAsync(change, CancellationToken.None)).State);
        Assert.Equal(ProgressState.Done, (await Restart().InstallKeysAsync(change, CancellationToken.None)).State);
        Assert.Equal(["ssh-ed25519 AAAAsecond b@x\nssh-ed25519 AAAAthird c@x"], await KeysOnNodesAsync("c-keys"));
    }

    /// <summary>The distinct key lists the cluster's nodes hold (one when every node has the same).</summary>
    private async Task<IReadOnlyList<string>> KeysOnNodesAsync(string clusterId) =>
        (await _db!.ReadAsync(c => c.QueryAsync<string>("SELECT DISTINCT ssh_authorized_keys FROM sim_nodes WHERE cluster_id = @clusterId", new { clusterId }))).ToList();

    // Beyond the contract: how the simulated node recovers from an engine killed at the worst moments.

    [Fact]
    public async Task A_start_a_crash_cut_short_starts_afresh_from_the_intact_archive()
    {
        // An earlier job makes the node (its home, its user).
        var earlier = await NewJobOnNodeAsync();
        await ReceiveAsync(earlier);
        await StartAsync(earlier, "true");
        await WaitForAsync(earlier, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost);
        var job = earlier with { JobId = "j-" + Guid.NewGuid().ToString("N")[..12] };
        await ReceiveAsync(job);

        // What an engine killed mid-unpack leaves: its claim on the start, and half a tree that the
        // node's user (tar runs as that user) wrote.
        var node = Path.Combine(_dir.Path, "sim", "nodes", job.InstanceId);
        File.WriteAllText(Path.Combine(node, "jobs", job.JobId, "launched"), "an-engine-that-died");
        var work = Path.Combine(node, "home", "jobs", job.JobId);
        Directory.CreateDirectory(work);
        File.WriteAllText(Path.Combine(work, "half-unpacked.txt"), "left by the crash");
        var uid = File.ReadAllText(Path.Combine(node, "uid")).Trim();
        using (var chown = System.Diagnostics.Process.Start("chown", ["-R", $"{uid}:{uid}", work]))
            await chown.WaitForExitAsync();

        RestartProvider();
        await StartAsync(job, "ls; cat README");
        var state = await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost);
        Assert.Equal(JobProcessKind.Exited, state.Kind);
        Assert.Equal(0, state.ExitCode);
        var output = await ReadAllOutputAsync(Provider, job);
        Assert.Contains("contract", output);
        Assert.DoesNotContain("half-unpacked", output);
    }

    [Fact]
    public async Task An_upload_a_crash_cut_short_leaves_no_partial_file_once_the_engine_is_back()
    {
        var job = await NewJobOnNodeAsync();
        var jobRoot = Path.Combine(_dir.Path, "sim", "nodes", job.InstanceId, "jobs", job.JobId);
        Directory.CreateDirectory(jobRoot);
        var partial = Path.Combine(jobRoot, "project.tar.gz.part");
        File.WriteAllText(partial, "the first half of an upload");

        ((SimulatedCloud)RestartProvider()).RemoveInterruptedUploads();
        Assert.False(File.Exists(partial));
        await ReceiveAsync(job);
        await StartAsync(job, "cat README");
        Assert.Equal(0, (await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost)).ExitCode);
    }

    public void Dispose()
    {
        _db?.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    /// <summary>A provider as a freshly started engine builds it: nothing shared with the last one but the database and the data directory.</summary>
    private SimulatedCloud Build(double transientRate, double permanentRate)
    {
        var simulated = new SimulatedOptions
        {
            ProvisionSeconds = 3,
            ReleaseSeconds = 1,
            VolumeSeconds = 1,
            RestartSeconds = 2,
            TransientFailureRate = transientRate,
            PermanentFailureRate = permanentRate,
            Seed = 1,
        };
        var engine = new EngineOptions { DataDir = _dir.Path, DatabasePath = _db!.SqlitePath };
        return TestLogins.Cloud(_db, simulated, engine, _clock);
    }
}
