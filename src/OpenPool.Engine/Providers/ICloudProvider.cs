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

    /// <summary>
    /// Makes <see cref="KeyOrder.PublicKeys"/> the keys that log in to every node of the cluster, in
    /// place of any installed before (a login open already is not cut). The claim's last step; a node
    /// that has not come up yet gets them when it does.
    /// </summary>
    Task<ProviderProgress> InstallKeysAsync(KeyOrder order, CancellationToken ct);

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

    // The job runtime: a job's bytes and processes live on its node, and the engine reaches them
    // only through these calls (never through paths of its own), so the same Jobs/ code drives a
    // simulated node on this host and a real one across the network.

    /// <summary>
    /// Stores the uploaded project (a gzipped tar) for the job, durably: once this returns, a crash
    /// leaves the whole archive; until then, none of it. A second upload for the same job replaces
    /// nothing while the first is in progress (<see cref="JobUploadConflictException"/>).
    /// </summary>
    /// <returns>The number of bytes received.</returns>
    /// <exception cref="JobUploadTooLargeException">The stream is longer than <paramref name="maxBytes"/>; nothing is kept.</exception>
    Task<long> ReceiveProjectAsync(JobRef job, Stream archive, long maxBytes, CancellationToken ct);

    /// <summary>
    /// Unpacks the received project and starts the commands. Idempotent: a started job is left alone,
    /// and a start interrupted by a crash starts afresh from the intact archive.
    /// </summary>
    /// <exception cref="JobStartException">The project cannot be unpacked or run; the message is safe to show the job's owner.</exception>
    Task StartJobAsync(JobLaunch launch, CancellationToken ct);

    /// <summary>The process state of each job, in the order asked.</summary>
    Task<IReadOnlyList<JobProcessState>> InspectJobsAsync(IReadOnlyList<JobRef> jobs, CancellationToken ct);

    /// <summary>Asks the job's whole process tree to stop (SIGTERM), or forces it (SIGKILL).</summary>
    Task SignalJobAsync(JobRef job, bool force, CancellationToken ct);

    /// <summary>
    /// The job's combined output from byte <paramref name="offset"/>, at most <paramref name="maxBytes"/>
    /// of it (empty when nothing new was written), with the breaks sealed so far up to its end. The
    /// breaks are read after the bytes, so a break inside the returned bytes is never missed.
    /// </summary>
    Task<JobOutput> ReadOutputAsync(JobRef job, long offset, int maxBytes, CancellationToken ct);

    /// <summary>
    /// Records that the output is cut at <paramref name="offset"/> (an unfinished line that stayed
    /// unfinished, such as a progress bar): every listener, live or replaying later, sends the bytes
    /// before it as their own message. Breaks only grow; a break at or before the last one is ignored.
    /// </summary>
    Task SealOutputAsync(JobRef job, long offset, CancellationToken ct);

    /// <summary>
    /// The job's files matched by its outputs (a file, a directory meaning everything in it, or a glob),
    /// as paths relative to its working directory, sorted; bounded in count and time, never leaving
    /// the working directory.
    /// </summary>
    Task<JobOutputFiles> MatchOutputsAsync(JobRef job, IReadOnlyList<string> outputs, CancellationToken ct);

    /// <summary>Opens one output file (a path as <see cref="MatchOutputsAsync"/> returns it), or null when it is not a regular file inside the job.</summary>
    Task<Stream?> OpenOutputAsync(JobRef job, string path, CancellationToken ct);

    /// <summary>Removes what the job left on its node (after it ended and was deleted).</summary>
    Task DeleteJobAsync(JobRef job, CancellationToken ct);

    /// <summary>
    /// Null when anyone may push jobs: they run confined to their node, or the operator chose to run
    /// them unconfined (<c>Jobs:Sandbox=None</c>). Otherwise why jobs cannot be confined, in one line:
    /// an unconfined job sees the engine's host as the engine's user, so only the operator may push then.
    /// </summary>
    string? JobConfinementProblem { get; }

    /// <summary>
    /// Null when the provider's nodes take SSH logins; otherwise why they do not, in one line that
    /// says what the operator must install or change (shown by <c>GET /ssh</c>).
    /// </summary>
    string? SshProblem { get; }
}

/// <summary>A job on a node.</summary>
internal sealed record JobRef(string InstanceId, string JobId);

/// <param name="Bytes">Output bytes from the offset asked for.</param>
/// <param name="Breaks">Sealed break offsets (absolute, ascending) from the offset asked for to the end of the bytes, both included.</param>
internal sealed record JobOutput(ReadOnlyMemory<byte> Bytes, IReadOnlyList<long> Breaks)
{
    public static readonly JobOutput Empty = new(ReadOnlyMemory<byte>.Empty, []);
}

