using Dapper;
using OpenPool.Engine.Providers.Simulated.Ssh;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// SSH access to simulated nodes, on the provider's side: a node that comes up gets its host key,
/// the cluster's keys, a port of <c>Simulated:SshPorts</c> (kept in <c>sim_nodes</c>, so a restart
/// listens on the same one) and its listener; a release closes the port and ends the logins.
/// </summary>
internal sealed partial class SimulatedCloud
{
    private readonly Lock _portCursorLock = new();
    private int? _portCursor;

    public string? SshProblem => logins.Problem;

    /// <summary>The nodes with how each is reached over SSH; a node stays without when SSH is unavailable or no port is free. Idempotent.</summary>
    private async Task<IReadOnlyList<ProvisionedNode>> WithSshAccessAsync(ProvisionOrder order, IReadOnlyList<ProvisionedNode> nodes, CancellationToken ct)
    {
        if (logins.Problem is not null)
            return nodes;
        var uid = sandbox.UidOf(order.Tenant ?? order.ClusterId);
        var reached = new List<ProvisionedNode>(nodes.Count);
        foreach (var node in nodes)
        {
            var root = NodeRoot(node.InstanceId);
            NodeSandbox.PrepareNode(node.InstanceId, root, uid);
            var fingerprint = await logins.PrepareAsync(node.InstanceId, root, order.Keys, ct);
            var port = await ListenOnPortAsync(node.InstanceId, ct);
            reached.Add(port is { } p ? node with { Ssh = new NodeAccess(logins.Host, p, NodeLogins.User, fingerprint) } : node);
        }
        return reached;
    }

    /// <summary>
    /// Listens for the node on the port it holds, or on a newly assigned one when it holds none (or
    /// another program took its port while no engine listened). Null when no port of the range is free.
    /// </summary>
    private async Task<int?> ListenOnPortAsync(string instanceId, CancellationToken ct)
    {
        var root = NodeRoot(instanceId);
        var held = await db.ReadAsync(c => c.ExecuteScalarAsync<long?>("SELECT ssh_port FROM sim_nodes WHERE instance_id = @instanceId", new { instanceId }), ct);
        if (held is { } current && logins.TryListen(instanceId, root, (int)current))
            return await StillLiveAsync(instanceId, ct) ? (int)current : null;
        var tried = new HashSet<int>();
        for (var attempt = 0; attempt < 64; attempt++)
        {
            if (await NextPortAsync(tried, ct) is not { } candidate)
                break;
            tried.Add(candidate);
            if (!logins.TryListen(instanceId, root, candidate))
                continue;
            // Under a lock and only when no live node has it: a replica on the same database may have
            // taken the port meanwhile, and a released node gets no port.
            var taken = await db.WriteAsync(async (c, t) =>
            {
                await db.LockAsync(c, t, "sim:ssh-ports");
                return await c.ExecuteAsync(
                    """
                    UPDATE sim_nodes SET ssh_port = @candidate
                    WHERE instance_id = @instanceId AND state IN ('provisioning', 'running')
                      AND NOT EXISTS (SELECT 1 FROM sim_nodes other WHERE other.ssh_port = @candidate AND other.instance_id <> @instanceId
                                      AND other.state IN ('provisioning', 'running'))
                    """, new { candidate, instanceId }, t);
            }, ct);
            if (taken == 1)
                return await StillLiveAsync(instanceId, ct) ? candidate : null;
            logins.Close(instanceId, root);
            if (!await StillLiveAsync(instanceId, ct))
                return null;
        }
        return null;
    }

    /// <summary>
    /// Whether the node is not released; a release that closed the node's logins while this call was
    /// opening them would otherwise leave its port open. Closes them when it was released.
    /// </summary>
    private async Task<bool> StillLiveAsync(string instanceId, CancellationToken ct)
    {
        var released = await db.ReadAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM sim_nodes WHERE instance_id = @instanceId AND state = 'released'", new { instanceId }), ct);
        if (released == 0)
            return true;
        logins.Close(instanceId, NodeRoot(instanceId));
        return false;
    }

    /// <summary>
    /// The next port to try, going round the range from after the one handed out last: a port freed
    /// by a release (or by an engine that stopped) is the last to be handed out again.
    /// </summary>
    private async Task<int?> NextPortAsync(HashSet<int> tried, CancellationToken ct)
    {
        var (first, last) = logins.Ports;
        if (_portCursor is null)
        {
            var latest = await db.ReadAsync(c => c.ExecuteScalarAsync<long?>(
                "SELECT ssh_port FROM sim_nodes WHERE ssh_port IS NOT NULL ORDER BY created_at DESC, instance_id DESC LIMIT 1"), ct);
            lock (_portCursorLock)
                _portCursor ??= latest is { } port && port < last ? (int)port + 1 : first;
        }
        var size = last - first + 1;
        lock (_portCursorLock)
        {
            var from = Math.Clamp(_portCursor.Value, first, last);
            for (var step = 0; step < size; step++)
            {
                var candidate = first + ((from - first + step) % size);
                if (tried.Contains(candidate) || logins.IsListening(candidate))
                    continue;
                _portCursor = candidate == last ? first : candidate + 1;
                return candidate;
            }
        }
        return null;
    }

    /// <summary>At engine start: listens again for every running node that has a port (their logins kept running meanwhile).</summary>
    public async Task ReopenLoginsAsync(CancellationToken ct)
    {
        if (logins.Problem is not null)
            return;
        var nodes = await db.ReadAsync(c => c.QueryAsync<(string InstanceId, long Port)>(
            "SELECT instance_id, ssh_port FROM sim_nodes WHERE state = 'running' AND ssh_port IS NOT NULL"), ct);
        foreach (var (instanceId, port) in nodes)
        {
            var root = NodeRoot(instanceId);
            if (!NodeSandbox.IsPrepared(root))
                continue;
            if (!logins.TryListen(instanceId, root, (int)port))
                Console.WriteLine($"SSH: port {port} of {instanceId} is taken by another program; the node cannot be logged in to until it is free and the engine restarts.");
        }
    }

    /// <summary>Closes the released nodes' ports and ends their logins.</summary>
    private void CloseLogins(IEnumerable<string> instanceIds)
    {
        foreach (var instanceId in instanceIds)
            logins.Close(instanceId, NodeRoot(instanceId));
    }
}
