using System.Text.Json;
using Dapper;
using OpenPool.Contracts;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Clusters;

/// <summary>CLUSTER_CLAIM: <c>allocate → provision → install_keys → done</c>.</summary>
internal sealed class ClaimHandler(ClusterStore clusters, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "allocate";
    private static readonly string[] NotYetRunning = [ClusterStatuses.Pending, ClusterStatuses.Provisioning];

    public RequestType Type => RequestType.ClusterClaim;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        // The steps read only what creation fixed (type, size, instance ids), so the row read for the
        // first step serves the ones that follow under the same claim.
        var cluster = request.Carried as ClusterRecord ?? await clusters.GetAsync(request.ObjectId!, ct);
        if (cluster is null)
            return new StepOutcome.Fail($"Cluster {request.ObjectId} no longer exists.");
        request.Carried = cluster;
        switch (request.Step)
        {
            case "allocate":
                return new StepOutcome.Advance("provision", $"Allocating {cluster.NumNodes} node(s) of {cluster.InstanceType}",
                    (write, now) => ClusterStore.SetStatus(write, cluster.Id, ClusterStatuses.Provisioning, now, NotYetRunning));

            case "provision":
                var order = new ProvisionOrder(request.Id, cluster.Id, cluster.InstanceType, cluster.Instances.Select(i => i.Id).ToList(), request.Attempts);
                var progress = await provider.ProvisionAsync(order, ct);
                return ProviderSteps.Outcome(progress,
                    () => new StepOutcome.Advance("install_keys", "Nodes are up; installing SSH keys", (write, now) =>
                    {
                        foreach (var node in progress.Nodes ?? [])
                            write.Add("UPDATE instances SET ip_address = @IpAddress WHERE id = @InstanceId", node);
                    }),
                    MarkFailed(cluster.Id));

            case "install_keys":
                return new StepOutcome.Complete(
                    $"Cluster {cluster.Id} is ready: {cluster.NumNodes} node(s) of {cluster.InstanceType}. Connect with: tp ssh {cluster.Instances[0].Id}",
                    (write, now) => ClusterStore.StartRunning(write, cluster.Id, now, NotYetRunning));

            default:
                return new StepOutcome.Fail($"Unknown step '{request.Step}' for {Type.Name()}.");
        }
    }

    public ResourceUpdate? OnGaveUp(RequestRow request) => MarkFailed(request.ObjectId!);

    private static ResourceUpdate MarkFailed(string clusterId) =>
        (write, now) => ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Failed, now, NotYetRunning);
}

/// <summary>CLUSTER_RELEASE: <c>release → done</c>; every node the provider holds for the cluster goes.</summary>
internal sealed class ReleaseHandler(ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "release";

    public RequestType Type => RequestType.ClusterRelease;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var clusterId = request.ObjectId!;
        var progress = await provider.ReleaseAsync(new ReleaseOrder(request.Id, clusterId), ct);
        return ProviderSteps.Outcome(progress,
            () => new StepOutcome.Complete($"Cluster {clusterId} destroyed.", (write, now) =>
            {
                ClusterStore.SetStatus(write, clusterId, ClusterStatuses.Destroyed, now);
                // Volumes outlive the clusters they were attached to.
                write.Add("DELETE FROM volume_attachments WHERE cluster_id = @clusterId", new { clusterId });
            }),
            OnGaveUp(request));
    }

    /// <summary>A release that cannot finish leaves the cluster FAILED, from where it can be destroyed again.</summary>
    public ResourceUpdate? OnGaveUp(RequestRow request) =>
        (write, now) => ClusterStore.SetStatus(write, request.ObjectId!, ClusterStatuses.Failed, now, ClusterStatuses.Destroying);
}

/// <summary>CLUSTER_EDIT: the row changed when the edit was accepted; the request records it and completes in order.</summary>
internal sealed class EditHandler : IRequestHandler
{
    public const string FirstStepName = "apply";

    public RequestType Type => RequestType.ClusterEdit;

    public Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        var edit = JsonSerializer.Deserialize<JsonElement>(request.Payload);
        var changes = new List<string>();
        if (edit.TryGetProperty("cluster_name", out var name) && name.ValueKind == JsonValueKind.String)
            changes.Add($"name '{name.GetString()}'");
        if (edit.TryGetProperty("deletion_protection", out var protection) && protection.ValueKind is JsonValueKind.True or JsonValueKind.False)
            changes.Add($"deletion protection {(protection.GetBoolean() ? "on" : "off")}");
        return Task.FromResult<StepOutcome>(new StepOutcome.Complete($"Cluster {request.ObjectId} updated: {string.Join(", ", changes)}."));
    }

    public ResourceUpdate? OnGaveUp(RequestRow request) => null;
}
