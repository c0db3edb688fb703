using System.Text.Json;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Storage;

internal static class StoragePayload
{
    public static string StorageIdOf(RequestRow request) =>
        JsonSerializer.Deserialize<JsonElement>(request.Payload).GetProperty("storage_id").GetString()!;
}

/// <summary>STORAGE_CREATE: <c>create → done</c>; the meter starts when the volume is ready.</summary>
internal sealed class StorageCreateHandler(VolumeStore volumes, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "create";

    public RequestType Type => RequestType.StorageCreate;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var volume = await volumes.GetAsync(request.ObjectId!, ct);
        if (volume is null)
            return new StepOutcome.Fail($"Volume {request.ObjectId} no longer exists.");
        var progress = await provider.CreateVolumeAsync(new VolumeOrder(request.Id, volume.Id, volume.SizeGb), ct);
        var outcome = ProviderSteps.Outcome(progress,
            () => new StepOutcome.Complete($"Storage volume {volume.Id} created ({volume.SizeGb} GB).", (write, now) =>
                write.Add(
                    """
                    UPDATE volumes SET status = 'READY', updated_at = @now,
                        billing_started_at = COALESCE(billing_started_at, @now), billed_until = COALESCE(billed_until, @now)
                    WHERE id = @id AND status IN ('PENDING', 'CREATING')
                    """, new { now, id = volume.Id })),
            OnGaveUp(request));
        if (outcome is StepOutcome.Wait wait)
            return wait with
            {
                Update = (write, now) => write.Add("UPDATE volumes SET status = 'CREATING', updated_at = @now WHERE id = @id AND status = 'PENDING'",
                    new { now, id = volume.Id }),
            };
        return outcome;
    }

    public ResourceUpdate? OnGaveUp(RequestRow request) =>
        (write, now) => write.Add("UPDATE volumes SET status = 'FAILED', updated_at = @now WHERE id = @id AND status IN ('PENDING', 'CREATING')",
            new { now, id = request.ObjectId });
}

/// <summary>STORAGE_DESTROY: <c>destroy → done</c>.</summary>
internal sealed class StorageDestroyHandler(VolumeStore volumes, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "destroy";

    public RequestType Type => RequestType.StorageDestroy;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var volume = await volumes.GetAsync(request.ObjectId!, ct);
        if (volume is null)
            return new StepOutcome.Fail($"Volume {request.ObjectId} no longer exists.");
        var progress = await provider.DeleteVolumeAsync(new VolumeOrder(request.Id, volume.Id, volume.SizeGb), ct);
        return ProviderSteps.Outcome(progress, () => new StepOutcome.Complete($"Storage volume {volume.Id} destroyed.",
            (write, now) => write.Add("UPDATE volumes SET status = 'DESTROYED', updated_at = @now WHERE id = @id", new { now, id = volume.Id })));
    }

    public ResourceUpdate? OnGaveUp(RequestRow request) => null;
}

/// <summary>STORAGE_EDIT: name and protection changed on acceptance; a new size is grown here, then billed from then on.</summary>
internal sealed class StorageEditHandler(VolumeStore volumes, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "resize";

    public RequestType Type => RequestType.StorageEdit;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var edit = JsonSerializer.Deserialize<JsonElement>(request.Payload);
        var volume = await volumes.GetAsync(request.ObjectId!, ct);
        if (volume is null)
            return new StepOutcome.Fail($"Volume {request.ObjectId} no longer exists.");
        if (!edit.TryGetProperty("size_gb", out var size) || size.ValueKind != JsonValueKind.Number || size.GetInt32() <= volume.SizeGb)
            return new StepOutcome.Complete($"Storage volume {volume.Id} updated.");
        var newSize = size.GetInt32();
        var progress = await provider.ResizeVolumeAsync(new VolumeOrder(request.Id, volume.Id, newSize), ct);
        return ProviderSteps.Outcome(progress, () => new StepOutcome.Complete($"Storage volume {volume.Id} grown to {newSize} GB.",
            (write, now) =>
            {
                // Close the meter at the old size, then start a new segment at the new size.
                write.Then((c, t) => Ledger.ChargeVolumeAsync(c, t, volume.Id, volumes.Billing, now));
                write.Add(
                    """
                    UPDATE volumes SET size_gb = @newSize, updated_at = @now,
                        billing_started_at = CASE WHEN billing_started_at IS NULL OR billing_ended_at IS NOT NULL THEN billing_started_at ELSE @now END,
                        billed_until = CASE WHEN billing_started_at IS NULL OR billing_ended_at IS NOT NULL THEN billed_until ELSE @now END,
                        billed_micros = CASE WHEN billing_started_at IS NULL OR billing_ended_at IS NOT NULL THEN billed_micros ELSE 0 END
                    WHERE id = @id
                    """, new { newSize, now, id = volume.Id });
            }));
    }

    public ResourceUpdate? OnGaveUp(RequestRow request) => null;
}

