using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using OpenPool.Engine.Providers;

namespace OpenPool.Engine.Tests.Providers;

/// <summary>
/// What every <see cref="ICloudProvider"/> must do, stated once: a provider's tests derive from this
/// class and implement its hooks. The cases speak only through <see cref="ICloudProvider"/> and the
/// hooks, never through a provider's internals, so the simulated cloud and a real one (the fleet over
/// SSH) are held to exactly the same rules.
/// </summary>
/// <remarks>
/// The hooks are <c>private protected</c>: the provider types are internal to the engine, and only
/// classes of this test assembly derive from the contract. xunit makes a new instance per case, so
/// every case starts on fresh state (<see cref="StartAsync"/>); a derived class frees it in
/// <see cref="IDisposable.Dispose"/>, which xunit calls after the jobs the case started were forced to stop.
/// </remarks>
public abstract class CloudProviderContract : IAsyncLifetime
{
    /// <summary>Generous: job calls run real processes on a slow, shared 2-core machine.</summary>
    private static readonly TimeSpan JobWait = TimeSpan.FromSeconds(60);

    private readonly List<(ICloudProvider Provider, JobRef Job)> _startedJobs = [];

    /// <summary>The provider the cases call; replaced by <see cref="RestartProvider"/>.</summary>
    private protected ICloudProvider Provider { get; private set; } = null!;

    // ---- Hooks: what a concrete provider's test class supplies ----

    /// <summary>Makes fresh, empty state for one case and returns a provider over it.</summary>
    /// <remarks>Operations that take time must take some (at least a second of the provider's clock), so "in progress" can be observed.</remarks>
    private protected abstract Task<ICloudProvider> StartAsync();

    /// <summary>
    /// A new provider instance over the same state, as a restarted engine would build it: it remembers
    /// only what the state holds (database, nodes), nothing of the previous instance's memory.
    /// </summary>
    private protected abstract ICloudProvider Restart();

    /// <summary>Moves the provider's clock forward (a fake clock; a real provider may simply wait).</summary>
    private protected abstract Task AdvanceAsync(TimeSpan by);

    /// <summary>
    /// How many effects (a provision, a release, a volume made, grown, deleted, an attach, a detach)
    /// actually took place under <paramref name="requestId"/>. Idempotency means at most one.
    /// </summary>
    private protected abstract Task<long> EffectsOfAsync(string requestId);

    /// <summary>
    /// A provider over the same state whose next call to <see cref="ICloudProvider.ProvisionAsync"/>
    /// meets a fault of the given kind (<see cref="ProgressState.TransientFailure"/> or
    /// <see cref="ProgressState.PermanentFailure"/>) before anything is reserved; the cases use it for
    /// exactly one call. A real provider injects it however it can (an unreachable host, a refused call).
    /// </summary>
    private protected abstract ICloudProvider FailingNextProvision(ProgressState failure);

    /// <summary>
    /// Writes a file holding <paramref name="secret"/> in the engine's data directory (where its
    /// database and keys live) and returns the file's absolute path on the engine's host.
    /// </summary>
    private protected abstract string PlaceSecretInEngineData(string secret);

    /// <summary>An instance type the provider offers.</summary>
    private protected virtual string InstanceType => "1xH100";

    async Task IAsyncLifetime.InitializeAsync() => Provider = await StartAsync();

    async Task IAsyncLifetime.DisposeAsync()
    {
        // A failed case must not leave its processes behind on the shared machine.
        foreach (var (provider, job) in _startedJobs)
        {
            try
            {
                await provider.SignalJobAsync(job, force: true, CancellationToken.None);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException)
            {
                // already gone with its state
            }
        }
    }

    private protected ICloudProvider RestartProvider() => Provider = Restart();

    // ---- Request-driven operations: idempotent on the request id ----

