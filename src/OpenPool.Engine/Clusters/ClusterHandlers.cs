using System.Text.Json;
using OpenPool.Contracts;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Clusters;

/// <summary>
/// What a claim's steps need, all fixed when the cluster was created. A claim carries it in its
/// payload, so the worker starts without reading the cluster; a claim queued by an engine from
/// before that (or before the payload carried keys) has less and reads the rest.
/// </summary>
/// <param name="PublicKeys">The cluster's keys as OpenSSH lines; null when the payload predates them.</param>
/// <param name="Tenant">The cluster's organization, or its user without one.</param>
internal sealed record ClaimOrder(string ClusterId, string InstanceType, IReadOnlyList<string> InstanceIds, IReadOnlyList<string>? PublicKeys, string? Tenant)
{
    public static string Payload(ClusterRecord cluster) =>
        JsonSerializer.Serialize(new
        {
            instance_type = cluster.InstanceType,
            instance_ids = cluster.Instances.Select(i => i.Id),
            public_keys = cluster.Keys.Select(k => k.PublicKey),
            tenant = cluster.OrgId ?? cluster.UserId,
        });

    public static ClaimOrder? FromPayload(RequestRow request)
    {
        using var payload = JsonDocument.Parse(request.Payload);
        var root = payload.RootElement;
        if (!root.TryGetProperty("instance_type", out var type) || !root.TryGetProperty("instance_ids", out var ids))
            return null;
        var keys = root.TryGetProperty("public_keys", out var lines) ? lines.EnumerateArray().Select(k => k.GetString()!).ToList() : null;
        var tenant = root.TryGetProperty("tenant", out var owner) ? owner.GetString() : null;
        return new ClaimOrder(request.ObjectId!, type.GetString()!, ids.EnumerateArray().Select(id => id.GetString()!).ToList(), keys, tenant);
    }

    public static ClaimOrder Of(ClusterRecord cluster, IReadOnlyList<string> publicKeys) =>
        new(cluster.Id, cluster.InstanceType, cluster.Instances.Select(i => i.Id).ToList(), publicKeys, cluster.OrgId ?? cluster.UserId);
}

/// <summary>CLUSTER_CLAIM: <c>allocate → provision → install_keys → done</c>.</summary>
internal sealed class ClaimHandler(ClusterStore clusters, ICloudProvider provider) : IRequestHandler
{
    public const string FirstStepName = "allocate";
    private static readonly string[] NotYetRunning = [ClusterStatuses.Pending, ClusterStatuses.Provisioning];

    public RequestType Type => RequestType.ClusterClaim;

    public async Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct)
    {
        // Parsed (or read) for the first step, then carried to the ones that follow under the same claim.
        var order = request.Carried as ClaimOrder ?? ClaimOrder.FromPayload(request);
        if (order?.PublicKeys is null)
        {
            var cluster = await clusters.GetAsync(request.ObjectId!, ct);
            if (cluster is null)
                return new StepOutcome.Fail($"Cluster {request.ObjectId} no longer exists.");
            order = ClaimOrder.Of(cluster, await clusters.PublicKeysAsync(cluster.Id, ct));
        }
        request.Carried = order;
        var nodes = order.InstanceIds.Count;
        switch (request.Step)
        {
            case "allocate":
                return new StepOutcome.Advance("provision", $"Allocating {nodes} node(s) of {order.InstanceType}",
                    (write, now) => ClusterStore.SetStatus(write, order.ClusterId, ClusterStatuses.Provisioning, now, NotYetRunning));

            case "provision":
                var progress = await provider.ProvisionAsync(
                    new ProvisionOrder(request.Id, order.ClusterId, order.InstanceType, order.InstanceIds, request.Attempts, order.PublicKeys, order.Tenant), ct);
                return ProviderSteps.Outcome(progress,
                    () => new StepOutcome.Advance("install_keys", "Nodes are up; installing SSH keys", (write, now) =>
                    {
                        foreach (var node in progress.Nodes ?? [])
                            write.Add(
                                """
                                UPDATE instances SET ip_address = @IpAddress, ssh_host = @SshHost, ssh_port = @SshPort, ssh_user = @SshUser,
                                                     ssh_host_key_fingerprint = @SshFingerprint
                                WHERE id = @InstanceId
                                """,
                                new
                                {
                                    node.InstanceId, node.IpAddress, SshHost = node.Ssh?.Host, SshPort = node.Ssh?.Port, SshUser = node.Ssh?.User,
                                    SshFingerprint = node.Ssh?.HostKeyFingerprint,
                                });
                    }),
                    MarkFailed(order.ClusterId));

            case "install_keys":
                var installed = await provider.InstallKeysAsync(new KeyOrder(request.Id, order.ClusterId, order.PublicKeys ?? []), ct);
                return ProviderSteps.Outcome(installed,
                    () => new StepOutcome.Complete(
                        $"Cluster {order.ClusterId} is ready: {nodes} node(s) of {order.InstanceType}. Connect with: tp ssh {order.InstanceIds[0]}",
                        (write, now) => ClusterStore.StartRunning(write, order.ClusterId, now, NotYetRunning)),
                    MarkFailed(order.ClusterId));

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
