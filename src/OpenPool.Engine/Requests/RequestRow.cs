using OpenPool.Contracts;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Requests;

/// <summary>A row of the <c>requests</c> table: the durable record of one asynchronous operation.</summary>
internal sealed class RequestRow
{
    public long Seq { get; set; }
    public string Id { get; set; } = "";
    public string Type { get; set; } = "";
    public string Status { get; set; } = "";
    public string UserId { get; set; } = "";
    public string? OrgId { get; set; }
    public string? ObjectId { get; set; }
    public string? ExternalMessage { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public long? FinishedAt { get; set; }
    public int Attempts { get; set; }
    public long NextRunAt { get; set; }
    public string Step { get; set; } = "";
    public string Payload { get; set; } = "{}";
    public string? LeaseOwner { get; set; }
    public long? LeaseExpiresAt { get; set; }
    public long LeaseToken { get; set; }
    public string? IdempotencyKey { get; set; }

    /// <summary>
    /// What a handler read for one step and may reuse in the steps the same worker carries out right
    /// after it under the same claim (the cluster a claim works on), so each step need not read it
    /// again. In memory only: a new claim starts without it.
    /// </summary>
    public object? Carried { get; set; }

    public RequestType RequestType => Wire.ParseType(Type);
    public RequestStatus RequestStatus => Wire.ParseStatus(Status);
    public bool IsFinished => FinishedAt is not null;

    public RequestRow Clone() => (RequestRow)MemberwiseClone();

    public RequestInfoResponse ToInfo() => new()
    {
        RequestId = Id,
        RequestType = RequestType,
        Status = RequestStatus,
        CreatedAt = Time.Iso(CreatedAt),
        ObjectId = ObjectId,
        ExternalMessage = ExternalMessage,
    };
}

/// <summary>The wire names of request enums, which are also what the table stores.</summary>
internal static class Wire
{
    private static readonly Dictionary<RequestType, string> TypeNames = new()
    {
        [RequestType.ClusterClaim] = "CLUSTER_CLAIM",
        [RequestType.ClusterRelease] = "CLUSTER_RELEASE",
        [RequestType.ClusterEdit] = "CLUSTER_EDIT",
        [RequestType.StorageCreate] = "STORAGE_CREATE",
        [RequestType.StorageDestroy] = "STORAGE_DESTROY",
        [RequestType.StorageAttach] = "STORAGE_ATTACH",
        [RequestType.StorageDetach] = "STORAGE_DETACH",
        [RequestType.StorageEdit] = "STORAGE_EDIT",
    };

    private static readonly Dictionary<string, RequestType> TypesByName = TypeNames.ToDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase);

    private static readonly Dictionary<RequestStatus, string> StatusNames = new()
    {
        [RequestStatus.Pending] = "PENDING",
        [RequestStatus.Processing] = "PROCESSING",
        [RequestStatus.Completed] = "COMPLETED",
        [RequestStatus.Failed] = "FAILED",
        [RequestStatus.Retrying] = "RETRYING",
    };

    private static readonly Dictionary<string, RequestStatus> StatusesByName = StatusNames.ToDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase);

    public static string Name(this RequestType type) => TypeNames[type];
    public static string Name(this RequestStatus status) => StatusNames[status];
    public static RequestType ParseType(string name) => TypesByName[name];
    public static RequestStatus ParseStatus(string name) => StatusesByName[name];
    public static bool TryParseType(string name, out RequestType type) => TypesByName.TryGetValue(name, out type);
    public static bool TryParseStatus(string name, out RequestStatus status) => StatusesByName.TryGetValue(name, out status);
    public static IEnumerable<string> TypeNamesAll => TypeNames.Values;
    public static IEnumerable<string> StatusNamesAll => StatusNames.Values;
}
