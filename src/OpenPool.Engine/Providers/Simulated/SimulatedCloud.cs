using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// A fake cloud with a real cloud's habits: operations take time, capacity runs out, calls fail now
/// and then. Its state lives in the engine's database, so a crash mid-operation leaves it exactly
/// as a real provider would be left, and <c>sim_effects</c> records every effect that took place,
/// at most once per (kind, object, request), which is how tests prove nothing happened twice.
/// </summary>
internal sealed partial class SimulatedCloud(Database db, IOptions<SimulatedOptions> options, EngineOptions engine, TimeProvider clock,
    NodeSandbox sandbox, IOptions<Jobs.JobsOptions> jobOptions, Ssh.NodeLogins logins, NodeFiles nodeFiles) : ICloudProvider
{
    private readonly SimulatedOptions _options = options.Value;
    private readonly int _seed = options.Value.Seed ?? Random.Shared.Next();

    public async Task<ProviderProgress> ProvisionAsync(ProvisionOrder order, CancellationToken ct)
    {
        var heldPorts = new Dictionary<string, int>(StringComparer.Ordinal);
        var progress = await ProvisionNodesAsync(order, heldPorts, ct);
        // Access comes once the nodes are up, outside the transaction (it makes keys and binds ports).
        return progress is { State: ProgressState.Done, Nodes: { } nodes }
            ? progress with { Nodes = await WithSshAccessAsync(order, nodes, heldPorts, ct) }
            : progress;
    }

    /// <param name="heldPorts">Filled with the SSH ports the nodes hold already, when the provision is done.</param>
    private Task<ProviderProgress> ProvisionNodesAsync(ProvisionOrder order, Dictionary<string, int> heldPorts, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            // Provision and release of one cluster never interleave (replicas on PostgreSQL). Under
            // that lock: whether the cluster was released, and the operation this request started.
            var state = await db.LockThenQuerySingleAsync<ProvisionState>(c, t, "sim:cluster:" + order.ClusterId,
                """
                SELECT CASE WHEN EXISTS (SELECT 1 FROM sim_tombstones WHERE object_id = @ClusterId) THEN 1 ELSE 0 END AS Released,
                       o.ready_at AS ReadyAt
                FROM (SELECT 1 AS one) AS one LEFT JOIN sim_operations o ON o.request_id = @RequestId AND o.kind = 'provision'
                """, order);
            var now = clock.Now();
            if (state.Released != 0)
                return ProviderProgress.Permanent($"Cluster {order.ClusterId} was released; it will not be provisioned.");

            var done = $"Provisioned {order.InstanceIds.Count} node(s) of {order.InstanceType}";
            if (state.ReadyAt is not { } readyAt)
            {
                // Faults strike before anything is reserved, as a real API rejects a call outright.
                var roll = new Random(unchecked(_seed ^ (StableHash(order.RequestId) * 397) ^ order.Attempt)).NextDouble();
                if (roll < _options.PermanentFailureRate)
                    return ProviderProgress.Permanent($"The simulated cloud rejected {order.InstanceType} for {order.ClusterId} (injected permanent fault).");
                if (roll < _options.PermanentFailureRate + _options.TransientFailureRate)
                    return ProviderProgress.Transient("The simulated cloud had a transient fault (injected)");

                if (_options.Capacity.TryGetValue(order.InstanceType, out var capacity))
                {
                    await db.LockAsync(c, t, "sim:capacity:" + order.InstanceType);
                    var inUse = await c.ExecuteScalarAsync<long>(
                        "SELECT COUNT(*) FROM sim_nodes WHERE instance_type = @InstanceType AND state IN ('provisioning', 'running')", order, t);
                    if (inUse + order.InstanceIds.Count > capacity)
                        return ProviderProgress.Transient(
                            $"No capacity for {order.InstanceIds.Count}x {order.InstanceType}: {Math.Max(0, capacity - inUse)} of {capacity} nodes free; waiting for capacity");
                }

                readyAt = now + (long)(_options.ProvisionSeconds * 1000);
                var instant = readyAt <= now;
                // The operation, its nodes and (with zero provisioning time, when the nodes are up as
                // they are created) the effect go in one command: one round trip on PostgreSQL.
                var start = new StringBuilder(
                    "INSERT INTO sim_operations (request_id, kind, started_at, ready_at) VALUES (@RequestId, 'provision', @now, @readyAt);");
                var args = new DynamicParameters(new
                {
                    order.RequestId, order.ClusterId, order.InstanceType, now, readyAt, state = instant ? "running" : "provisioning",
                    kind = "provision", objectId = order.ClusterId, requestId = order.RequestId, at = now,
                });
                // What a node's SSH files are made from at its first login, by this engine or a later one.
                args.Add("sshTenant", TenantOf(order));
                args.Add("sshKeys", AuthorizedKeysText(order.Keys));
                var nodes = new List<ProvisionedNode>(order.InstanceIds.Count);
                // The SSH ports are handed out with the nodes, in this transaction: a write of their
                // own per claim would halve what the single SQLite writer gets through.
                var ports = await PickPortsAsync(c, t, order.InstanceIds.Count);
                heldPorts.Clear(); // the write may run again (PostgreSQL retries a batch that lost a lock cycle)
                foreach (var instanceId in order.InstanceIds)
                {
                    var node = new ProvisionedNode(instanceId, AddressFor(order.ClusterId, nodes.Count));
                    start.Append(
                        $"""
                        INSERT INTO sim_nodes (instance_id, cluster_id, instance_type, request_id, state, ip_address, created_at, ssh_port, ssh_tenant, ssh_authorized_keys, node_index)
                        VALUES (@instance{nodes.Count}, @ClusterId, @InstanceType, @RequestId, @state, @ip{nodes.Count}, @now, @port{nodes.Count}, @sshTenant, @sshKeys, {nodes.Count});
                        """);
                    args.Add($"instance{nodes.Count}", instanceId);
                    args.Add($"ip{nodes.Count}", node.IpAddress);
                    int? port = nodes.Count < ports.Count ? ports[nodes.Count] : null;
                    args.Add($"port{nodes.Count}", port);
                    if (port is { } held)
                        heldPorts[instanceId] = held;
                    nodes.Add(node);
                }
                if (instant)
                    start.Append(RecordEffect);
                await c.ExecuteAsync(start.ToString(), args, t);
                if (instant)
                    return ProviderProgress.Done(done, nodes);
            }

            if (now < readyAt)
                return ProviderProgress.Working(
                    $"Provisioning {order.InstanceIds.Count} node(s) of {order.InstanceType}",
                    TimeSpan.FromMilliseconds(readyAt - now));

            await c.ExecuteAsync(
                "UPDATE sim_nodes SET state = 'running' WHERE cluster_id = @ClusterId AND request_id = @RequestId AND state = 'provisioning'", order, t);
            await RecordEffectAsync(c, t, "provision", order.ClusterId, order.RequestId, now);
            var provisioned = (await c.QueryAsync<(string InstanceId, string IpAddress, long? SshPort)>(
                "SELECT instance_id, ip_address, ssh_port FROM sim_nodes WHERE cluster_id = @ClusterId AND request_id = @RequestId",
                order, t)).AsList();
            heldPorts.Clear(); // the write may run again (PostgreSQL retries a batch that lost a lock cycle)
            foreach (var node in provisioned)
                if (node.SshPort is { } port)
                    heldPorts[node.InstanceId] = (int)port;
            return ProviderProgress.Done(done, provisioned.Select(n => new ProvisionedNode(n.InstanceId, n.IpAddress)).ToList());
        }, ct);

    public async Task<ProviderProgress> ReleaseAsync(ReleaseOrder order, CancellationToken ct)
    {
        var progress = await ReleaseNodesAsync(order, ct);
        if (progress.State == ProgressState.Done)
            await KillNodeProcessesAsync(order.ClusterId, ct);
        return progress;
    }

    private Task<ProviderProgress> ReleaseNodesAsync(ReleaseOrder order, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            await db.LockAsync(c, t, "sim:cluster:" + order.ClusterId);
            var now = clock.Now();
            // The tombstone comes first: from here on no provision of this cluster can take effect,
            // even one a superseded worker is still carrying out.
            await c.ExecuteAsync("INSERT INTO sim_tombstones (object_id, at) VALUES (@ClusterId, @now) ON CONFLICT DO NOTHING",
                new { order.ClusterId, now }, t);
            var live = await c.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM sim_nodes WHERE cluster_id = @ClusterId AND state IN ('provisioning', 'running')", order, t);
            var readyAt = await c.ExecuteScalarAsync<long?>(
                "SELECT ready_at FROM sim_operations WHERE request_id = @RequestId AND kind = 'release'", order, t);
            if (readyAt is null)
            {
                if (live == 0)
                    return ProviderProgress.Done("No nodes to release");
                readyAt = now + (long)(_options.ReleaseSeconds * 1000);
                await c.ExecuteAsync(
                    "INSERT INTO sim_operations (request_id, kind, started_at, ready_at) VALUES (@RequestId, 'release', @now, @readyAt)",
                    new { order.RequestId, now, readyAt }, t);
            }
            if (now < readyAt)
                return ProviderProgress.Working($"Releasing {live} node(s)", TimeSpan.FromMilliseconds(readyAt.Value - now));

            await c.ExecuteAsync(
                "UPDATE sim_nodes SET state = 'released', released_at = @now WHERE cluster_id = @ClusterId AND state IN ('provisioning', 'running')",
                new { order.ClusterId, now }, t);
            await RecordEffectAsync(c, t, "release", order.ClusterId, order.RequestId, now);
            return ProviderProgress.Done("Released all nodes");
        }, ct);

    public Task<ProviderProgress> CreateVolumeAsync(VolumeOrder order, CancellationToken ct) =>
        TimedAsync(order.RequestId, "volume_create", _options.VolumeSeconds, order.VolumeId, $"Creating a {order.SizeGb} GB volume", ct);

    public Task<ProviderProgress> DeleteVolumeAsync(VolumeOrder order, CancellationToken ct) =>
        TimedAsync(order.RequestId, "volume_delete", _options.VolumeSeconds, order.VolumeId, "Deleting the volume", ct);

    public Task<ProviderProgress> ResizeVolumeAsync(VolumeOrder order, CancellationToken ct) =>
        TimedAsync(order.RequestId, "volume_resize", _options.VolumeSeconds, order.VolumeId, $"Growing the volume to {order.SizeGb} GB", ct);

    // The nodes mount what sim_attachments lists (jobs and logins started from then on see it).
    public Task<ProviderProgress> AttachVolumeAsync(AttachmentOrder order, CancellationToken ct) =>
        TimedAsync(order.RequestId, "attach", _options.RestartSeconds, order.ClusterId, $"Restarting the nodes of {order.ClusterId} to mount {order.VolumeId}", ct,
            ("INSERT INTO sim_attachments (cluster_id, volume_id) VALUES (@ClusterId, @VolumeId) ON CONFLICT DO NOTHING", order));

    public Task<ProviderProgress> DetachVolumeAsync(AttachmentOrder order, CancellationToken ct) =>
        TimedAsync(order.RequestId, "detach", _options.RestartSeconds, order.ClusterId, $"Restarting the nodes of {order.ClusterId} to unmount {order.VolumeId}", ct,
            ("DELETE FROM sim_attachments WHERE cluster_id = @ClusterId AND volume_id = @VolumeId", order));

    /// <summary>
    /// An operation that simply takes <paramref name="seconds"/>: started on the first call (keyed by
    /// request and kind, so a repeated call continues it), done with its effect recorded once ready.
    /// </summary>
    /// <param name="onDone">An idempotent statement that makes the effect, run in the same transaction each time the operation is found done.</param>
    private Task<ProviderProgress> TimedAsync(string requestId, string kind, double seconds, string objectId, string working, CancellationToken ct,
        (string Sql, object Args)? onDone = null) =>
        db.WriteAsync(async (c, t) =>
        {
            var now = clock.Now();
            // First call starts the operation; a repeated or concurrent one finds it.
            await c.ExecuteAsync(
                "INSERT INTO sim_operations (request_id, kind, started_at, ready_at) VALUES (@requestId, @kind, @now, @readyAt) ON CONFLICT DO NOTHING",
                new { requestId, kind, now, readyAt = now + (long)(seconds * 1000) }, t);
            var readyAt = await c.ExecuteScalarAsync<long>(
                "SELECT ready_at FROM sim_operations WHERE request_id = @requestId AND kind = @kind", new { requestId, kind }, t);
            if (now < readyAt)
                return ProviderProgress.Working(working, TimeSpan.FromMilliseconds(readyAt - now));
            if (onDone is { } effect)
                await c.ExecuteAsync(effect.Sql, effect.Args, t);
            await RecordEffectAsync(c, t, kind, objectId, requestId, now);
            return ProviderProgress.Done(working + ": done");
        }, ct);

    private const string RecordEffect =
        "INSERT INTO sim_effects (kind, object_id, request_id, at) VALUES (@kind, @objectId, @requestId, @at) ON CONFLICT DO NOTHING";

    private static Task<int> RecordEffectAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t, string kind, string objectId, string requestId, long at) =>
        c.ExecuteAsync(RecordEffect, new { kind, objectId, requestId, at }, t);

    // string.GetHashCode is randomized per process; fault rolls and addresses must repeat across restarts.
    /// <summary>Addresses from TEST-NET-3 (RFC 5737): clearly fake, never routed anywhere.</summary>
    private static string AddressFor(string clusterId, int index)
    {
        var hash = (uint)StableHash(clusterId);
        return $"203.0.113.{(hash + (uint)index) % 254 + 1}";
    }

    private static int StableHash(string text)
    {
        unchecked
        {
            var hash = 17;
            foreach (var ch in text)
                hash = (hash * 31) + ch;
            return hash;
        }
    }

    private sealed class ProvisionState
    {
        public long Released { get; set; }
        public long? ReadyAt { get; set; }
    }
}
