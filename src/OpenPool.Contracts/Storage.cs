using System.Text.Json.Serialization;

namespace OpenPool.Contracts;

/// <summary>Request body for POST /storage/create.</summary>
public sealed record StorageCreateRequest
{
    /// <summary>Size in GB.</summary>
    public required int Size { get; init; }
    /// <summary>A name, unique among the owner's volumes.</summary>
    public string? Name { get; init; }
    /// <summary>Refuse destroy until turned off (default false).</summary>
    public bool? DeletionProtection { get; init; }
}

/// <summary>Answer to POST /storage/create (202).</summary>
public sealed record StorageCreateResponse
{
    /// <summary>The new volume's id (s-…).</summary>
    public required string StorageId { get; init; }
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>The STORAGE_CREATE request to poll.</summary>
    public string? RequestId { get; init; }
}

/// <summary>Request body for PATCH /storage/edit/{storage_id}.</summary>
public sealed record StorageEditRequest
{
    /// <summary>New name.</summary>
    public string? TpStorageName { get; init; }
    /// <summary>Turn deletion protection on or off.</summary>
    public bool? DeletionProtection { get; init; }
    /// <summary>New size in GB; volumes only grow.</summary>
    public int? SizeGb { get; init; }
}

/// <summary>Request body for POST /storage/attach.</summary>
public sealed record StorageAttachRequest
{
    /// <summary>The volume.</summary>
    public required string StorageId { get; init; }
    /// <summary>The clusters to attach it to; one request each.</summary>
    public required IReadOnlyList<string> ClusterIds { get; init; }
}

/// <summary>Answer to POST /storage/attach (202).</summary>
public sealed record StorageAttachResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>One STORAGE_ATTACH request per cluster, in the order given.</summary>
    public required IReadOnlyList<string> RequestIds { get; init; }
}

/// <summary>Request body for POST /storage/detach.</summary>
public sealed record StorageDetachRequest
{
    /// <summary>The volume.</summary>
    public required string StorageId { get; init; }
    /// <summary>The one cluster to detach it from.</summary>
    public required string ClusterId { get; init; }
}

/// <summary>Storage volume lifecycle states.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<VolumeStatus>))]
public enum VolumeStatus
{
    /// <summary>Accepted; waiting for a worker.</summary>
    [JsonStringEnumMemberName("PENDING")] Pending,
    /// <summary>Being created.</summary>
    [JsonStringEnumMemberName("CREATING")] Creating,
    /// <summary>Ready to attach.</summary>
    [JsonStringEnumMemberName("READY")] Ready,
    /// <summary>Being destroyed.</summary>
    [JsonStringEnumMemberName("DESTROYING")] Destroying,
    /// <summary>Gone.</summary>
    [JsonStringEnumMemberName("DESTROYED")] Destroyed,
    /// <summary>Creation failed.</summary>
    [JsonStringEnumMemberName("FAILED")] Failed,
}

/// <summary>A cluster a volume is attached to.</summary>
public sealed record VolumeAttachment
{
    /// <summary>The cluster.</summary>
    public required string ClusterId { get; init; }
    /// <summary><c>attaching</c>, <c>attached</c> or <c>detaching</c>.</summary>
    public required string Status { get; init; }
}

/// <summary>A storage volume as list and info describe it.</summary>
public sealed record VolumeInfo
{
    /// <summary>Volume id (s-…).</summary>
    public required string StorageId { get; init; }
    /// <summary>Name, if given.</summary>
    public string? Name { get; init; }
    /// <summary>Size in GB.</summary>
    public required int SizeGb { get; init; }
    /// <summary>Lifecycle state.</summary>
    public required VolumeStatus Status { get; init; }
    /// <summary>Whether destroy is refused.</summary>
    public required bool DeletionProtection { get; init; }
    /// <summary>Where the volume appears on the nodes of the clusters it is attached to.</summary>
    public required string MountPath { get; init; }
    /// <summary>Clusters it is attached to.</summary>
    public required IReadOnlyList<VolumeAttachment> AttachedClusters { get; init; }
    /// <summary>Owner's email.</summary>
    public required string Owner { get; init; }
    /// <summary>Organization, if any.</summary>
    public string? Organization { get; init; }
    /// <summary>Monthly price at this size, USD.</summary>
    public required decimal PricePerMonthUsd { get; init; }
    /// <summary>When created (ISO 8601).</summary>
    public required string CreatedAt { get; init; }
}

/// <summary>Answer to GET /storage/list.</summary>
public sealed record StorageListResponse
{
    /// <summary>Readable table; what <c>tp storage list</c> prints.</summary>
    public required string Message { get; init; }
    /// <summary>The volumes.</summary>
    public required IReadOnlyList<VolumeInfo> Volumes { get; init; }
}

/// <summary>Answer to GET /storage/info/{storage_id}.</summary>
public sealed record StorageInfoResponse
{
    /// <summary>Readable text; what <c>tp storage info</c> prints.</summary>
    public required string Message { get; init; }
    /// <summary>The volume.</summary>
    public required VolumeInfo Storage { get; init; }
}
