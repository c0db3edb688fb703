using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Http;
using OpenPool.Engine.OpenApi;
using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Storage;

internal static class StorageApi
{
    public static void MapStorage(this WebApplication app)
    {
        app.MapPost("/storage/create", CreateAsync).WithTags("storage").WithSummary("Create a storage volume")
            .AcceptsJson<StorageCreateRequest>().Produces<StorageCreateResponse>(StatusCodes.Status202Accepted).Produces<ErrorResponse>(402);
        app.MapDelete("/storage/{storage_id}", DestroyAsync).WithTags("storage").WithSummary("Destroy a storage volume")
            .Produces<RequestAcceptedResponse>(StatusCodes.Status202Accepted).Produces<ErrorResponse>(409);
        app.MapPatch("/storage/edit/{storage_id}", EditAsync).WithTags("storage").WithSummary("Edit a storage volume (name, protection, grow)")
            .AcceptsJson<StorageEditRequest>().Produces<RequestAcceptedResponse>(StatusCodes.Status202Accepted);
        app.MapPost("/storage/attach", AttachAsync).WithTags("storage").WithSummary("Attach a volume to clusters (restarts their nodes)")
            .AcceptsJson<StorageAttachRequest>().Produces<StorageAttachResponse>(StatusCodes.Status202Accepted);
        app.MapPost("/storage/detach", DetachAsync).WithTags("storage").WithSummary("Detach a volume from one cluster")
            .AcceptsJson<StorageDetachRequest>().Produces<RequestAcceptedResponse>(StatusCodes.Status202Accepted);
        app.MapGet("/storage/list", ListAsync).WithTags("storage").WithSummary("List storage volumes").Produces<StorageListResponse>();
        app.MapGet("/storage/info/{storage_id}", InfoAsync).WithTags("storage").WithSummary("Get storage volume information")
            .Produces<StorageInfoResponse>().Produces<ErrorResponse>(404);
    }

    private static async Task<IResult> CreateAsync(HttpContext context, VolumeStore volumes, IOptions<StorageOptions> options, RequestSignals signals)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var size = body.Int("size", required: true, min: options.Value.MinSizeGb, max: options.Value.MaxSizeGb);
        var name = body.String("name", maxLength: 64);
        var protection = body.Bool("deletion_protection") ?? false;
        ResourceNames.Check(body, "name", name);
        body.ThrowIfInvalid();
        var (volume, request) = await volumes.CreateAsync(context.Caller(), size!.Value, name, protection, context.RequestAborted);
        signals.PulseWork();
        return Results.Json(new StorageCreateResponse
        {
            StorageId = volume.Id,
            RequestId = request.Id,
            Message = $"Creating storage volume {volume.Id} ({volume.SizeGb} GB). Track it with: tp storage info {volume.Id}",
        }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> DestroyAsync(string storage_id, HttpContext context, VolumeStore volumes, RequestSignals signals)
    {
        var request = await volumes.DestroyAsync(context.Caller(), storage_id, context.RequestAborted);
        signals.PulseWork();
        return Accepted(request.Id, $"Destroying storage volume {storage_id}.");
    }

    private static async Task<IResult> EditAsync(string storage_id, HttpContext context, VolumeStore volumes, IOptions<StorageOptions> options, RequestSignals signals)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var name = body.String("tp_storage_name", maxLength: 64);
        var protection = body.Bool("deletion_protection");
        var size = body.Int("size_gb", min: 1, max: options.Value.MaxSizeGb);
        ResourceNames.Check(body, "tp_storage_name", name);
        if (!body.Has("tp_storage_name") && !body.Has("deletion_protection") && !body.Has("size_gb"))
            throw ApiError.Validation(["body"], "value_error", "Give at least one of tp_storage_name, deletion_protection, size_gb");
        body.ThrowIfInvalid();
        var request = await volumes.EditAsync(context.Caller(), storage_id, new VolumeEdit(name, protection, size), context.RequestAborted);
        signals.PulseWork();
        var changes = new List<string>();
        if (name is not null)
            changes.Add($"name is now '{name}'");
        if (protection is { } on)
            changes.Add($"deletion protection {(on ? "on" : "off")}");
        if (size is { } gb)
            changes.Add($"growing to {gb} GB");
        return Accepted(request.Id, $"Storage volume {storage_id} updated: {string.Join(", ", changes)}.");
    }

