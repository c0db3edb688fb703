namespace OpenPool.Engine.Providers;

/// <summary>
/// The one seam to machines. Every call is idempotent on the request id: calling it again after a
/// crash continues or reports the same operation rather than starting a second one. Calls return
/// at once with progress; the request worker calls again when the estimate says it is worth it.
/// </summary>
internal interface ICloudProvider
{
    /// <summary>Provisions the cluster's nodes (one per instance id).</summary>
    Task<ProviderProgress> ProvisionAsync(ProvisionOrder order, CancellationToken ct);

    /// <summary>Releases every node of the cluster, including any a concurrent provision is still creating.</summary>
    Task<ProviderProgress> ReleaseAsync(ReleaseOrder order, CancellationToken ct);

    Task<ProviderProgress> CreateVolumeAsync(VolumeOrder order, CancellationToken ct);

    Task<ProviderProgress> DeleteVolumeAsync(VolumeOrder order, CancellationToken ct);

    /// <summary>Grows a volume to <see cref="VolumeOrder.SizeGb"/>, online.</summary>
    Task<ProviderProgress> ResizeVolumeAsync(VolumeOrder order, CancellationToken ct);

    /// <summary>Mounts the volume on every node of the cluster; the nodes restart to do so.</summary>
    Task<ProviderProgress> AttachVolumeAsync(AttachmentOrder order, CancellationToken ct);

    /// <summary>Unmounts the volume from every node of the cluster; the nodes restart to do so.</summary>
    Task<ProviderProgress> DetachVolumeAsync(AttachmentOrder order, CancellationToken ct);

    /// <summary>Where a job's uploaded project, working directory and output live for the engine.</summary>
    JobPaths PathsOf(string instanceId, string jobId);

    /// <summary>Unpacks the uploaded project and starts the commands. Idempotent: a started job is left alone.</summary>
    Task StartJobAsync(JobLaunch launch, CancellationToken ct);

    /// <summary>Whether the job's commands still run, and their exit code once they stopped.</summary>
    JobProcessState InspectJob(string instanceId, string jobId);

    /// <summary>Asks the job's whole process tree to stop (SIGTERM), or forces it (SIGKILL).</summary>
    void SignalJob(string instanceId, string jobId, bool force);
}

internal sealed record JobPaths(string Root, string Archive, string Work, string Output, string ExitCode, string Pid);

internal sealed record VolumeMount(string VolumeId, string MountPath);

internal sealed record JobLaunch(string JobId, string InstanceId, IReadOnlyList<string> Commands, bool PythonVenv, IReadOnlyList<VolumeMount> Volumes);

internal enum JobProcessKind
{
    /// <summary>Launched but has not reported its process yet.</summary>
    Starting,
    Running,
    Exited,
    /// <summary>Neither running nor reporting an exit code: it was killed, or its node went away.</summary>
    Lost,
}

internal sealed record JobProcessState(JobProcessKind Kind, int? ExitCode = null);

internal sealed record VolumeOrder(string RequestId, string VolumeId, int SizeGb);

internal sealed record AttachmentOrder(string RequestId, string VolumeId, string ClusterId);

internal sealed record ProvisionOrder(string RequestId, string ClusterId, string InstanceType, IReadOnlyList<string> InstanceIds, int Attempt);

internal sealed record ReleaseOrder(string RequestId, string ClusterId);

internal enum ProgressState
{
    Done,
    InProgress,
    /// <summary>Worth retrying later: a glitch or no capacity right now.</summary>
    TransientFailure,
    /// <summary>Retrying will not help.</summary>
    PermanentFailure,
}

internal sealed record ProvisionedNode(string InstanceId, string IpAddress);

internal sealed record ProviderProgress(ProgressState State, string Message, TimeSpan Remaining = default, IReadOnlyList<ProvisionedNode>? Nodes = null)
{
    public static ProviderProgress Done(string message, IReadOnlyList<ProvisionedNode>? nodes = null) => new(ProgressState.Done, message, Nodes: nodes);
    public static ProviderProgress Working(string message, TimeSpan remaining) => new(ProgressState.InProgress, message, remaining);
    public static ProviderProgress Transient(string message) => new(ProgressState.TransientFailure, message);
    public static ProviderProgress Permanent(string message) => new(ProgressState.PermanentFailure, message);
}
