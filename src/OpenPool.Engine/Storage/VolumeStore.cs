using System.Data.Common;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Storage;

internal sealed record VolumeEdit(string? Name, bool? DeletionProtection, int? SizeGb);

/// <summary>Volume rows, their attachments, and the requests that change them, written together.</summary>
internal sealed class VolumeStore(Database db, TimeProvider clock, IOptions<BillingOptions> billing)
{
    private const string Columns =
        "v.id, v.user_id AS UserId, v.org_id AS OrgId, v.name, v.size_gb AS SizeGb, v.status, v.deletion_protection AS DeletionProtection, " +
        "v.created_at AS CreatedAt, u.email AS OwnerEmail, o.name AS OrgName";

    private const string From = "FROM volumes v JOIN users u ON u.id = v.user_id LEFT JOIN orgs o ON o.id = v.org_id";

    public BillingOptions Billing => billing.Value;

    public Task<(VolumeRecord Volume, RequestRow Request)> CreateAsync(Principal owner, int sizeGb, string? name, bool protection, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var now = clock.Now();
            if (name is not null)
                await EnsureNameFreeAsync(c, t, owner, name, exceptId: null);
            var balance = await Ledger.BalanceMicrosAsync(c, t, BillingAccount.Of(owner.UserId, owner.OrgId), billing.Value, now);
            var perHour = Ledger.VolumeMicrosPerHour(sizeGb, billing.Value);
            var needed = (long)(perHour * billing.Value.StorageMinimumHours);
            if (balance < needed)
                throw new ApiError(StatusCodes.Status402PaymentRequired, "insufficient_balance", FormattableString.Invariant(
                    $"Your balance is ${Ledger.ToUsd(balance):0.00}; a {sizeGb} GB volume needs ${Ledger.ToUsd(needed):0.00} ({billing.Value.StorageMinimumHours} hours of its cost) to be created. Ask your operator for credit."));
            var volume = new VolumeRecord
            {
                Id = Ids.Volume(), UserId = owner.UserId, OrgId = owner.OrgId, Name = name, SizeGb = sizeGb, Status = VolumeStatuses.Pending,
                DeletionProtection = protection, CreatedAt = now, OwnerEmail = owner.Email, OrgName = owner.OrgName,
            };
            await c.ExecuteAsync(
                """
                INSERT INTO volumes (id, user_id, org_id, name, size_gb, status, deletion_protection, created_at, updated_at)
                VALUES (@Id, @UserId, @OrgId, @Name, @SizeGb, @Status, @DeletionProtection, @CreatedAt, @CreatedAt)
                """, volume, t);
            var request = await RequestStore.EnqueueAsync(c, t, RequestType.StorageCreate, owner, volume.Id, StorageCreateHandler.FirstStepName, "{}", now, objectIsNew: true);
            return (volume, request);
        }, ct);

    /// <summary>Name and protection change at once; a new size is carried out by the STORAGE_EDIT request.</summary>
    public Task<RequestRow> EditAsync(Principal caller, string volumeId, VolumeEdit edit, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var volume = await GetVisibleAsync(c, t, caller, volumeId) ?? throw NotFound(volumeId);
            if (volume.Status is VolumeStatuses.Destroying or VolumeStatuses.Destroyed or VolumeStatuses.Failed)
                throw ApiError.Conflict("storage_unavailable", $"Volume {volumeId} is {volume.Status.ToLowerInvariant()} and can no longer be edited.");
            if (edit.SizeGb is { } size && size < volume.SizeGb)
                throw ApiError.Validation(["body", "size_gb"], "greater_than_equal",
                    $"Volumes only grow: {volumeId} is {volume.SizeGb} GB, so size_gb must be at least {volume.SizeGb}");
            var now = clock.Now();
            if (edit.Name is not null && edit.Name != volume.Name)
                await EnsureNameFreeAsync(c, t, caller, edit.Name, volumeId);
            await c.ExecuteAsync(
                """
                UPDATE volumes SET name = COALESCE(@Name, name), deletion_protection = COALESCE(@DeletionProtection, deletion_protection), updated_at = @now
                WHERE id = @volumeId
                """, new { edit.Name, edit.DeletionProtection, now, volumeId }, t);
            var payload = JsonSerializer.Serialize(new { tp_storage_name = edit.Name, deletion_protection = edit.DeletionProtection, size_gb = edit.SizeGb });
            return await RequestStore.EnqueueAsync(c, t, RequestType.StorageEdit, caller, volumeId, StorageEditHandler.FirstStepName, payload, now);
        }, ct);

    /// <summary>Refused while protected or attached (naming the clusters); stops the meter and queues the deletion.</summary>
    public Task<RequestRow> DestroyAsync(Principal caller, string volumeId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var volume = await GetVisibleAsync(c, t, caller, volumeId) ?? throw NotFound(volumeId);
            if (volume.DeletionProtection)
                throw ApiError.Conflict("deletion_protected",
                    $"Volume {volumeId} has deletion protection enabled. Turn it off first: tp storage edit {volumeId} --deletion-protection false");
            if (volume.Status is VolumeStatuses.Destroying or VolumeStatuses.Destroyed)
                throw ApiError.Conflict("storage_destroyed", $"Volume {volumeId} is already {volume.Status.ToLowerInvariant()}.");
            if (volume.Attachments.Count > 0)
                throw ApiError.Conflict("storage_attached",
                    $"Volume {volumeId} is attached to {string.Join(", ", volume.Attachments.Select(a => a.ClusterId))}. Detach it first: tp cluster detach <cluster_id> {volumeId}");
            var now = clock.Now();
            await c.ExecuteAsync("UPDATE volumes SET status = @status, updated_at = @now WHERE id = @volumeId",
                new { status = VolumeStatuses.Destroying, now, volumeId }, t);
            await c.ExecuteAsync(
                "UPDATE volumes SET billing_ended_at = @now WHERE id = @volumeId AND billing_started_at IS NOT NULL AND billing_ended_at IS NULL",
                new { now, volumeId }, t);
            await Ledger.ChargeVolumeAsync(c, t, volumeId, billing.Value, now);
            return await RequestStore.EnqueueAsync(c, t, RequestType.StorageDestroy, caller, volumeId, StorageDestroyHandler.FirstStepName, "{}", now);
        }, ct);

    /// <summary>
    /// One STORAGE_ATTACH request per cluster. Each is queued on its cluster, so it waits for a claim
    /// still running there; the attachment shows as "attaching" until its request completes.
    /// </summary>
    public Task<IReadOnlyList<RequestRow>> AttachAsync(Principal caller, string volumeId, IReadOnlyList<string> clusterIds, CancellationToken ct) =>
        db.WriteAsync<IReadOnlyList<RequestRow>>(async (c, t) =>
        {
            var volume = await GetVisibleAsync(c, t, caller, volumeId) ?? throw NotFound(volumeId);
            if (volume.Status is not (VolumeStatuses.Pending or VolumeStatuses.Creating or VolumeStatuses.Ready))
                throw ApiError.Conflict("storage_unavailable", $"Volume {volumeId} is {volume.Status.ToLowerInvariant()} and cannot be attached.");
            var now = clock.Now();
            var requests = new List<RequestRow>();
            foreach (var clusterId in clusterIds.Distinct())
            {
                var cluster = await ClusterStore.GetVisibleAsync(c, t, caller, clusterId) ?? throw ClusterStore.NotFound(clusterId);
                if (cluster.Status is ClusterStatuses.Destroying or ClusterStatuses.Destroyed or ClusterStatuses.Failed)
                    throw ApiError.Conflict("cluster_unavailable", $"Cluster {clusterId} is {cluster.Status.ToLowerInvariant()}; volumes cannot be attached to it.");
                if (volume.Attachments.Any(a => a.ClusterId == clusterId))
                    throw ApiError.Conflict("storage_already_attached", $"Volume {volumeId} is already attached to {clusterId}.");
                await c.ExecuteAsync(
                    "INSERT INTO volume_attachments (volume_id, cluster_id, status, created_at) VALUES (@volumeId, @clusterId, @status, @now)",
                    new { volumeId, clusterId, status = AttachmentStatuses.Attaching, now }, t);
                var payload = JsonSerializer.Serialize(new { storage_id = volumeId });
                requests.Add(await RequestStore.EnqueueAsync(c, t, RequestType.StorageAttach, caller, clusterId, StorageAttachHandler.FirstStepName, payload, now));
            }
            return requests;
        }, ct);

    public Task<RequestRow> DetachAsync(Principal caller, string volumeId, string clusterId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var volume = await GetVisibleAsync(c, t, caller, volumeId) ?? throw NotFound(volumeId);
            _ = await ClusterStore.GetVisibleAsync(c, t, caller, clusterId) ?? throw ClusterStore.NotFound(clusterId);
            var attachment = volume.Attachments.FirstOrDefault(a => a.ClusterId == clusterId)
                ?? throw ApiError.Conflict("storage_not_attached", $"Volume {volumeId} is not attached to {clusterId}.");
            if (attachment.Status == AttachmentStatuses.Detaching)
                throw ApiError.Conflict("storage_detaching", $"Volume {volumeId} is already being detached from {clusterId}.");
            var now = clock.Now();
            await c.ExecuteAsync("UPDATE volume_attachments SET status = @status WHERE volume_id = @volumeId AND cluster_id = @clusterId",
                new { status = AttachmentStatuses.Detaching, volumeId, clusterId }, t);
            var payload = JsonSerializer.Serialize(new { storage_id = volumeId });
            return await RequestStore.EnqueueAsync(c, t, RequestType.StorageDetach, caller, clusterId, StorageDetachHandler.FirstStepName, payload, now);
        }, ct);

    public Task<VolumeRecord?> GetVisibleAsync(Principal caller, string volumeId, CancellationToken ct) =>
        db.ReadAsync(c => GetVisibleAsync(c, null, caller, volumeId), ct);

    public Task<VolumeRecord?> GetAsync(string volumeId, CancellationToken ct) =>
        db.ReadAsync(async c =>
        {
            var volume = await c.QuerySingleOrDefaultAsync<VolumeRecord>($"SELECT {Columns} {From} WHERE v.id = @volumeId", new { volumeId });
            if (volume is not null)
                volume.Attachments = await AttachmentsAsync(c, null, [volumeId]);
            return volume;
        }, ct);

    public Task<IReadOnlyList<VolumeRecord>> ListAsync(Principal caller, bool includeOrg, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<VolumeRecord>>(async c =>
        {
            if (includeOrg && caller.OrgId is null)
                return [];
            var volumes = (await c.QueryAsync<VolumeRecord>(
                $"SELECT {Columns} {From} WHERE {(includeOrg ? "v.org_id = @OrgId" : "v.user_id = @UserId")} AND v.status NOT IN ('DESTROYED', 'FAILED') ORDER BY v.created_at DESC",
                new { caller.OrgId, caller.UserId })).AsList();
            var attachments = (await AttachmentsAsync(c, null, volumes.Select(v => v.Id).ToArray())).ToLookup(a => a.VolumeId);
            foreach (var volume in volumes)
                volume.Attachments = attachments[volume.Id].ToList();
            return volumes;
        }, ct);

    private static async Task<VolumeRecord?> GetVisibleAsync(DbConnection c, DbTransaction? t, Principal caller, string volumeId)
    {
        var volume = await c.QuerySingleOrDefaultAsync<VolumeRecord>(
            $"SELECT {Columns} {From} WHERE v.id = @volumeId AND (v.user_id = @UserId OR (v.org_id IS NOT NULL AND v.org_id = @OrgId))",
            new { volumeId, caller.UserId, caller.OrgId }, t);
        if (volume is not null)
            volume.Attachments = await AttachmentsAsync(c, t, [volumeId]);
        return volume;
    }

    /// <summary>The volumes attached (or being attached) to a cluster, for its info text.</summary>
    public Task<IReadOnlyList<ClusterVolume>> AttachedToAsync(string clusterId, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<ClusterVolume>>(async c => (await c.QueryAsync<ClusterVolume>(
            """
            SELECT v.id AS VolumeId, v.name AS Name, a.status AS Status
            FROM volume_attachments a JOIN volumes v ON v.id = a.volume_id
            WHERE a.cluster_id = @clusterId ORDER BY a.created_at
            """, new { clusterId })).AsList(), ct);

    private static async Task<List<AttachmentRecord>> AttachmentsAsync(DbConnection c, DbTransaction? t, string[] volumeIds)
    {
        if (volumeIds.Length == 0)
            return [];
        var rows = await c.QueryAsync<AttachmentRecord>(
            $"SELECT volume_id AS VolumeId, cluster_id AS ClusterId, status FROM volume_attachments WHERE {Sql.In(c, "volume_id", "@volumeIds")} ORDER BY created_at",
            new { volumeIds }, t);
        return rows.AsList();
    }

    private static async Task EnsureNameFreeAsync(DbConnection c, DbTransaction t, Principal owner, string name, string? exceptId)
    {
        var holder = await c.ExecuteScalarAsync<string?>(
            "SELECT id FROM volumes WHERE user_id = @UserId AND name = @name AND status NOT IN ('DESTROYED', 'FAILED') AND id <> @except",
            new { owner.UserId, name, except = exceptId ?? "" }, t);
        if (holder is not null)
            throw ApiError.Conflict("storage_name_taken", $"You already have a volume named '{name}' ({holder}). Volume names must be unique.");
    }

    public static ApiError NotFound(string volumeId) => ApiError.NotFound("storage_not_found", $"Storage volume {volumeId} not found.");
}
