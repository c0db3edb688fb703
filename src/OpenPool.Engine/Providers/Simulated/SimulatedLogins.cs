using Dapper;
using OpenPool.Engine.Providers.Simulated.Ssh;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// SSH access to simulated nodes, on the provider's side: a node that comes up gets a port of
/// <c>Simulated:SshPorts</c> and its listener, and reports its host key's fingerprint (derived, see
/// <see cref="NodeLogins"/>); the port, the tenant and the cluster's keys are kept in <c>sim_nodes</c>,
/// so a restart listens on the same port and can make the node's files at its first login. No file
/// is written per node here. A release closes the port and ends the logins.
/// </summary>
internal sealed partial class SimulatedCloud
{
    private readonly Lock _portCursorLock = new();
    private int? _portCursor;

    public string? SshProblem => logins.Problem;

    /// <summary>The nodes with how each is reached over SSH; a node stays without when SSH is unavailable or no port is free. Idempotent.</summary>
    /// <param name="heldPorts">The ports the nodes hold already, as the provision read them (a node absent from it holds none).</param>
    private async Task<IReadOnlyList<ProvisionedNode>> WithSshAccessAsync(ProvisionOrder order, IReadOnlyList<ProvisionedNode> nodes,
        IReadOnlyDictionary<string, int> heldPorts, CancellationToken ct)
    {
        if (logins.Problem is not null)
            return nodes;
        var setup = new NodeSetup(TenantOf(order), order.Keys, order.ClusterId);
        var reached = new List<ProvisionedNode>(nodes.Count);
        foreach (var node in nodes)
        {
            if (logins.DerivedFingerprint(node.InstanceId) is not { } fingerprint)
            {
                // Without libcrypto the key is ssh-keygen's, random: it is made now, with the node's files.
                var root = NodeRoot(node.InstanceId);
                NodeSandbox.PrepareNode(node.InstanceId, root, sandbox.UidOf(setup.Tenant));
                fingerprint = await logins.PrepareAsync(node.InstanceId, root, order.Keys, order.ClusterId, ct);
            }
            var port = await ListenOnPortAsync(node.InstanceId, heldPorts.TryGetValue(node.InstanceId, out var held) ? held : null, setup, ct);
            reached.Add(port is { } p ? node with { Ssh = new NodeAccess(logins.Host, p, NodeLogins.User, fingerprint) } : node);
        }
        return reached;
    }

    /// <summary>
    /// Listens for the node on the port it holds, or on a newly assigned one when it holds none (or
    /// another program took its port while no engine listened). Null when no port of the range is free.
    /// </summary>
    private static string TenantOf(ProvisionOrder order) => order.Tenant ?? order.ClusterId;

    /// <summary>The cluster's keys as <c>sim_nodes.ssh_authorized_keys</c> keeps them: one OpenSSH line each.</summary>
    private static string AuthorizedKeysText(IReadOnlyList<string> keys) => string.Join('\n', keys.Select(k => k.Trim()));

    /// <summary>
    /// The provision wrote the order's keys with the nodes already (in the same INSERT, so a claim
    /// costs no extra write), so at a claim this only reads and finds them there. Keys that differ
    /// are written to the nodes' rows and, for nodes logged in to already, to their /etc/ssh.
    /// </summary>
    public async Task<ProviderProgress> InstallKeysAsync(KeyOrder order, CancellationToken ct)
    {
        var text = AuthorizedKeysText(order.PublicKeys);
        var args = new { order.ClusterId, text };
        const string live = "cluster_id = @ClusterId AND state IN ('provisioning', 'running')";
        var stale = await db.ReadAsync(async c => (await c.QueryAsync<string>(
            $"SELECT instance_id FROM sim_nodes WHERE {live} AND (ssh_authorized_keys IS NULL OR ssh_authorized_keys <> @text)", args)).AsList(), ct);
        if (stale.Count > 0)
        {
            await db.WriteAsync((c, t) => c.ExecuteAsync($"UPDATE sim_nodes SET ssh_authorized_keys = @text WHERE {live}", args, t), ct);
            foreach (var instanceId in stale)
                await logins.ReplaceKeysAsync(instanceId, NodeRoot(instanceId), order.PublicKeys, order.ClusterId, ct);
        }
        return ProviderProgress.Done($"{order.PublicKeys.Count} key(s) log in to the nodes of {order.ClusterId}");
    }