    [Fact]
    public async Task Provision_continues_the_same_operation_when_called_again_also_after_a_restart()
    {
        var order = NewProvision(nodes: 2);
        var first = await Provider.ProvisionAsync(order, CancellationToken.None);
        Assert.Equal(ProgressState.InProgress, first.State);
        // The same order again, at once and from a restarted instance: the same operation, not a second.
        var again = await Provider.ProvisionAsync(order, CancellationToken.None);
        Assert.Equal(ProgressState.InProgress, again.State);
        Assert.True(again.Remaining <= first.Remaining, $"remaining grew on a repeated call: {first.Remaining} then {again.Remaining}");
        var afterRestart = await RestartProvider().ProvisionAsync(order, CancellationToken.None);
        Assert.Equal(ProgressState.InProgress, afterRestart.State);
        Assert.True(afterRestart.Remaining <= again.Remaining, $"a restarted provider started over: {again.Remaining} then {afterRestart.Remaining}");

        var done = await DriveAsync(p => p.ProvisionAsync(order, CancellationToken.None), restartEachStep: true);
        Assert.Equal(ProgressState.Done, done.State);
        Assert.NotNull(done.Nodes);
        Assert.Equal(order.InstanceIds.Order(StringComparer.Ordinal), done.Nodes.Select(n => n.InstanceId).Order(StringComparer.Ordinal));

        // Done stays done, with the very same nodes, from this instance, a restarted one, and two racing.
        var repeated = await Provider.ProvisionAsync(order, CancellationToken.None);
        var racing = await Task.WhenAll(Restart().ProvisionAsync(order, CancellationToken.None), Restart().ProvisionAsync(order, CancellationToken.None));
        foreach (var later in racing.Prepend(repeated))
        {
            Assert.Equal(ProgressState.Done, later.State);
            Assert.Equal(NodeSet(done), NodeSet(later));
        }
        Assert.Equal(1, await EffectsOfAsync(order.RequestId));
    }

    [Fact]
    public async Task Two_instances_racing_on_a_new_provision_start_one_operation()
    {
        var order = NewProvision(nodes: 1);
        var racing = await Task.WhenAll(Restart().ProvisionAsync(order, CancellationToken.None), Restart().ProvisionAsync(order, CancellationToken.None));
        Assert.All(racing, p => Assert.Equal(ProgressState.InProgress, p.State));
        var done = await DriveAsync(p => p.ProvisionAsync(order, CancellationToken.None), restartEachStep: true);
        Assert.Equal(ProgressState.Done, done.State);
        Assert.Equal(order.InstanceIds, done.Nodes!.Select(n => n.InstanceId));
        Assert.Equal(1, await EffectsOfAsync(order.RequestId));
    }

    [Fact]
    public async Task Release_is_one_operation_per_request_id_also_after_a_restart()
    {
        var provision = NewProvision(nodes: 2);
        await ProvisionAsync(provision);
        var release = new ReleaseOrder(NewRequestId(), provision.ClusterId);
        var first = await Provider.ReleaseAsync(release, CancellationToken.None);
        Assert.Equal(ProgressState.InProgress, first.State);
        var afterRestart = await RestartProvider().ReleaseAsync(release, CancellationToken.None);
        Assert.Equal(ProgressState.InProgress, afterRestart.State);
        Assert.True(afterRestart.Remaining <= first.Remaining, $"a restarted provider started the release over: {first.Remaining} then {afterRestart.Remaining}");

        Assert.Equal(ProgressState.Done, (await DriveAsync(p => p.ReleaseAsync(release, CancellationToken.None), restartEachStep: true)).State);
        Assert.Equal(ProgressState.Done, (await Provider.ReleaseAsync(release, CancellationToken.None)).State);
        Assert.Equal(ProgressState.Done, (await RestartProvider().ReleaseAsync(release, CancellationToken.None)).State);
        Assert.Equal(1, await EffectsOfAsync(release.RequestId));
        Assert.Equal(1, await EffectsOfAsync(provision.RequestId));
    }

