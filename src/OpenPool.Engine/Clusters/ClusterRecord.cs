using OpenPool.Contracts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Providers;

namespace OpenPool.Engine.Clusters;

internal sealed class ClusterRecord
{
    public string Id { get; set; } = "";
    public string UserId { get; set; } = "";
    public string? OrgId { get; set; }
    public string? Name { get; set; }
    public string InstanceType { get; set; } = "";
    public int NumNodes { get; set; }
    public string Status { get; set; } = "";
    public bool DeletionProtection { get; set; }
    public string? Container { get; set; }
    public long PriceMicrosPerHour { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public string OwnerEmail { get; set; } = "";
    public string? OrgName { get; set; }
    public List<InstanceRecord> Instances { get; set; } = [];
    public List<ClusterKey> Keys { get; set; } = [];

    public ClusterStatus ClusterStatus => ClusterStatuses.Parse(Status);

    public ClusterInfo ToInfo() => new()
    {
        ClusterId = Id,
        Name = Name,
        InstanceType = InstanceType,
        NumNodes = NumNodes,
        Status = ClusterStatus,
        DeletionProtection = DeletionProtection,
        Container = Container,
        Owner = OwnerEmail,
        Organization = OrgName,
        PricePerHourUsd = PriceMicrosPerHour / 1_000_000m,
        CreatedAt = Time.Iso(CreatedAt),
        Instances = Instances.Select(i => i.ToInfo()).ToList(),
        SshKeys = Keys.Select(k => new ClusterSshKey { Name = k.Name, Fingerprint = k.Fingerprint }).ToList(),
    };
}

internal sealed class ClusterKey
{
    public string Name { get; set; } = "";
    public string Fingerprint { get; set; } = "";
    /// <summary>The OpenSSH line; only where the key is to be installed (a new cluster's claim), empty when read for display.</summary>
    public string PublicKey { get; set; } = "";
}

internal sealed class InstanceRecord
{
    public string Id { get; set; } = "";
    public string ClusterId { get; set; } = "";
    public int NodeIndex { get; set; }
    public string Status { get; set; } = "";
    public string? IpAddress { get; set; }
    public string? SshHost { get; set; }
    public int? SshPort { get; set; }
    public string? SshUser { get; set; }
    public string? SshHostKeyFingerprint { get; set; }

    /// <summary>How the provider said the node is reached over SSH, or null when it did not.</summary>
    public NodeAccess? Ssh => SshHost is not null && SshPort is { } port && SshUser is not null && SshHostKeyFingerprint is not null
        ? new NodeAccess(SshHost, port, SshUser, SshHostKeyFingerprint)
        : null;

    public InstanceInfo ToInfo() => new()
    {
        InstanceId = Id,
        ClusterId = ClusterId,
        NodeIndex = NodeIndex,
        Status = ClusterStatuses.Parse(Status),
        IpAddress = IpAddress,
    };
}

internal static class ClusterStatuses
{
    public const string Pending = "PENDING";
    public const string Provisioning = "PROVISIONING";
    public const string Running = "RUNNING";
    public const string Restarting = "RESTARTING";
    public const string Destroying = "DESTROYING";
    public const string Destroyed = "DESTROYED";
    public const string Failed = "FAILED";

    public static ClusterStatus Parse(string status) => status switch
    {
        Pending => ClusterStatus.Pending,
        Provisioning => ClusterStatus.Provisioning,
        Running => ClusterStatus.Running,
        Restarting => ClusterStatus.Restarting,
        Destroying => ClusterStatus.Destroying,
        Destroyed => ClusterStatus.Destroyed,
        Failed => ClusterStatus.Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Unknown cluster status"),
    };
}