    private static async Task<IResult> AttachAsync(HttpContext context, VolumeStore volumes, RequestSignals signals)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var storageId = body.String("storage_id", required: true, maxLength: 64);
        var clusterIds = body.StringList("cluster_ids", required: true, maxItems: 50, maxLength: 64);
        if (clusterIds is { Count: 0 })
            body.Reject("cluster_ids", "too_short", "List should have at least 1 item");
        body.ThrowIfInvalid();
        var requests = await volumes.AttachAsync(context.Caller(), storageId!, clusterIds!, context.RequestAborted);
        signals.PulseWork();
        return Results.Json(new StorageAttachResponse
        {
            RequestIds = requests.Select(r => r.Id).ToList(),
            Message = $"Attaching {storageId} to {string.Join(", ", requests.Select(r => r.ObjectId))}. Each cluster's nodes restart to mount it.",
        }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> DetachAsync(HttpContext context, VolumeStore volumes, RequestSignals signals)
    {
        var body = await JsonBody.ReadAsync(context.Request);
        var storageId = body.String("storage_id", required: true, maxLength: 64);
        var clusterId = body.String("cluster_id", required: true, maxLength: 64);
        body.ThrowIfInvalid();
        var request = await volumes.DetachAsync(context.Caller(), storageId!, clusterId!, context.RequestAborted);
        signals.PulseWork();
        return Accepted(request.Id, $"Detaching {storageId} from {clusterId}; its nodes restart to unmount it.");
    }

    private static async Task<IResult> ListAsync(HttpContext context, VolumeStore volumes)
    {
        var includeOrg = Query.Bool(context.Request, "include_org");
        var list = await volumes.ListAsync(context.Caller(), includeOrg, context.RequestAborted);
        string message;
        if (list.Count == 0)
        {
            message = includeOrg ? "Your organization has no storage volumes." : "You have no storage volumes. Create one with: tp storage create <size_gb>";
        }
        else
        {
            var table = new TextTable("STORAGE ID", "NAME", "SIZE (GB)", "STATUS", "ATTACHED TO", "CREATED");
            foreach (var v in list)
                table.Add(v.Id, v.Name ?? "-", v.SizeGb.ToString(CultureInfo.InvariantCulture), v.Status,
                    v.Attachments.Count == 0 ? "-" : string.Join(", ", v.Attachments.Select(a => a.ClusterId)), TextTable.When(v.CreatedAt));
            message = table.ToString();
        }
        return Results.Json(new StorageListResponse { Message = message, Volumes = list.Select(v => v.ToInfo(volumes.Billing)).ToList() }, ApiJson.Options);
    }

    private static async Task<IResult> InfoAsync(string storage_id, HttpContext context, VolumeStore volumes)
    {
        var volume = await volumes.GetVisibleAsync(context.Caller(), storage_id, context.RequestAborted) ?? throw VolumeStore.NotFound(storage_id);
        var info = volume.ToInfo(volumes.Billing);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Storage volume {volume.Id}{(volume.Name is null ? "" : $" ({volume.Name})")}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Status:               {volume.Status}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Size:                 {volume.SizeGb} GB (${info.PricePerMonthUsd:0.00}/month)\n");
        text.Append(CultureInfo.InvariantCulture, $"  Mount path:           {volume.MountPath}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Deletion protection:  {(volume.DeletionProtection ? "on" : "off")}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Owner:                {volume.OwnerEmail}{(volume.OrgName is null ? "" : $" ({volume.OrgName})")}\n");
        text.Append(CultureInfo.InvariantCulture, $"  Attached to:          {(volume.Attachments.Count == 0 ? "-" : string.Join(", ", volume.Attachments.Select(a => $"{a.ClusterId} ({a.Status})")))}");
        return Results.Json(new StorageInfoResponse { Message = text.ToString(), Storage = info }, ApiJson.Options);
    }

    private static IResult Accepted(string requestId, string message) =>
        Results.Json(new RequestAcceptedResponse { RequestId = requestId, Message = message }, ApiJson.Options, statusCode: StatusCodes.Status202Accepted);
}

internal static class StorageServices
{
    public static void AddStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<StorageOptions>(configuration.GetSection("Storage"));
        services.AddSingleton<VolumeStore>();
        services.AddSingleton<IRequestHandler, StorageCreateHandler>();
        services.AddSingleton<IRequestHandler, StorageDestroyHandler>();
        services.AddSingleton<IRequestHandler, StorageEditHandler>();
        services.AddSingleton<IRequestHandler, StorageAttachHandler>();
        services.AddSingleton<IRequestHandler, StorageDetachHandler>();
    }
}
