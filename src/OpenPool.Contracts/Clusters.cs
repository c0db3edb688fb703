using System.Text.Json.Serialization;

namespace OpenPool.Contracts;

/// <summary>Request body for POST /cluster/create.</summary>
public sealed record ClusterCreateRequest
{
    /// <summary>Instance type, e.g. <c>1xH100</c>.</summary>
    public required string InstanceType { get; init; }
    /// <summary>Extra OpenSSH public keys for the nodes.</summary>
    public IReadOnlyList<string>? PublicKeys { get; init; }
    /// <summary>Number of nodes (default 1).</summary>
    public int? NumNodes { get; init; }
    /// <summary>A name for the cluster, unique among the owner's clusters.</summary>
    public string? TpClusterName { get; init; }
    /// <summary>Container image for the nodes.</summary>
    public string? Container { get; init; }
    /// <summary>Refuse destroy until turned off (default false).</summary>
    public bool? DeletionProtection { get; init; }
    /// <summary>Save new public keys to the user's profile (default true).</summary>
    public bool? SaveKeys { get; init; }
}

/// <summary>Answer to POST /cluster/create (202).</summary>
public sealed record ClusterCreateResponse
{
    /// <summary>The new cluster's id (c-…).</summary>
    public required string ClusterId { get; init; }
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>One instance id (i-…) per node.</summary>
    public required IReadOnlyList<string> InstanceIds { get; init; }
    /// <summary>The CLUSTER_CLAIM request to poll.</summary>
    public string? RequestId { get; init; }
}

/// <summary>Request body for PATCH /cluster/edit/{cluster}.</summary>
public sealed record ClusterEditRequest
{
    /// <summary>New name, unique among the owner's clusters.</summary>
    public string? ClusterName { get; init; }
    /// <summary>Turn deletion protection on or off.</summary>
    public bool? DeletionProtection { get; init; }
}

/// <summary>Answer of the endpoints that start one request (202).</summary>
public sealed record RequestAcceptedResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>The request to poll.</summary>
    public string? RequestId { get; init; }
}

/// <summary>Cluster lifecycle states.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ClusterStatus>))]
public enum ClusterStatus
{
    /// <summary>Accepted; waiting for a worker.</summary>
    [JsonStringEnumMemberName("PENDING")] Pending,
    /// <summary>Nodes are being provisioned.</summary>
    [JsonStringEnumMemberName("PROVISIONING")] Provisioning,
    /// <summary>Ready to use.</summary>
    [JsonStringEnumMemberName("RUNNING")] Running,
    /// <summary>Nodes are restarting.</summary>
    [JsonStringEnumMemberName("RESTARTING")] Restarting,
    /// <summary>Being destroyed.</summary>
    [JsonStringEnumMemberName("DESTROYING")] Destroying,
    /// <summary>Gone; no node remains.</summary>
    [JsonStringEnumMemberName("DESTROYED")] Destroyed,
    /// <summary>Provisioning failed; no node remains.</summary>
    [JsonStringEnumMemberName("FAILED")] Failed,
}

/// <summary>One node of a cluster.</summary>
public sealed record InstanceInfo
{
    /// <summary>Instance id (i-…); what <c>tp ssh</c> takes.</summary>
    public required string InstanceId { get; init; }
    /// <summary>The cluster it belongs to.</summary>
    public required string ClusterId { get; init; }
    /// <summary>Same values as the cluster status.</summary>
    public required ClusterStatus Status { get; init; }
    /// <summary>Address for SSH, once running.</summary>
    public string? IpAddress { get; init; }
    /// <summary>Node index within the cluster, from 0.</summary>
    public required int NodeIndex { get; init; }
}

/// <summary>A cluster as the list and info endpoints describe it.</summary>
public sealed record ClusterInfo
{
    /// <summary>Cluster id (c-…).</summary>
    public required string ClusterId { get; init; }
    /// <summary>Name, if one was given.</summary>
    public string? Name { get; init; }
    /// <summary>Instance type.</summary>
    public required string InstanceType { get; init; }
    /// <summary>Number of nodes.</summary>
    public required int NumNodes { get; init; }
    /// <summary>Lifecycle state.</summary>
    public required ClusterStatus Status { get; init; }
    /// <summary>Whether destroy is refused.</summary>
    public required bool DeletionProtection { get; init; }
    /// <summary>Container image, if any.</summary>
    public string? Container { get; init; }
    /// <summary>Owner's email.</summary>
    public required string Owner { get; init; }
    /// <summary>Organization name, when the owner has one.</summary>
    public string? Organization { get; init; }
    /// <summary>Price per hour of the whole cluster, USD.</summary>
    public required decimal PricePerHourUsd { get; init; }
    /// <summary>When the cluster was created (ISO 8601).</summary>
    public required string CreatedAt { get; init; }
    /// <summary>The nodes.</summary>
    public required IReadOnlyList<InstanceInfo> Instances { get; init; }
    /// <summary>The SSH keys installed on the nodes (shown by info; empty in lists).</summary>
    public IReadOnlyList<ClusterSshKey> SshKeys { get; init; } = [];
}

/// <summary>An SSH key a cluster carries.</summary>
public sealed record ClusterSshKey
{
    /// <summary>The key's name.</summary>
    public required string Name { get; init; }
    /// <summary>OpenSSH SHA256 fingerprint.</summary>
    public required string Fingerprint { get; init; }
}

/// <summary>Answer to GET /cluster/list.</summary>
public sealed record ClusterListResponse
{
    /// <summary>Readable table; what <c>tp cluster list</c> prints.</summary>
    public required string Message { get; init; }
    /// <summary>The clusters.</summary>
    public required IReadOnlyList<ClusterInfo> Clusters { get; init; }
    /// <summary>Every instance across the clusters, when <c>instances=true</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<InstanceInfo>? Instances { get; init; }
}

/// <summary>Answer to GET /cluster/info/{cluster}.</summary>
public sealed record ClusterInfoResponse
{
    /// <summary>Readable text; what <c>tp cluster info</c> prints.</summary>
    public required string Message { get; init; }
    /// <summary>The cluster.</summary>
    public required ClusterInfo Cluster { get; init; }
}

/// <summary>Answer to GET /ssh/{instance_id}.</summary>
public sealed record SshCommandResponse
{
    /// <summary>The full ssh command line.</summary>
    public required string Command { get; init; }
    /// <summary>Text to show before running it.</summary>
    public string? Message { get; init; }
}
