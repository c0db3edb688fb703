using System.Text.Json;
using OpenPool.Contracts;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Jobs;

internal sealed class JobRecord
{
    public string Id { get; set; } = "";
    public string UserId { get; set; } = "";
    public string? OrgId { get; set; }
    public string ClusterId { get; set; } = "";
    public string InstanceId { get; set; } = "";
    public string Status { get; set; } = "";
    public int? ExitCode { get; set; }
    public string TpConfig { get; set; } = "";
    public string Commands { get; set; } = "[]";
    public string Outputs { get; set; } = "[]";
    public string IgnorePatterns { get; set; } = "[]";
    public bool TeardownCluster { get; set; }
    public string System { get; set; } = "";
    public string? PublicMessage { get; set; }
    public long? UploadReceivedAt { get; set; }
    public long? CancelRequestedAt { get; set; }
    public long CreatedAt { get; set; }
    public long? StartedAt { get; set; }
    public long? FinishedAt { get; set; }
    public string OwnerEmail { get; set; } = "";
    /// <summary>The cluster's status; read only by <see cref="JobStore.ActiveAsync"/>, null elsewhere.</summary>
    public string? ClusterStatus { get; set; }

    public IReadOnlyList<string> CommandList => JsonSerializer.Deserialize<List<string>>(Commands) ?? [];
    public IReadOnlyList<string> OutputList => JsonSerializer.Deserialize<List<string>>(Outputs) ?? [];
    public IReadOnlyList<string> IgnoreList => JsonSerializer.Deserialize<List<string>>(IgnorePatterns) ?? [];
    public bool IsTerminal => JobStatuses.IsTerminal(Status);
    /// <summary>The job as its node's runtime knows it.</summary>
    public Providers.JobRef Node => new(InstanceId, Id);

    public JobInfo ToInfo() => new()
    {
        JobId = Id,
        Status = Status,
        ExitCode = ExitCode,
        ClusterId = ClusterId,
        InstanceId = InstanceId,
        Commands = CommandList,
        Outputs = OutputList,
        Ignore = IgnoreList,
        TeardownCluster = TeardownCluster,
        Owner = OwnerEmail,
        PublicMessage = PublicMessage,
        CreatedAt = Time.Iso(CreatedAt),
        StartedAt = StartedAt is { } s ? Time.Iso(s) : null,
        FinishedAt = FinishedAt is { } f ? Time.Iso(f) : null,
    };
}