    [Fact]
    public async Task Volume_create_resize_and_delete_are_one_operation_per_request_id_also_after_a_restart()
    {
        var volumeId = "s-" + Unique();
        VolumeOrder[] orders =
        [
            new(NewRequestId(), volumeId, 100),
            new(NewRequestId(), volumeId, 200),
            new(NewRequestId(), volumeId, 200),
        ];
        Func<ICloudProvider, VolumeOrder, Task<ProviderProgress>>[] calls =
        [
            (p, o) => p.CreateVolumeAsync(o, CancellationToken.None),
            (p, o) => p.ResizeVolumeAsync(o, CancellationToken.None),
            (p, o) => p.DeleteVolumeAsync(o, CancellationToken.None),
        ];
        for (var i = 0; i < orders.Length; i++)
        {
            var (order, call) = (orders[i], calls[i]);
            var first = await call(Provider, order);
            Assert.Equal(ProgressState.InProgress, first.State);
            var afterRestart = await call(RestartProvider(), order);
            Assert.Equal(ProgressState.InProgress, afterRestart.State);
            Assert.True(afterRestart.Remaining <= first.Remaining, $"step {i}: a restarted provider started over: {first.Remaining} then {afterRestart.Remaining}");
            Assert.Equal(ProgressState.Done, (await DriveAsync(p => call(p, order), restartEachStep: true)).State);
            Assert.Equal(ProgressState.Done, (await call(Provider, order)).State);
            Assert.Equal(ProgressState.Done, (await call(RestartProvider(), order)).State);
            Assert.Equal(1, await EffectsOfAsync(order.RequestId));
        }
    }

    [Fact]
    public async Task Attach_and_detach_are_one_operation_per_request_id_also_after_a_restart()
    {
        var provision = NewProvision(nodes: 2);
        await ProvisionAsync(provision);
        var volume = new VolumeOrder(NewRequestId(), "s-" + Unique(), 100);
        Assert.Equal(ProgressState.Done, (await DriveAsync(p => p.CreateVolumeAsync(volume, CancellationToken.None))).State);

        var attach = new AttachmentOrder(NewRequestId(), volume.VolumeId, provision.ClusterId);
        var detach = new AttachmentOrder(NewRequestId(), volume.VolumeId, provision.ClusterId);
        foreach (var (order, call) in new (AttachmentOrder, Func<ICloudProvider, AttachmentOrder, Task<ProviderProgress>>)[]
                 {
                     (attach, (p, o) => p.AttachVolumeAsync(o, CancellationToken.None)),
                     (detach, (p, o) => p.DetachVolumeAsync(o, CancellationToken.None)),
                 })
        {
            var first = await call(Provider, order);
            Assert.Equal(ProgressState.InProgress, first.State);
            var racing = await Task.WhenAll(call(Restart(), order), call(Restart(), order));
            Assert.All(racing, p =>
            {
                Assert.Equal(ProgressState.InProgress, p.State);
                Assert.True(p.Remaining <= first.Remaining, $"a restarted provider started over: {first.Remaining} then {p.Remaining}");
            });
            Assert.Equal(ProgressState.Done, (await DriveAsync(p => call(p, order), restartEachStep: true)).State);
            Assert.Equal(ProgressState.Done, (await call(RestartProvider(), order)).State);
            Assert.Equal(1, await EffectsOfAsync(order.RequestId));
        }
    }

    // ---- A release beats a concurrent provision ----

    [Fact]
    public async Task A_provision_in_progress_when_its_cluster_is_released_never_ends_with_nodes()
    {
        var provision = NewProvision(nodes: 2);
        Assert.Equal(ProgressState.InProgress, (await Provider.ProvisionAsync(provision, CancellationToken.None)).State);
        var release = new ReleaseOrder(NewRequestId(), provision.ClusterId);
        // The release's first call races the provision's next one, as two workers would.
        await Task.WhenAll(Restart().ProvisionAsync(provision, CancellationToken.None), Restart().ReleaseAsync(release, CancellationToken.None));
        Assert.Equal(ProgressState.Done, (await DriveAsync(p => p.ReleaseAsync(release, CancellationToken.None))).State);

        // Whatever the provision's worker does afterwards (continue, or come back after a crash, long
        // after its nodes would have been ready), it must not hand back nodes.
        await AssertNeverDoneWithNodesAsync(provision);
        Assert.Equal(0, await EffectsOfAsync(provision.RequestId));
    }