internal sealed class JobUploadTooLargeException(long limit) : Exception($"The upload is larger than {limit} bytes")
{
    public long Limit { get; } = limit;
}

internal sealed class JobUploadConflictException() : Exception("Another upload for this job is in progress or done");

/// <summary>A job that cannot start; its message is written for the job's owner and names no server path.</summary>
internal sealed class JobStartException(string message) : Exception(message);

internal sealed record VolumeMount(string VolumeId, string MountPath);

/// <param name="IsIgnored">
/// Whether a project path (relative, '/'-separated; the second argument says whether it is a directory)
/// is left out by the job's <c>ignore</c> rules; such entries of the archive are not unpacked.
/// </param>
/// <param name="Tenant">The job's organization, or its user without one: nodes of one tenant share a user (and so its volumes' files).</param>
internal sealed record JobLaunch(JobRef Job, IReadOnlyList<string> Commands, bool PythonVenv, IReadOnlyList<VolumeMount> Volumes,
    Func<string, bool, bool> IsIgnored, string Tenant);

/// <param name="Paths">Matched files, relative to the job's working directory, sorted.</param>
/// <param name="Truncated">The listing stopped at its bound (files, entries walked or time) before the tree's end.</param>
internal sealed record JobOutputFiles(IReadOnlyList<string> Paths, bool Truncated);

internal enum JobProcessKind
{
    /// <summary>Launched but has not reported its process yet.</summary>
    Starting,
    Running,
    Exited,
    /// <summary>Neither running nor reporting an exit code: it was killed, or its node went away.</summary>
    Lost,
}

/// <param name="OutputBytes">How much output the job has written so far.</param>
internal sealed record JobProcessState(JobProcessKind Kind, int? ExitCode = null, long OutputBytes = 0);

internal sealed record VolumeOrder(string RequestId, string VolumeId, int SizeGb);

internal sealed record AttachmentOrder(string RequestId, string VolumeId, string ClusterId);

/// <param name="PublicKeys">
/// The keys that may log in to every node over SSH (the cluster's keys), as OpenSSH public key lines
/// (<c>ssh-ed25519 AAAA… comment</c>); no other key gets in.
/// </param>
/// <param name="Tenant">
/// The cluster's organization, or its user without one: nodes of one tenant share a user. Null for an
/// order from before tenants were carried; the provider then treats the cluster as its own tenant.
/// </param>
internal sealed record ProvisionOrder(string RequestId, string ClusterId, string InstanceType, IReadOnlyList<string> InstanceIds, int Attempt,
    IReadOnlyList<string>? PublicKeys = null, string? Tenant = null)
{
    public IReadOnlyList<string> Keys => PublicKeys ?? [];
}

internal sealed record ReleaseOrder(string RequestId, string ClusterId);

/// <param name="PublicKeys">OpenSSH public key lines (<c>ssh-ed25519 AAAA… comment</c>): the only keys that log in afterwards.</param>
internal sealed record KeyOrder(string RequestId, string ClusterId, IReadOnlyList<string> PublicKeys);

internal enum ProgressState
{
    Done,
    InProgress,
    /// <summary>Worth retrying later: a glitch or no capacity right now.</summary>
    TransientFailure,
    /// <summary>Retrying will not help.</summary>
    PermanentFailure,
}

/// <param name="IpAddress">The address the node is listed under (what <c>tp cluster info</c> shows).</param>
/// <param name="Ssh">How a client logs in to the node, or null when it cannot (see <see cref="ICloudProvider.SshProblem"/>).</param>
internal sealed record ProvisionedNode(string InstanceId, string IpAddress, NodeAccess? Ssh = null);

/// <summary>How a node is reached over SSH: <c>ssh -p Port User@Host</c>, expecting the host key whose fingerprint is given.</summary>
/// <param name="Host">A name or address clients can reach (not necessarily the listed IP).</param>
/// <param name="Port">TCP port, 1..65535.</param>
/// <param name="User">The login name (<c>ubuntu</c> on GPU nodes).</param>
/// <param name="HostKeyFingerprint">The node's host key as <c>ssh-keygen -lf</c> prints it: <c>SHA256:</c> and unpadded base64.</param>
internal sealed record NodeAccess(string Host, int Port, string User, string HostKeyFingerprint);

internal sealed record ProviderProgress(ProgressState State, string Message, TimeSpan Remaining = default, IReadOnlyList<ProvisionedNode>? Nodes = null)
{
    public static ProviderProgress Done(string message, IReadOnlyList<ProvisionedNode>? nodes = null) => new(ProgressState.Done, message, Nodes: nodes);
    public static ProviderProgress Working(string message, TimeSpan remaining) => new(ProgressState.InProgress, message, remaining);
    public static ProviderProgress Transient(string message) => new(ProgressState.TransientFailure, message);
    public static ProviderProgress Permanent(string message) => new(ProgressState.PermanentFailure, message);
}
