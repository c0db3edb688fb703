using OpenPool.Engine.OpenApi;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Http;
using OpenPool.Engine.Providers;
using OpenPool.Engine.Storage;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Clusters;

internal static class ClustersApi
{
    public static void MapClusters(this WebApplication app)
    {
        app.MapPost("/cluster/create", CreateAsync)
            .WithTags("cluster").WithSummary("Create a cluster")
            .WithDescription("Validates at once, then provisions asynchronously: poll request_id with GET /request/info.")
            .AcceptsJson<ClusterCreateRequest>()
            .Produces<ClusterCreateResponse>(StatusCodes.Status202Accepted).Produces<ErrorResponse>(422);

        app.MapDelete("/cluster/{cluster}", DestroyAsync)
            .WithTags("cluster").WithSummary("Destroy a cluster")
            .Produces<RequestAcceptedResponse>(StatusCodes.Status202Accepted).Produces<ErrorResponse>(404).Produces<ErrorResponse>(409);

        app.MapPatch("/cluster/edit/{cluster}", EditAsync)
            .WithTags("cluster").WithSummary("Edit a cluster's name or deletion protection")
            .AcceptsJson<ClusterEditRequest>()
            .Produces<RequestAcceptedResponse>(StatusCodes.Status202Accepted).Produces<ErrorResponse>(404).Produces<ErrorResponse>(409);

        app.MapGet("/cluster/list", ListAsync)
            .WithTags("cluster").WithSummary("List clusters")
            .WithDescription("include_org=true lists the organization's clusters instead of your own; instances=true lists every instance.")
            .Produces<ClusterListResponse>();

        app.MapGet("/cluster/info/{cluster}", InfoAsync)
            .WithTags("cluster").WithSummary("Get cluster information")
            .Produces<ClusterInfoResponse>().Produces<ErrorResponse>(404);

        app.MapGet("/cluster/operations/{cluster}", OperationsAsync)
            .WithTags("cluster").WithSummary("List cluster operations")
            .WithDescription("The requests that acted on this cluster, newest first. Filters: type, status; cursor paging.")
            .Produces<RequestListResponse>().Produces<ErrorResponse>(404);

        app.MapGet("/ssh/{instance_id}", SshAsync)
            .WithTags("ssh").WithSummary("SSH command for an instance")
            .Produces<SshCommandResponse>().Produces<ErrorResponse>(404).Produces<ErrorResponse>(409);
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ClusterStore clusters, InstanceCatalog catalog, RequestSignals signals)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var typeName = body.String("instance_type", required: true, maxLength: 64);
        var numNodes = body.Int("num_nodes", min: 1) ?? 1;
        var name = body.String("tp_cluster_name", maxLength: 64);
        var container = body.String("container", maxLength: 256) ?? body.String("experimental_container", maxLength: 256);
        var protection = body.Bool("deletion_protection") ?? false;
        var keyLines = body.StringList("public_keys") ?? [];
        var saveKeys = body.Bool("save_keys") ?? true;
        var publicKeys = new List<SshPublicKey>();
        for (var i = 0; i < keyLines.Count; i++)
        {
            if (SshPublicKey.TryParse(keyLines[i], out var key, out var error))
                publicKeys.Add(key!);
            else
                body.Reject("public_keys", "value_error", $"public_keys[{i}]: {error}");
        }

        InstanceType? type = null;
        if (typeName is not null)
        {
            type = catalog.Find(typeName);
            if (type is null)
                body.Reject("instance_type", "enum", $"Unknown instance type '{typeName}'. Valid types: {catalog.Names}");
        }
        if (type is not null && numNodes > 1 && !type.MultiNode)
            body.Reject("num_nodes", "multi_node_unsupported",
                $"{type.Name} is single-node only. Multi-node clusters are available for: {string.Join(", ", catalog.All.Where(t => t.MultiNode).Select(t => t.Name))}");
        if (numNodes > catalog.MaxNodes)
            body.Reject("num_nodes", "less_than_equal", $"Input should be less than or equal to {catalog.MaxNodes}");
        ResourceNames.Check(body, "tp_cluster_name", name);
        body.ThrowIfInvalid();