    [Fact]
    public async Task A_provision_first_called_after_its_cluster_was_released_never_ends_with_nodes()
    {
        var provision = NewProvision(nodes: 1);
        var release = new ReleaseOrder(NewRequestId(), provision.ClusterId);
        Assert.Equal(ProgressState.Done, (await DriveAsync(p => p.ReleaseAsync(release, CancellationToken.None))).State);

        // The superseded claim's worker calls for the first time only now, with the original request id.
        await AssertNeverDoneWithNodesAsync(provision);
        Assert.Equal(0, await EffectsOfAsync(provision.RequestId));
    }

    [Fact]
    public async Task A_finished_provision_called_again_after_its_cluster_was_released_does_not_hand_back_nodes()
    {
        // A worker that got Done but crashed before recording it retries after a destroy went through.
        var provision = NewProvision(nodes: 1);
        await ProvisionAsync(provision);
        var release = new ReleaseOrder(NewRequestId(), provision.ClusterId);
        Assert.Equal(ProgressState.Done, (await DriveAsync(p => p.ReleaseAsync(release, CancellationToken.None))).State);

        await AssertNeverDoneWithNodesAsync(provision);
        Assert.Equal(1, await EffectsOfAsync(provision.RequestId));
        Assert.Equal(1, await EffectsOfAsync(release.RequestId));
    }

    private async Task AssertNeverDoneWithNodesAsync(ProvisionOrder provision)
    {
        for (var i = 0; i < 6; i++)
        {
            var provider = i % 2 == 0 ? Provider : RestartProvider();
            var progress = await provider.ProvisionAsync(provision with { Attempt = provision.Attempt + i / 2 }, CancellationToken.None);
            Assert.False(progress.State == ProgressState.Done && progress.Nodes is { Count: > 0 },
                $"call {i}: a provision of a released cluster ended Done with {progress.Nodes?.Count} node(s): {progress.Message}");
            await AdvanceAsync(TimeSpan.FromSeconds(30));
        }
    }

    // ---- Estimates ----

    [Fact]
    public async Task The_remaining_time_of_an_operation_never_grows_as_time_advances()
    {
        var provision = NewProvision(nodes: 1);
        var volume = new VolumeOrder(NewRequestId(), "s-" + Unique(), 50);
        var attach = new AttachmentOrder(NewRequestId(), volume.VolumeId, provision.ClusterId);
        var release = new ReleaseOrder(NewRequestId(), provision.ClusterId);
        (string, Func<ICloudProvider, Task<ProviderProgress>>)[] operations =
        [
            ("provision", p => p.ProvisionAsync(provision, CancellationToken.None)),
            ("create volume", p => p.CreateVolumeAsync(volume, CancellationToken.None)),
            ("attach", p => p.AttachVolumeAsync(attach, CancellationToken.None)),
            ("release", p => p.ReleaseAsync(release, CancellationToken.None)),
        ];
        foreach (var (name, call) in operations)
        {
            var seen = new List<TimeSpan>();
            // Small steps, a repeated call at the same moment, and a restart now and then.
            for (var step = 0; step < 400; step++)
            {
                var provider = step % 3 == 2 ? RestartProvider() : Provider;
                var progress = await call(provider);
                if (progress.State != ProgressState.InProgress)
                {
                    Assert.Equal(ProgressState.Done, progress.State);
                    break;
                }
                Assert.True(progress.Remaining >= TimeSpan.Zero, $"{name}: negative estimate {progress.Remaining}");
                seen.Add(progress.Remaining);
                if (step % 2 == 1)
                    await AdvanceAsync(TimeSpan.FromMilliseconds(150));
            }
            Assert.True(seen.Count >= 2, $"{name}: too few in-progress answers to compare ({seen.Count})");
            for (var i = 1; i < seen.Count; i++)
                Assert.True(seen[i] <= seen[i - 1], $"{name}: the estimate grew from {seen[i - 1]} to {seen[i]} (answers: {string.Join(", ", seen)})");
        }
    }

    // ---- Failures are reported, not thrown ----

