using System.ComponentModel;
using System.Text.Json.Serialization;

namespace OpenPool.Contracts;

/// <summary>The kind of asynchronous operation a request carries out.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RequestType>))]
public enum RequestType
{
    /// <summary>Provision a cluster.</summary>
    [JsonStringEnumMemberName("CLUSTER_CLAIM")] ClusterClaim,
    /// <summary>Destroy a cluster.</summary>
    [JsonStringEnumMemberName("CLUSTER_RELEASE")] ClusterRelease,
    /// <summary>Change a cluster's name or deletion protection.</summary>
    [JsonStringEnumMemberName("CLUSTER_EDIT")] ClusterEdit,
    /// <summary>Create a storage volume.</summary>
    [JsonStringEnumMemberName("STORAGE_CREATE")] StorageCreate,
    /// <summary>Destroy a storage volume.</summary>
    [JsonStringEnumMemberName("STORAGE_DESTROY")] StorageDestroy,
    /// <summary>Attach a storage volume to a cluster.</summary>
    [JsonStringEnumMemberName("STORAGE_ATTACH")] StorageAttach,
    /// <summary>Detach a storage volume from a cluster.</summary>
    [JsonStringEnumMemberName("STORAGE_DETACH")] StorageDetach,
    /// <summary>Change a storage volume's name, protection or size.</summary>
    [JsonStringEnumMemberName("STORAGE_EDIT")] StorageEdit,
}

/// <summary>Where a request is in its lifecycle. COMPLETED and FAILED are terminal.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RequestStatus>))]
public enum RequestStatus
{
    /// <summary>Accepted, not started.</summary>
    [JsonStringEnumMemberName("PENDING")] Pending,
    /// <summary>A worker is carrying it out.</summary>
    [JsonStringEnumMemberName("PROCESSING")] Processing,
    /// <summary>Finished successfully (terminal).</summary>
    [JsonStringEnumMemberName("COMPLETED")] Completed,
    /// <summary>Finished unsuccessfully (terminal); see external_message.</summary>
    [JsonStringEnumMemberName("FAILED")] Failed,
    /// <summary>A transient fault happened; it will be tried again.</summary>
    [JsonStringEnumMemberName("RETRYING")] Retrying,
}

/// <summary>Helpers on <see cref="RequestStatus"/>.</summary>
public static class RequestStatusExtensions
{
    /// <summary>True for COMPLETED and FAILED.</summary>
    public static bool IsTerminal(this RequestStatus status) =>
        status is RequestStatus.Completed or RequestStatus.Failed;
}

/// <summary>Response model for individual request info endpoint.</summary>
[Description("Response model for individual request info endpoint.")]
public sealed record RequestInfoResponse
{
    /// <summary>The request id (req_…).</summary>
    public required string RequestId { get; init; }
    /// <summary>What the request does.</summary>
    public required RequestType RequestType { get; init; }
    /// <summary>Where the request is.</summary>
    public required RequestStatus Status { get; init; }
    /// <summary>When the request was accepted (ISO 8601, UTC).</summary>
    public required string CreatedAt { get; init; }
    /// <summary>The cluster or storage volume the request acts on.</summary>
    public string? ObjectId { get; init; }
    /// <summary>Text for the user about the request's progress or outcome.</summary>
    public string? ExternalMessage { get; init; }
}

/// <summary>A page of requests (OpenPool extension: GET /request/list, GET /cluster/operations/{cluster}).</summary>
public sealed record RequestListResponse
{
    /// <summary>The requests on this page, newest first.</summary>
    public required IReadOnlyList<RequestInfoResponse> Requests { get; init; }
    /// <summary>Pass as <c>cursor</c> to get the next page; null on the last page.</summary>
    public string? NextCursor { get; init; }
    /// <summary>A readable rendering of the page.</summary>
    public string? Message { get; init; }
}