        var (cluster, request) = await clusters.CreateAsync(context.Caller(), new ClusterSpec(type!, numNodes, name, container, protection, publicKeys, saveKeys), context.RequestAborted);
        signals.PulseWork();
        return Results.Json(new ClusterCreateResponse
        {
            ClusterId = cluster.Id,
            InstanceIds = cluster.Instances.Select(i => i.Id).ToList(),
            RequestId = request.Id,
            Message = $"Creating cluster {cluster.Id} ({cluster.NumNodes} node(s) of {cluster.InstanceType}). " +
                      $"Track it with: tp cluster info {cluster.Id}",
        }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> DestroyAsync(string cluster, HttpContext context, ClusterStore clusters, RequestSignals signals)
    {
        var (release, superseded) = await clusters.DestroyAsync(context.Caller(), cluster, context.RequestAborted);
        foreach (var id in superseded)
            signals.NotifyChanged(id);
        signals.PulseWork();
        return Results.Json(new RequestAcceptedResponse
        {
            RequestId = release.Id,
            Message = $"Destroying cluster {cluster}." + (superseded.Count > 0 ? " Its provisioning was cancelled." : ""),
        }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> EditAsync(string cluster, HttpContext context, ClusterStore clusters, RequestSignals signals)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var name = body.String("cluster_name", maxLength: 64);
        var protection = body.Bool("deletion_protection");
        ResourceNames.Check(body, "cluster_name", name);
        if (!body.Has("cluster_name") && !body.Has("deletion_protection"))
            throw ApiError.Validation(["body"], "value_error", "Give at least one of cluster_name, deletion_protection");
        body.ThrowIfInvalid();

        var request = await clusters.EditAsync(context.Caller(), cluster, new ClusterEdit(name, protection), context.RequestAborted);
        signals.PulseWork();
        var changes = new List<string>();
        if (name is not null)
            changes.Add($"name is now '{name}'");
        if (protection is { } on)
            changes.Add($"deletion protection {(on ? "on" : "off")}");
        return Results.Json(new RequestAcceptedResponse
        {
            RequestId = request.Id,
            Message = $"Cluster {cluster} updated: {string.Join(", ", changes)}.",
        }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> ListAsync(HttpContext context, ClusterStore clusters)
    {
        var includeOrg = Query.Bool(context.Request, "include_org");
        var withInstances = Query.Bool(context.Request, "instances");
        var rows = await clusters.ListAsync(context.Caller(), includeOrg, context.RequestAborted);
        return Results.Json(new ClusterListResponse
        {
            Message = withInstances ? ClusterText.InstanceTable(rows) : ClusterText.ClusterTable(rows, includeOrg),
            Clusters = rows.Select(r => r.ToInfo()).ToList(),
            Instances = withInstances ? rows.SelectMany(r => r.Instances.Select(i => i.ToInfo())).ToList() : null,
        }, ApiJson.Options);
    }

    private static async Task<IResult> InfoAsync(string cluster, HttpContext context, ClusterStore clusters, VolumeStore volumes)
    {
        var record = await clusters.GetVisibleAsync(context.Caller(), cluster, context.RequestAborted)
            ?? throw ClusterStore.NotFound(cluster);
        var attached = await volumes.AttachedToAsync(record.Id, context.RequestAborted);
        return Results.Json(new ClusterInfoResponse { Message = ClusterText.Info(record, attached), Cluster = record.ToInfo() }, ApiJson.Options);
    }

    private static async Task<IResult> OperationsAsync(string cluster, HttpContext context, ClusterStore clusters, RequestStore requests)
    {
        var caller = context.Caller();
        var record = await clusters.GetVisibleAsync(caller, cluster, context.RequestAborted) ?? throw ClusterStore.NotFound(cluster);
        // Operations of an org cluster are visible to its members, so list by object across the org.
        var (rows, next) = await RequestsApi.ListPageAsync(context, requests, objectId: record.Id, includeOrg: record.UserId != caller.UserId);
        return Results.Json(new RequestListResponse
        {
            Requests = rows.Select(r => r.ToInfo()).ToList(),
            NextCursor = next,
            Message = RequestText.Table(rows),
        }, ApiJson.Options);
    }

    private static async Task<IResult> SshAsync(string instance_id, HttpContext context, ClusterStore clusters, ICloudProvider provider)
    {
        var found = await clusters.GetInstanceAsync(context.Caller(), instance_id, context.RequestAborted)
            ?? throw ApiError.NotFound("instance_not_found", $"Instance {instance_id} not found.");
        var (instance, cluster) = found;
        if (instance.Status != ClusterStatuses.Running)
            throw ApiError.Conflict("instance_not_running",
                $"Instance {instance_id} is {instance.Status}; it can be reached once cluster {cluster.Id} is RUNNING.");
        // The operator's problem comes first: a node's recorded port is no use while nothing can serve it.
        if (provider.SshProblem is { } problem)
            throw ApiError.Conflict("ssh_unavailable", problem);
        if (instance.Ssh is not { } ssh)
            throw ApiError.Conflict("ssh_unavailable",
                $"Instance {instance_id} came up without SSH access (it was provisioned while SSH was unavailable); create a new cluster to log in.");
        return Results.Json(new SshCommandResponse
        {
            // HostKeyAlias files the host key under the instance id, not [host]:port: a port that a
            // later node reuses never meets a "host key changed" for an earlier node's key.
            Command = $"ssh -p {ssh.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)} -o StrictHostKeyChecking=accept-new -o HostKeyAlias={instance.Id} {ssh.User}@{ssh.Host}",
            Message = $"Connecting to {instance_id} (node {instance.NodeIndex} of {cluster.Id}); its host key is {ssh.HostKeyFingerprint}.",
        }, ApiJson.Options);
    }
}