    [Fact]
    public async Task A_transient_fault_is_reported_as_such_and_a_retry_succeeds()
    {
        var order = NewProvision(nodes: 1);
        var failed = await FailingNextProvision(ProgressState.TransientFailure).ProvisionAsync(order, CancellationToken.None);
        Assert.Equal(ProgressState.TransientFailure, failed.State);
        Assert.False(string.IsNullOrWhiteSpace(failed.Message));
        Assert.Equal(0, await EffectsOfAsync(order.RequestId));

        // The worker retries the same request (next attempt) after its backoff.
        await AdvanceAsync(TimeSpan.FromSeconds(2));
        var retried = order with { Attempt = order.Attempt + 1 };
        var done = await DriveAsync(p => p.ProvisionAsync(retried, CancellationToken.None));
        Assert.Equal(ProgressState.Done, done.State);
        Assert.Equal(order.InstanceIds, done.Nodes!.Select(n => n.InstanceId));
        Assert.Equal(1, await EffectsOfAsync(order.RequestId));
    }

    [Fact]
    public async Task A_permanent_fault_is_reported_as_such_and_reserves_nothing()
    {
        var order = NewProvision(nodes: 1);
        var failed = await FailingNextProvision(ProgressState.PermanentFailure).ProvisionAsync(order, CancellationToken.None);
        Assert.Equal(ProgressState.PermanentFailure, failed.State);
        Assert.False(string.IsNullOrWhiteSpace(failed.Message));
        Assert.Null(failed.Nodes);
        Assert.Equal(0, await EffectsOfAsync(order.RequestId));
        // Nothing was made, so releasing the cluster has nothing to do, and does it once.
        var release = new ReleaseOrder(NewRequestId(), order.ClusterId);
        Assert.Equal(ProgressState.Done, (await DriveAsync(p => p.ReleaseAsync(release, CancellationToken.None))).State);
        Assert.Equal(0, await EffectsOfAsync(order.RequestId));
    }

    // ---- The job runtime ----