    private async Task<int?> ListenOnPortAsync(string instanceId, int? held, NodeSetup setup, CancellationToken ct)
    {
        var root = NodeRoot(instanceId);
        // A release that closed the node meanwhile makes TryListen refuse, so a listener opened here
        // is either for a live node or closed by its release.
        if (held is { } current && logins.TryListen(instanceId, root, current, setup))
            return current;
        var tried = new HashSet<int>();
        for (var attempt = 0; attempt < 64; attempt++)
        {
            if (await NextPortAsync(tried, ct) is not { } candidate)
                break;
            tried.Add(candidate);
            if (!logins.TryListen(instanceId, root, candidate, setup))
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
            // The update found the node live with the listener already registered: a release from
            // here on closes it.
            if (taken == 1)
                return candidate;
            // Another live node has the port (a replica's), or this one was released.
            logins.StopListening(instanceId);
        }
        return null;
    }

    /// <summary>
    /// Up to <paramref name="count"/> ports for new nodes, inside the provision's transaction: ones no
    /// live node holds (under a lock, for replicas on one database) and this engine does not listen
    /// on. Fewer (none) when SSH is unavailable or the range is full. A port another program holds is
    /// found when the node binds it, and then exchanged (<see cref="ListenOnPortAsync"/>).
    /// </summary>
    private async Task<IReadOnlyList<int>> PickPortsAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t, int count)
    {
        if (logins.Problem is not null)
            return [];
        await db.LockAsync(c, t, "sim:ssh-ports");
        var picked = new List<int>(count);
        var tried = new HashSet<int>();
        var (first, last) = logins.Ports;
        while (picked.Count < count && tried.Count < last - first + 1)
        {
            var candidates = new List<int>();
            while (candidates.Count < count - picked.Count + 4 && await NextPortAsync(tried, CancellationToken.None, c, t) is { } candidate)
            {
                tried.Add(candidate);
                candidates.Add(candidate);
            }
            if (candidates.Count == 0)
                break;
            var live = (await c.QueryAsync<long>(
                $"SELECT ssh_port FROM sim_nodes WHERE {Data.Sql.In(c, "ssh_port", "@candidates")} AND state IN ('provisioning', 'running')",
                new { candidates }, t)).Select(p => (int)p).ToHashSet();
            picked.AddRange(candidates.Where(p => !live.Contains(p)).Take(count - picked.Count));
        }
        return picked;
    }

    /// <summary>
    /// The next port to try, going round the range from after the one handed out last: a port freed
    /// by a release (or by an engine that stopped) is the last to be handed out again.
    /// </summary>
    private async Task<int?> NextPortAsync(HashSet<int> tried, CancellationToken ct,
        System.Data.Common.DbConnection? inTransaction = null, System.Data.Common.DbTransaction? transaction = null)
    {
        var (first, last) = logins.Ports;
        if (_portCursor is null)
        {
            const string latestSql = "SELECT ssh_port FROM sim_nodes WHERE ssh_port IS NOT NULL ORDER BY created_at DESC, instance_id DESC LIMIT 1";
            var latest = inTransaction is not null
                ? await inTransaction.ExecuteScalarAsync<long?>(latestSql, transaction: transaction)
                : await db.ReadAsync(c => c.ExecuteScalarAsync<long?>(latestSql), ct);
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

    /// <summary>
    /// At engine start: listens again for every running node that has a port (their logins kept
    /// running meanwhile), those never logged in to included: their files are made at the first login.
    /// </summary>
    public async Task ReopenLoginsAsync(CancellationToken ct)
    {
        if (logins.Problem is not null)
            return;
        var nodes = await db.ReadAsync(c => c.QueryAsync<(string InstanceId, long Port, string? Tenant, string? Keys, string ClusterId)>(
            "SELECT instance_id, ssh_port, ssh_tenant, ssh_authorized_keys, cluster_id FROM sim_nodes WHERE state = 'running' AND ssh_port IS NOT NULL"), ct);
        foreach (var (instanceId, port, tenant, keys, clusterId) in nodes)
        {
            var root = NodeRoot(instanceId);
            NodeSetup? setup = tenant is null
                ? null
                : new NodeSetup(tenant, (keys ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), clusterId);
            if (setup is null && !NodeSandbox.IsPrepared(root))
                continue;
            if (!logins.TryListen(instanceId, root, (int)port, setup))
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