/// <summary>
/// STORAGE_ATTACH (queued on the cluster): <c>check → attach → done</c>. The cluster's nodes restart
/// to mount the volume, so the cluster shows RESTARTING until the request completes.
/// </summary>
internal sealed class StorageAttachHandler(VolumeStore volumes, ClusterStore clusters, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "check";

    public RequestType Type => RequestType.StorageAttach;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var volumeId = StoragePayload.StorageIdOf(request);
        var clusterId = request.ObjectId!;
        var cluster = await clusters.GetAsync(clusterId, ct);
        var volume = await volumes.GetAsync(volumeId, ct);
        if (cluster is null || volume is null)
            return new StepOutcome.Fail("The cluster or the volume no longer exists.", OnGaveUp(request));
        switch (request.Step)
        {
            case "check":
                if (cluster.Status is ClusterStatuses.Destroying or ClusterStatuses.Destroyed)
                    return new StepOutcome.Fail($"Cluster {clusterId} is being destroyed; volume {volumeId} was not attached.", OnGaveUp(request));
                if (cluster.Status != ClusterStatuses.Running)
                    return new StepOutcome.Fail($"Cluster {clusterId} is {cluster.Status}; volume {volumeId} was not attached.", OnGaveUp(request));
                if (volume.Status is VolumeStatuses.Pending or VolumeStatuses.Creating)
                    return new StepOutcome.Wait(TimeSpan.FromSeconds(1), $"Waiting for volume {volumeId} to be created");
                if (volume.Status != VolumeStatuses.Ready)
                    return new StepOutcome.Fail($"Volume {volumeId} is {volume.Status}; it was not attached.", OnGaveUp(request));
                return new StepOutcome.Advance("attach", $"Attaching {volumeId}: restarting the nodes of {clusterId}",
                    (write, now) => ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Restarting, now, ClusterStatuses.Running));

            case "attach":
                var progress = await provider.AttachVolumeAsync(new AttachmentOrder(request.Id, volumeId, clusterId), ct);
                return ProviderSteps.Outcome(progress, () => new StepOutcome.Complete(
                    $"Volume {volumeId} attached to {clusterId} at {volume.MountPath}.",
                    (write, now) =>
                    {
                        write.Add("UPDATE volume_attachments SET status = 'attached' WHERE volume_id = @volumeId AND cluster_id = @clusterId",
                            new { volumeId, clusterId });
                        ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Running, now, ClusterStatuses.Restarting);
                    }), OnGaveUp(request));

            default:
                return new StepOutcome.Fail($"Unknown step '{request.Step}' for STORAGE_ATTACH.");
        }
    }

    /// <summary>A failed attach leaves no attachment behind and the cluster running as before.</summary>
    public ResourceUpdate? OnGaveUp(RequestRow request)
    {
        var volumeId = StoragePayload.StorageIdOf(request);
        var clusterId = request.ObjectId!;
        return (write, now) =>
        {
            write.Add("DELETE FROM volume_attachments WHERE volume_id = @volumeId AND cluster_id = @clusterId AND status = 'attaching'",
                new { volumeId, clusterId });
            ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Running, now, ClusterStatuses.Restarting);
        };
    }
}

/// <summary>STORAGE_DETACH (queued on the cluster): <c>detach → done</c>, restarting the nodes like attach.</summary>
internal sealed class StorageDetachHandler(ClusterStore clusters, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "detach";

    public RequestType Type => RequestType.StorageDetach;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var volumeId = StoragePayload.StorageIdOf(request);
        var clusterId = request.ObjectId!;
        var cluster = await clusters.GetAsync(clusterId, ct);
        var detached = new StepOutcome.Complete($"Volume {volumeId} detached from {clusterId}.", (write, now) =>
            write.Add("DELETE FROM volume_attachments WHERE volume_id = @volumeId AND cluster_id = @clusterId", new { volumeId, clusterId }));
        // A cluster on its way out has no nodes to restart; the release removes the attachment anyway.
        if (cluster is null || cluster.Status is ClusterStatuses.Destroying or ClusterStatuses.Destroyed or ClusterStatuses.Failed)
            return detached;
        var progress = await provider.DetachVolumeAsync(new AttachmentOrder(request.Id, volumeId, clusterId), ct);
        var outcome = ProviderSteps.Outcome(progress, () => detached with
        {
            Update = (write, now) =>
            {
                detached.Update!(write, now);
                ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Running, now, ClusterStatuses.Restarting);
            },
        }, OnGaveUp(request));
        if (outcome is StepOutcome.Wait wait)
            return wait with { Update = (write, now) => ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Restarting, now, ClusterStatuses.Running) };
        return outcome;
    }

    /// <summary>A detach that cannot finish leaves the volume attached.</summary>
    public ResourceUpdate? OnGaveUp(RequestRow request)
    {
        var volumeId = StoragePayload.StorageIdOf(request);
        var clusterId = request.ObjectId!;
        return (write, now) =>
        {
            write.Add("UPDATE volume_attachments SET status = 'attached' WHERE volume_id = @volumeId AND cluster_id = @clusterId",
                new { volumeId, clusterId });
            ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Running, now, ClusterStatuses.Restarting);
        };
    }
}
