namespace OpenPool.Contracts;

/// <summary>Job statuses as the API writes them (lowercase).</summary>
public static class JobStatuses
{
    /// <summary>Admitted; waiting for its upload or to launch.</summary>
    public const string Pending = "pending";
    /// <summary>The commands are running.</summary>
    public const string Running = "running";
    /// <summary>Every command exited 0 (terminal).</summary>
    public const string Completed = "completed";
    /// <summary>A command exited non-zero (terminal).</summary>
    public const string Error = "error";
    /// <summary>The platform failed the job (terminal).</summary>
    public const string Failed = "failed";
    /// <summary>Being stopped.</summary>
    public const string Canceling = "canceling";
    /// <summary>Stopped by request (terminal).</summary>
    public const string Canceled = "canceled";

    /// <summary>True for completed, error, failed and canceled.</summary>
    public static bool IsTerminal(string status) => status is Completed or Error or Failed or Canceled;
}

/// <summary>A job as list and info describe it.</summary>
public sealed record JobInfo
{
    /// <summary>Job id (j-…).</summary>
    public required string JobId { get; init; }
    /// <summary>Lowercase status.</summary>
    public required string Status { get; init; }
    /// <summary>The exit code, once finished.</summary>
    public int? ExitCode { get; init; }
    /// <summary>The cluster it runs on.</summary>
    public required string ClusterId { get; init; }
    /// <summary>The node it runs on.</summary>
    public required string InstanceId { get; init; }
    /// <summary>The commands, in order.</summary>
    public required IReadOnlyList<string> Commands { get; init; }
    /// <summary>What <c>tp job pull</c> fetches.</summary>
    public required IReadOnlyList<string> Outputs { get; init; }
    /// <summary>Left out of the upload.</summary>
    public required IReadOnlyList<string> Ignore { get; init; }
    /// <summary>Whether the cluster is destroyed when the job ends.</summary>
    public required bool TeardownCluster { get; init; }
    /// <summary>Owner's email.</summary>
    public required string Owner { get; init; }
    /// <summary>A note from the platform about the job, if any.</summary>
    public string? PublicMessage { get; init; }
    /// <summary>When pushed (ISO 8601).</summary>
    public required string CreatedAt { get; init; }
    /// <summary>When the commands started.</summary>
    public string? StartedAt { get; init; }
    /// <summary>When it ended.</summary>
    public string? FinishedAt { get; init; }
}

/// <summary>Answer to GET /job/info/{job_id}.</summary>
public sealed record JobInfoResponse
{
    /// <summary>Readable text; what <c>tp job info</c> prints.</summary>
    public required string Message { get; init; }
    /// <summary>The job.</summary>
    public required JobInfo JobInfo { get; init; }
}

/// <summary>Answer to GET /job/list.</summary>
public sealed record JobListResponse
{
    /// <summary>Readable table.</summary>
    public required string Message { get; init; }
    /// <summary>The jobs, newest first.</summary>
    public required IReadOnlyList<JobInfo> Jobs { get; init; }
}

/// <summary>Answer to GET /job/init.</summary>
public sealed record JobInitResponse
{
    /// <summary>A commented .tp.toml template.</summary>
    public required string EmptyTpConfig { get; init; }
    /// <summary>Readable text.</summary>
    public string? Message { get; init; }
}

/// <summary>Answer to POST /job/cancel/{job_id}.</summary>
public sealed record JobCancelResponse
{
    /// <summary>The job.</summary>
    public required string JobId { get; init; }
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary><c>canceling</c>, or <c>canceled</c> when it already was.</summary>
    public required string Status { get; init; }
}

/// <summary>Answer to GET /job/pull/{job_id}.</summary>
public sealed record JobPullResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>Relative path → signed URL to GET without a key (null in a dry run).</summary>
    public required IReadOnlyDictionary<string, string?> DownloadMap { get; init; }
    /// <summary>A command for the client to run first; OpenPool never needs one.</summary>
    public string? Command { get; init; }
    /// <summary>Whether to show that command's output.</summary>
    public bool CommandShowStdout { get; init; }
}