    [Fact]
    public async Task A_started_job_runs_and_its_output_is_read()
    {
        var job = await NewJobOnNodeAsync();
        var archive = ProjectArchive(("hello.txt", "from-the-archive\n"));
        Assert.Equal(archive.Length, await Provider.ReceiveProjectAsync(job, new MemoryStream(archive), 1 << 20, CancellationToken.None));
        await StartAsync(job, "echo first-line", "cat hello.txt");

        var state = await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost);
        Assert.Equal(JobProcessKind.Exited, state.Kind);
        Assert.Equal(0, state.ExitCode);
        var output = await ReadAllOutputAsync(Provider, job);
        Assert.Contains("first-line\n", output);
        Assert.Contains("from-the-archive\n", output);
        Assert.True(output.IndexOf("first-line", StringComparison.Ordinal) < output.IndexOf("from-the-archive", StringComparison.Ordinal), output);
        Assert.Equal(Encoding.UTF8.GetByteCount(output), (await Provider.InspectJobsAsync([job], CancellationToken.None))[0].OutputBytes);
    }

    [Fact]
    public async Task A_project_upload_is_bounded_kept_whole_and_received_once()
    {
        var job = await NewJobOnNodeAsync();
        var archive = ProjectArchive(("data.bin", new string('x', 64 * 1024)));
        await Assert.ThrowsAsync<JobUploadTooLargeException>(() =>
            Provider.ReceiveProjectAsync(job, new MemoryStream(archive), archive.Length - 1, CancellationToken.None));
        // The refused upload kept nothing: the same job can still receive its project, once.
        Assert.Equal(archive.Length, await Provider.ReceiveProjectAsync(job, new MemoryStream(archive), archive.Length, CancellationToken.None));
        await Assert.ThrowsAsync<JobUploadConflictException>(() =>
            RestartProvider().ReceiveProjectAsync(job, new MemoryStream(archive), archive.Length, CancellationToken.None));
    }

    [Fact]
    public async Task A_project_that_cannot_be_unpacked_fails_to_start_with_a_message()
    {
        var job = await NewJobOnNodeAsync();
        var garbage = Encoding.UTF8.GetBytes("this is not a gzipped tar\n");
        Assert.Equal(garbage.Length, await Provider.ReceiveProjectAsync(job, new MemoryStream(garbage), 1 << 20, CancellationToken.None));
        var refused = await Assert.ThrowsAsync<JobStartException>(() => StartAsync(job, "echo must-not-run"));
        Assert.False(string.IsNullOrWhiteSpace(refused.Message));
        Assert.DoesNotContain("must-not-run", await ReadAllOutputAsync(Provider, job));
    }

    [Fact]
    public async Task A_job_keeps_running_across_a_provider_restart_and_reports_its_real_exit_code()
    {
        var job = await NewJobOnNodeAsync();
        await ReceiveAsync(job);
        await StartAsync(job, "echo begin", "sleep 10", "echo end", "exit 3");
        Assert.Equal(JobProcessKind.Running, (await WaitForAsync(job, s => s.Kind != JobProcessKind.Starting)).Kind);

        var restarted = RestartProvider();
        // A restarted engine's monitor starts what it believes pending: a started job is left alone.
        await StartAsync(job, "echo begin", "sleep 10", "echo end", "exit 3");
        var deadline = DateTime.UtcNow + JobWait;
        JobProcessState state;
        while (true)
        {
            // State first, output second: output without "end" read after the state proves the job
            // was still running when the state was taken, so the state must say Running then.
            state = (await restarted.InspectJobsAsync([job], CancellationToken.None))[0];
            var output = await ReadAllOutputAsync(restarted, job);
            Assert.NotEqual(JobProcessKind.Lost, state.Kind);
            if (!output.Contains("end\n", StringComparison.Ordinal))
                Assert.Equal(JobProcessKind.Running, state.Kind);
            if (state.Kind == JobProcessKind.Exited)
                break;
            Assert.True(DateTime.UtcNow < deadline, $"the job did not end within {JobWait.TotalSeconds} s: {state}");
            await Task.Delay(200);
        }
        Assert.Equal(3, state.ExitCode);
        var final = await ReadAllOutputAsync(restarted, job);
        Assert.Single(final.Split('\n'), line => line == "begin");
        Assert.Single(final.Split('\n'), line => line == "end");
    }

    [Fact]
    public async Task A_forced_signal_ends_a_running_job()
    {
        var job = await NewJobOnNodeAsync();
        await ReceiveAsync(job);
        await StartAsync(job, "echo sleeping", "sleep 60", "echo woke-up");
        Assert.Equal(JobProcessKind.Running, (await WaitForAsync(job, s => s.Kind != JobProcessKind.Starting)).Kind);

        await Provider.SignalJobAsync(job, force: true, CancellationToken.None);
        var state = await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost);
        if (state.Kind == JobProcessKind.Exited)
            Assert.NotEqual(0, state.ExitCode);
        Assert.DoesNotContain("woke-up", await ReadAllOutputAsync(Provider, job));
    }

    [Fact]
    public async Task A_deleted_job_leaves_no_output_and_no_files()
    {
        var job = await NewJobOnNodeAsync();
        await ReceiveAsync(job);
        await StartAsync(job, "echo some-output", "echo kept > result.txt");
        Assert.Equal(0, (await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost)).ExitCode);
        Assert.Contains("some-output", await ReadAllOutputAsync(Provider, job)); // there was something to delete

        await Provider.DeleteJobAsync(job, CancellationToken.None);
        Assert.True((await Provider.ReadOutputAsync(job, 0, 1 << 20, CancellationToken.None)).Bytes.IsEmpty);
        Assert.True((await RestartProvider().ReadOutputAsync(job, 0, 1 << 20, CancellationToken.None)).Bytes.IsEmpty);
        Assert.Empty((await Provider.MatchOutputsAsync(job, ["result.txt"], CancellationToken.None)).Paths);
        Assert.Null(await Provider.OpenOutputAsync(job, "result.txt", CancellationToken.None));
    }

    [Fact]
    public async Task Outputs_are_matched_and_opened_inside_the_job_only()
    {
        var job = await NewJobOnNodeAsync();
        await ReceiveAsync(job);
        await StartAsync(job,
            "mkdir -p out && printf 'result-body\\n' > out/result.txt",
            "ln -s /etc/passwd out/passwd-link && ln -s .. out/up",
            "printf 'outside-body\\n' > ../x");
        Assert.Equal(0, (await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost)).ExitCode);

        var matched = await Provider.MatchOutputsAsync(job, ["out/"], CancellationToken.None);
        Assert.Contains("out/result.txt", matched.Paths);
        await using (var result = await Provider.OpenOutputAsync(job, "out/result.txt", CancellationToken.None))
        {
            Assert.NotNull(result);
            Assert.Equal("result-body\n", await new StreamReader(result).ReadToEndAsync());
        }

        // Paths that lead outside the job: up and out, absolute, and through the job's own links.
        foreach (var outside in new[] { "../x", "/etc/passwd", "out/passwd-link", "out/up/x", "out/../../x" })
            Assert.Null(await Provider.OpenOutputAsync(job, outside, CancellationToken.None));

        // Matching what lies outside finds nothing there; whatever it lists stays relative and inside.
        var wide = await Provider.MatchOutputsAsync(job, ["out/", "../x", "/etc/passwd", "../*", "out/up/"], CancellationToken.None);
        foreach (var path in wide.Paths)
        {
            Assert.False(path.StartsWith('/') || path.Split('/').Contains(".."), $"a matched path leaves the job: {path}");
            await using var stream = await Provider.OpenOutputAsync(job, path, CancellationToken.None);
            if (stream is null)
                continue;
            var text = await new StreamReader(stream).ReadToEndAsync();
            Assert.DoesNotContain("root:", text);
            Assert.DoesNotContain("outside-body", text);
        }
    }

    // ---- Nothing escapes the sandbox ----

    [Fact]
    public async Task A_job_sees_nothing_of_the_engine_files_processes_or_environment()
    {
        var fileSecret = "file-secret-" + Unique();
        var secretPath = PlaceSecretInEngineData(fileSecret);
        var secretName = Path.GetFileName(secretPath);
        var envSecret = "env-secret-" + Unique();
        var enginePid = Environment.ProcessId;
        // The engine's own command line is what its /proc entry shows to anyone who can see it.
        var engineCommandLine = (await File.ReadAllTextAsync("/proc/self/cmdline")).Replace('\0', ' ').Trim();
        Assert.True(engineCommandLine.Length > 20, $"the engine's command line is too short to recognize: {engineCommandLine}");

        Environment.SetEnvironmentVariable("OPENPOOL_CONTRACT_SECRET", envSecret);
        try
        {
            var job = await NewJobOnNodeAsync();
            await ReceiveAsync(job);
            await StartAsync(job,
                $"cat {Quote(secretPath)} 2>&1; true",
                // Wherever the job is, try the secret's name in every directory above it.
                $"d=\"$PWD\"; while :; do cat \"$d\"/{Quote(secretName)} 2>/dev/null; [ \"$d\" = / ] && break; d=$(dirname \"$d\"); done; true",
                $"ls /proc; cat /proc/{enginePid}/cmdline /proc/{enginePid}/environ 2>&1 | tr '\\0' ' '; true",
                "for p in /proc/[0-9]*; do tr '\\0' ' ' < \"$p/cmdline\" 2>/dev/null; echo; tr '\\0' '\\n' < \"$p/environ\" 2>/dev/null; done; true",
                "env",
                "echo probe-finished");
            var state = await WaitForAsync(job, s => s.Kind is JobProcessKind.Exited or JobProcessKind.Lost);
            var output = await ReadAllOutputAsync(Provider, job);
            Assert.True(state is { Kind: JobProcessKind.Exited, ExitCode: 0 }, $"the probe did not run to its end ({state}): {output}");
            Assert.Contains("probe-finished", output);
            Assert.Contains("PATH=", output); // env ran and printed something

            Assert.DoesNotContain(fileSecret, output);
            Assert.DoesNotContain(envSecret, output);
            Assert.DoesNotContain("OPENPOOL_CONTRACT_SECRET", output);
            Assert.DoesNotContain(engineCommandLine, output);
        }
        finally
        {
            Environment.SetEnvironmentVariable("OPENPOOL_CONTRACT_SECRET", null);
        }
    }

    // ---- Helpers ----

    private static string Unique() => Guid.NewGuid().ToString("N")[..12];

    private static string NewRequestId() => "req_" + Unique();

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private ProvisionOrder NewProvision(int nodes) =>
        new(NewRequestId(), "c-" + Unique(), InstanceType, Enumerable.Range(0, nodes).Select(_ => "i-" + Unique()).ToList(), 0);

    private static IEnumerable<(string, string)> NodeSet(ProviderProgress progress) =>
        (progress.Nodes ?? []).Select(n => (n.InstanceId, n.IpAddress)).Order();

    private async Task<ProviderProgress> ProvisionAsync(ProvisionOrder order)
    {
        var done = await DriveAsync(p => p.ProvisionAsync(order, CancellationToken.None));
        Assert.Equal(ProgressState.Done, done.State);
        return done;
    }

    /// <summary>Calls until the operation leaves InProgress, advancing the clock by part of each estimate (which must not grow).</summary>
    private async Task<ProviderProgress> DriveAsync(Func<ICloudProvider, Task<ProviderProgress>> call, bool restartEachStep = false)
    {
        TimeSpan? last = null;
        for (var step = 0; step < 200; step++)
        {
            var progress = await call(restartEachStep && step > 0 ? RestartProvider() : Provider);
            if (progress.State != ProgressState.InProgress)
                return progress;
            Assert.True(last is null || progress.Remaining <= last, $"the estimate grew from {last} to {progress.Remaining}");
            last = progress.Remaining;
            await AdvanceAsync(TimeSpan.FromMilliseconds(Math.Clamp(progress.Remaining.TotalMilliseconds / 2, 100, 5_000)));
        }
        throw new InvalidOperationException("the operation was still in progress after 200 calls");
    }

    /// <summary>A provisioned node with a job id on it (the job not yet received).</summary>
    private protected async Task<JobRef> NewJobOnNodeAsync()
    {
        var done = await ProvisionAsync(NewProvision(nodes: 1));
        return new JobRef(done.Nodes!.Single().InstanceId, "j-" + Unique());
    }

    private protected async Task ReceiveAsync(JobRef job)
    {
        var archive = ProjectArchive(("README", "contract\n"));
        Assert.Equal(archive.Length, await Provider.ReceiveProjectAsync(job, new MemoryStream(archive), 1 << 20, CancellationToken.None));
    }

    private protected async Task StartAsync(JobRef job, params string[] commands)
    {
        // No Python venv: the cases are about the runtime, and a venv costs seconds on this machine.
        lock (_startedJobs)
            _startedJobs.Add((Provider, job));
        await Provider.StartJobAsync(new JobLaunch(job, commands, PythonVenv: false, [], (_, _) => false, "contract-tenant"), CancellationToken.None);
    }

    /// <summary>A gzipped tar of the files, as a client uploads a project.</summary>
    private static byte[] ProjectArchive(params (string Name, string Content)[] files)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content) in files)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
                {
                    Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
                };
                tar.WriteEntry(entry);
            }
        }
        return buffer.ToArray();
    }

    private protected async Task<JobProcessState> WaitForAsync(JobRef job, Func<JobProcessState, bool> condition)
    {
        var deadline = DateTime.UtcNow + JobWait;
        while (true)
        {
            var state = (await Provider.InspectJobsAsync([job], CancellationToken.None))[0];
            if (condition(state))
                return state;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"job {job.JobId} is still {state.Kind} after {JobWait.TotalSeconds} s: {await ReadAllOutputAsync(Provider, job)}");
            await Task.Delay(100);
        }
    }

    private protected static async Task<string> ReadAllOutputAsync(ICloudProvider provider, JobRef job)
    {
        var text = new MemoryStream();
        while (true)
        {
            var chunk = await provider.ReadOutputAsync(job, text.Length, 1 << 20, CancellationToken.None);
            if (chunk.Bytes.IsEmpty)
                return Encoding.UTF8.GetString(text.ToArray());
            text.Write(chunk.Bytes.Span);
        }
    }
}
