using System.Data.Common;
using System.Text;
using System.Text.Json;
using Dapper;
using OpenPool.Contracts;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Clusters;

internal sealed record ClusterSpec(
    InstanceType Type, int NumNodes, string? Name, string? Container, bool DeletionProtection,
    IReadOnlyList<SshPublicKey>? PublicKeys = null, bool SaveKeys = true);

internal sealed record ClusterEdit(string? Name, bool? DeletionProtection);

/// <summary>Cluster rows and the requests that change them, written together in one transaction.</summary>
internal sealed class ClusterStore(Database db, TimeProvider clock, IOptions<BillingOptions> billing)
{
    private const string ClusterColumns =
        "c.id, c.user_id AS UserId, c.org_id AS OrgId, c.name, c.instance_type AS InstanceType, c.num_nodes AS NumNodes, c.status, " +
        "c.deletion_protection AS DeletionProtection, c.container, c.price_micros_per_hour AS PriceMicrosPerHour, " +
        "c.created_at AS CreatedAt, c.updated_at AS UpdatedAt, u.email AS OwnerEmail, o.name AS OrgName";

    private const string ClusterFrom = "FROM clusters c JOIN users u ON u.id = c.user_id LEFT JOIN orgs o ON o.id = c.org_id";

    /// <summary>
    /// Checks the claim (name free, balance enough), then writes the cluster, its instances, its keys
    /// and its request. On PostgreSQL that is two round trips however many nodes and keys: one for
    /// every check, one for every row.
    /// </summary>
    public Task<(ClusterRecord Cluster, RequestRow Request)> CreateAsync(Principal owner, ClusterSpec spec, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var now = clock.Now();
            var pricePerHour = (long)(spec.Type.PricePerHourUsd * spec.NumNodes * Ledger.MicrosPerUsd);
            var account = BillingAccount.Of(owner.UserId, owner.OrgId);
            IReadOnlyList<SshKeyStore.SavedKey> savedKeys;
            using (var checks = await c.QueryMultipleAsync(
                (spec.Name is null ? "" : NameHolderSql + ";\n") + Ledger.BalanceSql(account) + ";\n" + SshKeyStore.KeysForNewClusterSql,
                new { owner.UserId, owner.OrgId, name = spec.Name, except = "", account.Kind, account.Id }, t))
            {
                if (spec.Name is not null && await checks.ReadSingleOrDefaultAsync<string>() is { } holder)
                    throw NameTaken(spec.Name, holder);
                var balance = Ledger.BalanceMicros(await checks.ReadSingleOrDefaultAsync<Ledger.AccountMeter>(), billing.Value, now);
                EnsureBalanceCovers(balance, pricePerHour, spec);
                savedKeys = (await checks.ReadAsync<SshKeyStore.SavedKey>()).AsList();
            }
            var cluster = new ClusterRecord
            {
                Id = Ids.Cluster(),
                UserId = owner.UserId,
                OrgId = owner.OrgId,
                Name = spec.Name,
                InstanceType = spec.Type.Name,
                NumNodes = spec.NumNodes,
                Status = ClusterStatuses.Pending,
                DeletionProtection = spec.DeletionProtection,
                Container = spec.Container,
                PriceMicrosPerHour = pricePerHour,
                CreatedAt = now,
                UpdatedAt = now,
                OwnerEmail = owner.Email,
                OrgName = owner.OrgName,
            };
            var insert = new StringBuilder(
                """
                INSERT INTO clusters (id, user_id, org_id, name, instance_type, num_nodes, status, deletion_protection, container,
                                      price_micros_per_hour, created_at, updated_at)
                VALUES (@Id, @UserId, @OrgId, @Name, @InstanceType, @NumNodes, @Status, @DeletionProtection, @Container,
                        @PriceMicrosPerHour, @CreatedAt, @UpdatedAt);
                """);
            var args = new DynamicParameters(cluster);
            for (var index = 0; index < spec.NumNodes; index++)
            {
                var instance = new InstanceRecord { Id = Ids.Instance(), ClusterId = cluster.Id, NodeIndex = index, Status = ClusterStatuses.Pending };
                insert.Append($"\nINSERT INTO instances (id, cluster_id, node_index, status, created_at) VALUES (@instance{index}, @Id, {index}, @Status, @CreatedAt);");
                args.Add($"instance{index}", instance.Id);
                cluster.Instances.Add(instance);
            }
            cluster.Keys = await AssignKeysAsync(c, t, owner, savedKeys, spec, now, insert, args);
            var request = RequestStore.NewRow(RequestType.ClusterClaim, owner, cluster.Id, ClaimHandler.FirstStepName, ClaimOrder.Payload(cluster), now);
            RequestStore.AddInsert(insert, args, request);
            request.Seq = await c.ExecuteScalarAsync<long>(insert.ToString(), args, t);
            return (cluster, request);
        }, ct);

    /// <summary>Applies the edit to the row at once (so a following destroy sees the new protection) and records it as a CLUSTER_EDIT request.</summary>
    public Task<RequestRow> EditAsync(Principal caller, string clusterId, ClusterEdit edit, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var cluster = await GetVisibleAsync(c, t, caller, clusterId) ?? throw NotFound(clusterId);
            if (cluster.Status is ClusterStatuses.Destroyed or ClusterStatuses.Destroying)
                throw ApiError.Conflict("cluster_destroyed", $"Cluster {clusterId} is {cluster.Status.ToLowerInvariant()} and can no longer be edited.");
            var now = clock.Now();
            if (edit.Name is not null && edit.Name != cluster.Name)
                await EnsureNameFreeAsync(c, t, caller, edit.Name, exceptClusterId: clusterId);
            await c.ExecuteAsync(
                """
                UPDATE clusters SET name = COALESCE(@Name, name), deletion_protection = COALESCE(@DeletionProtection, deletion_protection),
                                    updated_at = @now
                WHERE id = @clusterId
                """, new { edit.Name, edit.DeletionProtection, now, clusterId }, t);
            var payload = JsonSerializer.Serialize(new { cluster_name = edit.Name, deletion_protection = edit.DeletionProtection });
            return await RequestStore.EnqueueAsync(c, t, RequestType.ClusterEdit, caller, clusterId, EditHandler.FirstStepName, payload, now);
        }, ct);

    public Task<(RequestRow Release, IReadOnlyList<string> Superseded)> DestroyAsync(Principal caller, string clusterId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var cluster = await GetVisibleAsync(c, t, caller, clusterId) ?? throw NotFound(clusterId);
            if (cluster.DeletionProtection)
                throw ApiError.Conflict("deletion_protected",
                    $"Cluster {clusterId} has deletion protection enabled. Turn it off first: tp cluster edit {clusterId} --deletion-protection false");
            if (cluster.Status == ClusterStatuses.Destroyed)
                throw ApiError.Conflict("cluster_destroyed", $"Cluster {clusterId} is already destroyed.");
            var pendingRelease = await c.ExecuteScalarAsync<string?>(
                "SELECT id FROM requests WHERE object_id = @clusterId AND type = 'CLUSTER_RELEASE' AND finished_at IS NULL",
                new { clusterId }, t);
            if (pendingRelease is not null)
                throw ApiError.Conflict("cluster_destroying", $"Cluster {clusterId} is already being destroyed ({pendingRelease}).");

            return await BeginReleaseAsync(c, t, caller, clusterId, clock.Now());
        }, ct);

    /// <summary>
    /// A job's teardown: releases the cluster on its owner's behalf, unless it is already going or
    /// protected (a 409 the caller records on the job). Returns whether a release was queued.
    /// </summary>
    public Task<bool> ReleaseAfterJobAsync(string clusterId, string jobId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var cluster = await FindAsync(c, t, clusterId);
            if (cluster is null || cluster.Status is ClusterStatuses.Destroying or ClusterStatuses.Destroyed)
                return false;
            if (cluster.DeletionProtection)
                throw ApiError.Conflict("deletion_protected", $"cluster {clusterId} has deletion protection enabled");
            var owner = OwnerOf(cluster);
            await BeginReleaseAsync(c, t, owner, clusterId, clock.Now());
            return true;
        }, ct);

    /// <summary>The exhaustion policy's release: no caller, and deletion protection does not hold it back.</summary>
    public Task ReleaseForUnpaidBalanceAsync(string clusterId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var cluster = await FindAsync(c, t, clusterId);
            if (cluster is null || cluster.Status != ClusterStatuses.Running)
                return;
            var owner = OwnerOf(cluster);
            await BeginReleaseAsync(c, t, owner, clusterId, clock.Now());
        }, ct);

    /// <summary>
    /// Marks the cluster DESTROYING, stops its meter and queues its release. A claim still in flight
    /// is superseded (ended FAILED, its token bumped) so the release need not wait for provisioning.
    /// </summary>
    private static async Task<(RequestRow Release, IReadOnlyList<string> Superseded)> BeginReleaseAsync(
        DbConnection c, DbTransaction t, Principal owner, string clusterId, long now)
    {
        var superseded = await RequestStore.SupersedeAsync(c, t, clusterId, RequestType.ClusterClaim,
            "cluster destroyed before provisioning finished", now);
        var write = new SqlBatch(c, t);
        SetStatus(write, clusterId, ClusterStatuses.Destroying, now);
        write.Add(
            "UPDATE clusters SET billing_ended_at = @now WHERE id = @clusterId AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL",
            new { clusterId, now });
        await write.FlushAsync();
        await Ledger.ChargeClusterAsync(c, t, clusterId, now);
        var release = await RequestStore.EnqueueAsync(c, t, RequestType.ClusterRelease, owner, clusterId, ReleaseHandler.FirstStepName, "{}", now);
        return (release, superseded);
    }

    public Task<ClusterRecord?> GetVisibleAsync(Principal caller, string clusterId, CancellationToken ct) =>
        db.ReadAsync(c => GetVisibleAsync(c, null, caller, clusterId), ct);

    /// <summary>Any cluster by id, for workers acting on a request's object.</summary>
    public async Task<ClusterRecord?> GetAsync(string clusterId, CancellationToken ct)
    {
        // Every claim starts here: the cluster and its instances in one round trip on PostgreSQL, on
        // kept-open prepared readers on SQLite.
        var (cluster, instances) = await db.ReadRowAndRowsAsync<ClusterRecord, InstanceRecord>(
            ById, $"SELECT {InstanceColumns} FROM instances WHERE cluster_id = @key ORDER BY node_index", clusterId, ct);
        if (cluster is not null)
            cluster.Instances = instances;
        return cluster;
    }

    private const string InstanceColumns =
        "id, cluster_id AS ClusterId, node_index AS NodeIndex, status, ip_address AS IpAddress, ssh_host AS SshHost, ssh_port AS SshPort, " +
        "ssh_user AS SshUser, ssh_host_key_fingerprint AS SshHostKeyFingerprint";
    private const string ById = $"SELECT {ClusterColumns} {ClusterFrom} WHERE c.id = @key";

    /// <summary>The cluster row alone, whoever owns it: for work done on the owner's behalf (workers, teardown, billing).</summary>
    private static Task<ClusterRecord?> FindAsync(DbConnection c, DbTransaction? t, string clusterId) =>
        c.QuerySingleOrDefaultAsync<ClusterRecord?>(ById, new { key = clusterId }, t);

    /// <summary>The owner as a caller, so requests the engine starts for them are theirs like any other.</summary>
    private static Principal OwnerOf(ClusterRecord cluster) =>
        new(cluster.UserId, cluster.OwnerEmail, cluster.OrgId, cluster.OrgName, "member", false);

    public Task<IReadOnlyList<ClusterRecord>> ListAsync(Principal caller, bool includeOrg, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<ClusterRecord>>(async c =>
        {
            if (includeOrg && caller.OrgId is null)
                return [];
            var clusters = (await c.QueryAsync<ClusterRecord>(
                $"""
                SELECT {ClusterColumns} {ClusterFrom}
                WHERE {(includeOrg ? "c.org_id = @OrgId" : "c.user_id = @UserId")} AND c.status NOT IN ('DESTROYED', 'FAILED')
                ORDER BY c.created_at DESC
                """, new { caller.OrgId, caller.UserId })).AsList();
            var instances = await InstancesAsync(c, null, clusters.Select(x => x.Id).ToArray());
            var byCluster = instances.ToLookup(i => i.ClusterId);
            foreach (var cluster in clusters)
                cluster.Instances = byCluster[cluster.Id].ToList();
            return clusters;
        }, ct);

    /// <summary>The OpenSSH lines of the keys the cluster was created with (what its nodes let in).</summary>
    public Task<IReadOnlyList<string>> PublicKeysAsync(string clusterId, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<string>>(async c =>
            (await c.QueryAsync<string>("SELECT public_key FROM cluster_keys WHERE cluster_id = @clusterId ORDER BY fingerprint", new { clusterId })).AsList(), ct);

    /// <summary>The instance and its cluster, if the caller may see them.</summary>
    public Task<(InstanceRecord Instance, ClusterRecord Cluster)?> GetInstanceAsync(Principal caller, string instanceId, CancellationToken ct) =>
        db.ReadAsync<(InstanceRecord, ClusterRecord)?>(async c =>
        {
            var clusterId = await c.ExecuteScalarAsync<string?>("SELECT cluster_id FROM instances WHERE id = @instanceId", new { instanceId });
            if (clusterId is null)
                return null;
            var cluster = await GetVisibleAsync(c, null, caller, clusterId);
            var instance = cluster?.Instances.FirstOrDefault(i => i.Id == instanceId);
            return cluster is null || instance is null ? null : (instance, cluster);
        }, ct);

    /// <summary>Moves the cluster and its instances to <paramref name="status"/>; with <paramref name="onlyFrom"/>, only from those states.</summary>
    public static void SetStatus(SqlBatch write, string clusterId, string status, long now, params string[] onlyFrom) =>
        ChangeStatus(write, clusterId, status, now, "", onlyFrom);

    /// <summary>
    /// Moves the cluster and its instances to RUNNING from one of <paramref name="onlyFrom"/>, and
    /// starts its meter unless it has started already: the nodes are now the user's to use.
    /// </summary>
    public static void StartRunning(SqlBatch write, string clusterId, long now, params string[] onlyFrom) =>
        ChangeStatus(write, clusterId, ClusterStatuses.Running, now,
            // Right-hand sides read the row as it was, so both columns test the meter's old start.
            ", billing_started_at = COALESCE(billing_started_at, @now), billed_until = CASE WHEN billing_started_at IS NULL THEN @now ELSE billed_until END",
            onlyFrom);

    /// <summary>The instances follow the cluster only when the cluster's row changed.</summary>
    private static void ChangeStatus(SqlBatch write, string clusterId, string status, long now, string alsoSet, string[] onlyFrom)
    {
        var guard = onlyFrom.Length == 0 ? "" : " AND " + Sql.In(write, "status", "@onlyFrom");
        var update = $"UPDATE clusters SET status = @status, updated_at = @now{alsoSet} WHERE id = @clusterId{guard}";
        var args = new { clusterId, status, now, onlyFrom };
        if (write.IsPostgres)
        {
            write.Add(
                $"""
                WITH changed AS ({update} RETURNING id)
                UPDATE instances SET status = @status WHERE cluster_id IN (SELECT id FROM changed)
                """, args);
            return;
        }
        // changes() is the row count of the statement just before, the cluster's update.
        write.Add($"{update};\nUPDATE instances SET status = @status WHERE cluster_id = @clusterId AND changes() > 0", args);
    }

    /// <summary>The cluster, if the caller may see it, read inside another store's transaction.</summary>
    public static async Task<ClusterRecord?> GetVisibleAsync(DbConnection c, DbTransaction? t, Principal caller, string clusterId)
    {
        var cluster = await c.QuerySingleOrDefaultAsync<ClusterRecord>(
            $"SELECT {ClusterColumns} {ClusterFrom} WHERE c.id = @clusterId AND (c.user_id = @UserId OR (c.org_id IS NOT NULL AND c.org_id = @OrgId))",
            new { clusterId, caller.UserId, caller.OrgId }, t);
        if (cluster is not null)
        {
            cluster.Instances = await InstancesAsync(c, t, [cluster.Id]);
            cluster.Keys = (await c.QueryAsync<ClusterKey>(
                "SELECT name, fingerprint FROM cluster_keys WHERE cluster_id = @clusterId ORDER BY name", new { clusterId }, t)).AsList();
        }
        return cluster;
    }

    private static async Task<List<InstanceRecord>> InstancesAsync(DbConnection c, DbTransaction? t, string[] clusterIds)
    {
        if (clusterIds.Length == 0)
            return [];
        var rows = await c.QueryAsync<InstanceRecord>(
            $"SELECT {InstanceColumns} FROM instances WHERE {Sql.In(c, "cluster_id", "@clusterIds")} ORDER BY cluster_id, node_index",
            new { clusterIds }, t);
        return rows.AsList();
    }

    /// <summary>Refuses a claim the account cannot pay for: it must cover the configured hours of the cluster's price.</summary>
    private void EnsureBalanceCovers(long balance, long pricePerHour, ClusterSpec spec)
    {
        var needed = (long)(pricePerHour * billing.Value.ClusterMinimumHours);
        if (balance < needed)
            throw new ApiError(StatusCodes.Status402PaymentRequired, "insufficient_balance", FormattableString.Invariant(
                $"Your balance is ${Ledger.ToUsd(balance):0.00}; a {spec.NumNodes}-node {spec.Type.Name} cluster costs ${Ledger.ToUsd(pricePerHour):0.00}/hour and needs at least ${Ledger.ToUsd(needed):0.00} to start. Ask your operator for credit."));
    }

    /// <summary>
    /// The keys installed on a new cluster: the owner's saved keys and the organization's
    /// (<paramref name="saved"/>), and any sent with the request (saved to the profile too unless
    /// save_keys is false). Their rows join the cluster's insert.
    /// </summary>
    private static async Task<List<ClusterKey>> AssignKeysAsync(DbConnection c, DbTransaction t, Principal owner, IReadOnlyList<SshKeyStore.SavedKey> saved,
        ClusterSpec spec, long now, StringBuilder insert, DynamicParameters args)
    {
        var extra = spec.PublicKeys ?? [];
        if (spec.SaveKeys)
            foreach (var key in extra)
                await SshKeyStore.SaveIfNewAsync(c, t, owner, key, now);
        // A sent key saved just now gets the name it would have had as a saved one.
        var keys = new Dictionary<string, (string Name, string PublicKey)>();
        foreach (var key in saved)
            keys.TryAdd(key.Fingerprint, (key.Name, key.PublicKey));
        foreach (var key in extra)
            keys.TryAdd(key.Fingerprint, (key.Comment ?? owner.Email, key.Line));
        var index = 0;
        foreach (var (fingerprint, (name, publicKey)) in keys)
        {
            insert.Append($"\nINSERT INTO cluster_keys (cluster_id, fingerprint, name, public_key) VALUES (@Id, @keyFingerprint{index}, @keyName{index}, @keyLine{index});");
            args.Add($"keyFingerprint{index}", fingerprint);
            args.Add($"keyName{index}", name);
            args.Add($"keyLine{index}", publicKey);
            index++;
        }
        return keys.Select(k => new ClusterKey { Fingerprint = k.Key, Name = k.Value.Name, PublicKey = k.Value.PublicKey }).OrderBy(k => k.Name).ToList();
    }

    /// <summary>Another live cluster of the owner's with this name. Parameters: <c>@UserId</c>, <c>@name</c>, <c>@except</c> (a cluster id to ignore, or '').</summary>
    private const string NameHolderSql =
        "SELECT id FROM clusters WHERE user_id = @UserId AND name = @name AND status NOT IN ('DESTROYED', 'FAILED') AND id <> @except";

    private static ApiError NameTaken(string name, string holder) =>
        ApiError.Conflict("cluster_name_taken", $"You already have a cluster named '{name}' ({holder}). Cluster names must be unique.");

    private static async Task EnsureNameFreeAsync(DbConnection c, DbTransaction t, Principal owner, string name, string? exceptClusterId)
    {
        var holder = await c.ExecuteScalarAsync<string?>(NameHolderSql, new { owner.UserId, name, except = exceptClusterId ?? "" }, t);
        if (holder is not null)
            throw NameTaken(name, holder);
    }

    public static ApiError NotFound(string clusterId) => ApiError.NotFound("cluster_not_found", $"Cluster {clusterId} not found.");
}
