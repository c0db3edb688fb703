using OpenPool.Contracts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Storage;

internal sealed class VolumeRecord
{
    public string Id { get; set; } = "";
    public string UserId { get; set; } = "";
    public string? OrgId { get; set; }
    public string? Name { get; set; }
    public int SizeGb { get; set; }
    public string Status { get; set; } = "";
    public bool DeletionProtection { get; set; }
    public long CreatedAt { get; set; }
    public string OwnerEmail { get; set; } = "";
    public string? OrgName { get; set; }
    public List<AttachmentRecord> Attachments { get; set; } = [];

    /// <summary>Where attached volumes appear on every node (TensorPool's NFS-era layout).</summary>
    public string MountPath => MountPathOf(Id);

    public static string MountPathOf(string volumeId) => $"/mnt/nfs-{volumeId}";

    public VolumeInfo ToInfo(BillingOptions billing) => new()
    {
        StorageId = Id,
        Name = Name,
        SizeGb = SizeGb,
        Status = VolumeStatuses.Parse(Status),
        DeletionProtection = DeletionProtection,
        MountPath = MountPath,
        AttachedClusters = Attachments.Select(a => new VolumeAttachment { ClusterId = a.ClusterId, Status = a.Status }).ToList(),
        Owner = OwnerEmail,
        Organization = OrgName,
        PricePerMonthUsd = decimal.Round(SizeGb * billing.StoragePricePerGbMonthUsd, 2),
        CreatedAt = Time.Iso(CreatedAt),
    };
}

internal sealed class AttachmentRecord
{
    public string VolumeId { get; set; } = "";
    public string ClusterId { get; set; } = "";
    public string Status { get; set; } = "";
}

internal static class VolumeStatuses
{
    public const string Pending = "PENDING";
    public const string Creating = "CREATING";
    public const string Ready = "READY";
    public const string Destroying = "DESTROYING";
    public const string Destroyed = "DESTROYED";
    public const string Failed = "FAILED";

    public static VolumeStatus Parse(string status) => status switch
    {
        Pending => VolumeStatus.Pending,
        Creating => VolumeStatus.Creating,
        Ready => VolumeStatus.Ready,
        Destroying => VolumeStatus.Destroying,
        Destroyed => VolumeStatus.Destroyed,
        Failed => VolumeStatus.Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Unknown volume status"),
    };
}

internal static class AttachmentStatuses
{
    public const string Attaching = "attaching";
    public const string Attached = "attached";
    public const string Detaching = "detaching";
}

/// <summary>A volume as a cluster's info shows it.</summary>
internal sealed class ClusterVolume
{
    public string VolumeId { get; set; } = "";
    public string? Name { get; set; }
    public string Status { get; set; } = "";

    public string MountPath => VolumeRecord.MountPathOf(VolumeId);
}
