namespace OpenPool.Engine.Jobs;

/// <summary>Job limits and behaviour (configuration section <c>Jobs</c>).</summary>
internal sealed class JobsOptions
{
    /// <summary>Largest project upload accepted.</summary>
    public long MaxUploadBytes { get; set; } = 512L * 1024 * 1024;
    /// <summary>Output beyond this stops the job (status failed), protecting the engine's disk.</summary>
    public long MaxOutputBytes { get; set; } = 256L * 1024 * 1024;
    /// <summary>Jobs pending or running on one cluster at once.</summary>
    public int MaxActivePerCluster { get; set; } = 4;
    /// <summary>Create a fresh Python virtual environment for each job when python3 exists (as TensorPool does).</summary>
    public bool PythonVenv { get; set; } = true;
    /// <summary>How long a client has to finish its upload.</summary>
    public double UploadUrlMinutes { get; set; } = 15;
    /// <summary>How long pull's download links stay valid.</summary>
    public double DownloadUrlMinutes { get; set; } = 60;
    /// <summary>How long a canceled job gets between SIGTERM and SIGKILL.</summary>
    public double CancelGraceSeconds { get; set; } = 5;
    /// <summary>How often running jobs are checked.</summary>
    public double MonitorIntervalMs { get; set; } = 200;
    /// <summary>How long a WebSocket client has to send its key frame before it is closed with 4401.</summary>
    public double KeyFrameTimeoutSeconds { get; set; } = 10;
    /// <summary>The URL clients reach this engine by, for upload and download links; default: what the client connected to.</summary>
    public string? PublicUrl { get; set; }
    /// <summary>
    /// How a node's processes are confined: <c>Bubblewrap</c> (default), or <c>None</c> for a
    /// single-user machine, where jobs then run as the engine's user and see its files.
    /// </summary>
    public SandboxMode Sandbox { get; set; } = SandboxMode.Bubblewrap;
    /// <summary>The bubblewrap program: a name looked up on PATH, or a path.</summary>
    public string Bubblewrap { get; set; } = "bwrap";
    /// <summary>Largest total size of the files a project unpacks to.</summary>
    public long MaxUnpackedBytes { get; set; } = 4L * 1024 * 1024 * 1024;
    /// <summary>Processes a tenant's node processes may run at once (RLIMIT_NPROC of the tenant's uid).</summary>
    public int MaxProcesses { get; set; } = 4096;
    /// <summary>Memory all processes of one node may use together, where the engine can make cgroups (root, a writable memory controller).</summary>
    public long MaxNodeMemoryBytes { get; set; } = 8L * 1024 * 1024 * 1024;
    /// <summary>Open files per node process (RLIMIT_NOFILE).</summary>
    public int MaxOpenFiles { get; set; } = 65536;
    /// <summary>Most files one pull lists; a job's tree is walked for at most 10 s or 200,000 entries.</summary>
    public int MaxPullFiles { get; set; } = 10_000;
}

/// <summary>How a simulated node's processes are confined (<c>Jobs:Sandbox</c>).</summary>
internal enum SandboxMode
{
    /// <summary>Every node process runs in a bubblewrap sandbox.</summary>
    Bubblewrap,
    /// <summary>No sandbox: jobs run as the engine's user. Only for a single-user machine.</summary>
    None,
}
