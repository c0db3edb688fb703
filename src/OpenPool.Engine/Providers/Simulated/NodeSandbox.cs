using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Jobs;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// What a simulated node is to the processes on it: a bubblewrap sandbox with its own mount, PID,
/// UTS and IPC namespaces, in which the node's home is <c>/home/ubuntu</c>, its attached volumes are
/// at <c>/mnt/nfs-&lt;id&gt;</c>, the host's system directories are read-only, and nothing of the
/// engine (its data directory, its environment, its processes) exists. When the engine runs as root,
/// a node's processes run as an unprivileged host uid of the tenant (so two tenants never share a
/// uid, and a tenant's volumes stay writable from all its clusters); inside they are uid 1000.
/// </summary>
internal sealed class NodeSandbox
{
    public const string NodeUser = "ubuntu";
    public const string NodeHome = "/home/ubuntu";
    /// <summary>Where the engine's per-job scripts appear inside the sandbox, read-only.</summary>
    public const string ScriptsMount = "/opt/openpool";
    /// <summary>The node's <c>/etc/ssh</c> beside its other files (made by its first login, or a job's start where nodes take logins).</summary>
    public const string EtcSshDirectory = "etc-ssh";
    /// <summary>The node's <c>/tmp</c>, on disk and shared by all its jobs and logins (a tmux server outlives the login that started it).</summary>
    private const string TmpDirectory = "tmp";
    private const UnixFileMode StickyWorldWritable = (UnixFileMode)0b1_111_111_111; // 1777, as /tmp is everywhere
    private const int InsideUid = 1000;
    public const string SearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The shell a GPU node's user has (bash), and the one commands and launchers run under.</summary>
    public static string Shell { get; } = File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh";
    private const int FirstTenantUid = 3_000_000;

    // Host configuration a program commonly needs (name resolution, certificates, the interpreter
    // alternatives Debian links through /etc); the rest of /etc (the operator's files) is not shown.
    private static readonly string[] EtcEntries =
    [
        "alternatives", "ssl", "ca-certificates", "ca-certificates.conf", "resolv.conf", "hosts", "nsswitch.conf", "host.conf",
        "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "mime.types", "os-release", "debian_version",
        "bash.bashrc", "profile", "profile.d", "inputrc", "environment", "terminfo", "protocols", "services", "gai.conf",
        "python3", "pip.conf", "gitconfig", "vim", "skel", "magic", "magic.mime", "xdg", "login.defs",
    ];

    /// <summary>Modes of what a node's user must read (bind-mounted into its sandbox).</summary>
    public const UnixFileMode ReadableFile = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    public const UnixFileMode ReadableDirectory = ReadableFile | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private readonly string _root;
    private readonly Lock _uidLock = new();
    private readonly Lazy<string?> _problem;

    public NodeSandbox(EngineOptions engine, Microsoft.Extensions.Options.IOptions<JobsOptions> jobs)
    {
        _root = Path.Combine(engine.DataDir, "sim");
        Mode = jobs.Value.Sandbox;
        Program = FindProgram(jobs.Value.Bubblewrap);
        _problem = new Lazy<string?>(Probe);
    }

    public SandboxMode Mode { get; }

    /// <summary>bubblewrap's full path, or null when it is not installed.</summary>
    public string? Program { get; }

    /// <summary>
    /// Where node memory cgroups go (<c>…/openpool</c> under cgroup v2 with the memory controller, or
    /// under v1's memory hierarchy), or null where the engine cannot make them (not root, read-only
    /// cgroup file system): then node memory is not limited.
    /// </summary>
    public MemoryCgroupRoot? MemoryCgroups => _memoryCgroups.Value;

    private readonly Lazy<MemoryCgroupRoot?> _memoryCgroups = new(FindMemoryCgroups);

    private static MemoryCgroupRoot? FindMemoryCgroups()
    {
        if (!EngineIsRoot)
            return null;
        const string mount = "/sys/fs/cgroup";
        var unified = File.Exists(Path.Combine(mount, "cgroup.controllers"));
        if (unified && !File.ReadAllText(Path.Combine(mount, "cgroup.controllers")).Split(' ', StringSplitOptions.TrimEntries).Contains("memory"))
            return null;
        var ours = Path.Combine(unified ? mount : Path.Combine(mount, "memory"), "openpool");
        try
        {
            Directory.CreateDirectory(ours);
            if (unified)
            {
                // Memory limits must be handed down to our directory and from it to each node's.
                File.WriteAllText(Path.Combine(mount, "cgroup.subtree_control"), "+memory");
                File.WriteAllText(Path.Combine(ours, "cgroup.subtree_control"), "+memory");
            }
            return new MemoryCgroupRoot(ours, unified);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // not ours to change here
        }
    }

    /// <summary>Shell lines that put the calling shell (and so everything it starts) in the node's memory cgroup; empty where there are none.</summary>
    public string JoinMemoryCgroup(string instanceId, long limitBytes)
    {
        if (MemoryCgroups is not { } root)
            return "";
        var cgroup = Quote(Path.Combine(root.Path, instanceId));
        var limit = limitBytes.ToString(CultureInfo.InvariantCulture);
        // Swap counts too where the kernel can say so, or a node beyond its memory would only swap.
        var (limitFile, swapFile, swapValue) = root.Unified
            ? ("memory.max", "memory.swap.max", "0")
            : ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", limit);
        return $"mkdir -p {cgroup} && echo {limit} > {cgroup}/{limitFile} && {{ [ ! -e {cgroup}/{swapFile} ] || echo {swapValue} > {cgroup}/{swapFile}; }} && echo $$ > {cgroup}/cgroup.procs\n";
    }

    /// <summary>Removes a released node's memory cgroup (once its processes are gone; harmless before).</summary>
    public void RemoveMemoryCgroup(string instanceId)
    {
        if (MemoryCgroups is not { } root)
            return;
        try
        {
            Directory.Delete(Path.Combine(root.Path, instanceId));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // still busy, or gone already
        }
    }

    public static bool EngineIsRoot { get; } = GetEffectiveUid() == 0;

    /// <summary>Null when node processes are sandboxed; otherwise why not, in one line for the operator.</summary>
    public string? Problem => Mode == SandboxMode.None ? null : _problem.Value;

    /// <summary>Whether jobs run unconfined: the operator chose no sandbox, or none could be made.</summary>
    public bool Unconfined => Mode == SandboxMode.None || _problem.Value is not null;

    /// <summary>The host uid a tenant's node processes run as (the engine's own when it is not root).</summary>
    public int UidOf(string tenant)
    {
        if (!EngineIsRoot)
            return GetEffectiveUid();
        // One uid per tenant for the life of the data directory, handed out in order (a hash could
        // give two tenants the same uid), from a range of its own on this host: another engine here
        // (a second data directory, a replica) must not hand the same uids to its tenants.
        var path = Path.Combine(_root, "tenant-uids.json");
        lock (_uidLock)
        {
            Directory.CreateDirectory(_root);
            var map = File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(path)) ?? [] : [];
            if (map.TryGetValue(tenant, out var uid))
                return uid;
            if (map.Count >= UidsPerEngine)
                throw new InvalidOperationException($"this engine has handed out all {UidsPerEngine} tenant uids of its range");
            uid = map.Count == 0 ? UidRangeStart() : map.Values.Max() + 1;
            map[tenant] = uid;
            File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(map));
            File.Move(path + ".tmp", path, overwrite: true);
            return uid;
        }
    }

    private const int UidsPerEngine = 65536;
    private const string HostRegistry = "/var/lib/openpool/uid-ranges.json";

    /// <summary>
    /// The first uid of this data directory's range, claimed once in a host-wide registry (under an
    /// exclusive lock, as engines may start together); ranges of data directories that no longer
    /// exist are handed out again.
    /// </summary>
    private int UidRangeStart()
    {
        var dataDir = Path.GetDirectoryName(_root)!;
        Directory.CreateDirectory(Path.GetDirectoryName(HostRegistry)!);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var registryLock = new FileStream(HostRegistry + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                var ranges = File.Exists(HostRegistry)
                    ? JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(HostRegistry)) ?? []
                    : [];
                if (!ranges.TryGetValue(dataDir, out var index))
                {
                    foreach (var gone in ranges.Keys.Where(dir => !Directory.Exists(dir)).ToList())
                        ranges.Remove(gone);
                    var taken = ranges.Values.ToHashSet();
                    index = Enumerable.Range(0, int.MaxValue).First(i => !taken.Contains(i));
                    ranges[dataDir] = index;
                    File.WriteAllText(HostRegistry + ".tmp", JsonSerializer.Serialize(ranges));
                    File.Move(HostRegistry + ".tmp", HostRegistry, overwrite: true);
                }
                return checked(FirstTenantUid + (index * UidsPerEngine));
            }
            catch (IOException) when (attempt < 200)
            {
                Thread.Sleep(25); // another engine holds the registry
            }
        }
    }

    /// <summary>Creates the node's home (owned by the node's uid) and its identity files; idempotent.</summary>
    public static void PrepareNode(string instanceId, string nodeRoot, int uid)
    {
        var home = Path.Combine(nodeRoot, "home");
        var etc = Path.Combine(nodeRoot, "etc");
        if (IsPrepared(nodeRoot))
            return;
        Directory.CreateDirectory(nodeRoot);
        Directory.CreateDirectory(home);
        // A home as on any machine (0755): bwrap, no longer privileged when it enters it, must too.
        SetMode(home, ReadableDirectory);
        if (EngineIsRoot)
            Chown(home, uid);
        Directory.CreateDirectory(etc);
        // As root the node's processes keep the tenant's host uid inside; in a user namespace they are 1000.
        var inside = EngineIsRoot ? uid : InsideUid;
        // sshd refuses to start without its privilege-separation user; a login's sshd runs in here.
        File.WriteAllText(Path.Combine(etc, "passwd"),
            $"root:x:0:0:root:/root:/bin/bash\nsshd:x:{SshdUid}:65534::/run/sshd:/usr/sbin/nologin\n" +
            $"{NodeUser}:x:{inside}:{inside}:{NodeUser}:{NodeHome}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        File.WriteAllText(Path.Combine(etc, "group"), $"root:x:0:\n{NodeUser}:x:{inside}:\nnogroup:x:65534:\n");
        File.WriteAllText(Path.Combine(etc, "hostname"), instanceId + "\n");
        foreach (var identity in Directory.EnumerateFiles(etc))
            SetMode(identity, ReadableFile); // read inside the node by its user
        var tmp = Path.Combine(nodeRoot, TmpDirectory);
        Directory.CreateDirectory(tmp);
        SetMode(tmp, StickyWorldWritable);
        File.WriteAllText(Path.Combine(nodeRoot, "uid"), uid.ToString(CultureInfo.InvariantCulture)); // last: it marks the node prepared
    }

    /// <summary>The host's sshd user (Debian makes one), so sshd's unprivileged half runs as no tenant's uid; nobody without it.</summary>
    private static int SshdUid { get; } = File.Exists("/etc/passwd")
        ? File.ReadLines("/etc/passwd").Select(line => line.Split(':')).Where(f => f.Length > 2 && f[0] == "sshd")
            .Select(f => int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid) ? uid : 65534).FirstOrDefault(65534)
        : 65534;

    public static bool IsPrepared(string nodeRoot) => File.Exists(Path.Combine(nodeRoot, "uid"));

    public static int UidOfPreparedNode(string nodeRoot) =>
        int.Parse(File.ReadAllText(Path.Combine(nodeRoot, "uid")).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>
    /// The command line that runs <paramref name="command"/> on the node: as the node's uid, inside
    /// the sandbox, with a minimal environment. Unconfined, the command runs as it is.
    /// </summary>
    public List<string> Wrap(NodeContext node, IReadOnlyList<string> command, IReadOnlyDictionary<string, string> environment)
    {
        if (Unconfined)
            return [.. command];
        return [Program!, .. SandboxArguments(node, command, environment)];
    }

    /// <summary>
    /// bwrap's arguments for <paramref name="command"/> on the node. As root, bwrap makes the mounts
    /// with root's rights (the data directory is 0700) and then drops to the tenant's uid inside with
    /// setpriv, keeping only the two capabilities that needs until then; as any other user, bwrap
    /// makes a user namespace and the processes are uid 1000 inside it.
    /// </summary>
    public static List<string> SandboxArguments(NodeContext node, IReadOnlyList<string> command, IReadOnlyDictionary<string, string> environment) =>
        [.. SandboxOptions(node, environment), "--", .. CommandInside(node, command)];

    /// <summary>bwrap's options (everything before its <c>--</c>) for a job or a short command on the node.</summary>
    public static List<string> SandboxOptions(NodeContext node, IReadOnlyDictionary<string, string> environment) =>
    [
        .. IsolationOptions(node, dieWithParent: true, capabilitiesAsRoot: ["CAP_SETUID", "CAP_SETGID"]),
        .. FileSystemOptions(node),
        .. EnvironmentOptions(environment, NodeHome),
    ];

    /// <summary>
    /// The namespaces, capabilities and hostname of a sandbox. As root the process keeps only
    /// <paramref name="capabilitiesAsRoot"/> (what it needs to drop to the tenant's uid itself); as
    /// any other user it is uid 1000 of a user namespace and keeps none. Without
    /// <paramref name="dieWithParent"/> the sandbox outlives the process that started it.
    /// </summary>
    public static List<string> IsolationOptions(NodeContext node, bool dieWithParent, IReadOnlyList<string> capabilitiesAsRoot)
    {
        var args = new List<string> { "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try" };
        if (dieWithParent)
            args.Add("--die-with-parent");
        args.AddRange(["--cap-drop", "ALL"]);
        if (EngineIsRoot)
            foreach (var capability in capabilitiesAsRoot)
                args.AddRange(["--cap-add", capability]);
        else
            args.AddRange(["--unshare-user", "--uid", InsideUid.ToString(CultureInfo.InvariantCulture), "--gid", InsideUid.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange(["--hostname", node.InstanceId]);
        return args;
    }

    /// <summary>The node's file system: the host's system directories read-only, the node's identity, home and volumes.</summary>
    public static List<string> FileSystemOptions(NodeContext node)
    {
        var args = new List<string>();
        // A parent that bwrap makes for a mount point is root-only (0700) when bwrap runs as root, so
        // every directory above a mount is made explicitly (--dir makes it 0755).
        foreach (var top in new[] { "bin", "sbin", "lib", "lib32", "lib64", "libx32" })
        {
            var host = "/" + top;
            var target = new FileInfo(host).LinkTarget;
            if (target is not null)
                args.AddRange(["--symlink", target, host]);
            else if (Directory.Exists(host))
                args.AddRange(["--ro-bind", host, host]);
        }
        args.AddRange(["--ro-bind", "/usr", "/usr", "--dir", "/etc", "--dir", "/var"]);
        // The node's own /etc/hosts (its cluster's nodes) once it has one, the host's until then.
        var nodeHosts = Path.Combine(node.Root, "etc", "hosts");
        var hasOwnHosts = File.Exists(nodeHosts);
        foreach (var entry in EtcEntries)
        {
            var host = "/etc/" + entry;
            if ((entry != "hosts" || !hasOwnHosts) && (File.Exists(host) || Directory.Exists(host)))
                args.AddRange(["--ro-bind", host, host]);
        }
        foreach (var identity in hasOwnHosts ? new[] { "passwd", "group", "hostname", "hosts" } : ["passwd", "group", "hostname"])
            args.AddRange(["--ro-bind", Path.Combine(node.Root, "etc", identity), "/etc/" + identity]);
        var etcSsh = Path.Combine(node.Root, EtcSshDirectory);
        if (Directory.Exists(etcSsh))
            args.AddRange(["--ro-bind", etcSsh, "/etc/ssh"]);
        args.AddRange(["--proc", "/proc", "--dev", "/dev"]);
        // A tmpfs bwrap makes as root is root's and 0755: the tenant's uid could not write /tmp. A
        // node prepared before /tmp was kept on disk gets a tmpfs of its own per sandbox, as it had.
        var tmp = Path.Combine(node.Root, TmpDirectory);
        if (Directory.Exists(tmp))
            args.AddRange(["--bind", tmp, "/tmp"]);
        else
            args.AddRange(["--perms", "1777", "--tmpfs", "/tmp"]);
        args.AddRange(["--perms", "1777", "--tmpfs", "/var/tmp", "--tmpfs", "/run", "--dir", "/home", "--bind", Path.Combine(node.Root, "home"), NodeHome]);
        args.AddRange(GpuProbeOptions(node));
        if (node.Scripts is not null)
            args.AddRange(["--dir", "/opt", "--ro-bind", node.Scripts, ScriptsMount]);
        if (node.Volumes.Count > 0)
            args.AddRange(["--dir", "/mnt"]);
        foreach (var volume in node.Volumes)
            args.AddRange(["--bind", volume.HostPath, volume.MountPath]);
        return args;
    }

    /// <summary>
    /// The node's <c>nvidia-smi</c> (<see cref="NodeFiles"/>) at <c>/usr/local/bin/nvidia-smi</c>, on
    /// the PATH of jobs and logins alike (login shells reset it to Debian's, which starts there).
    /// bwrap cannot make a mount point inside the read-only <c>/usr</c> and 0.8 has no overlay, so
    /// that directory becomes a tmpfs holding the host's entries again, bound one by one, and the stand-in.
    /// </summary>
    private static List<string> GpuProbeOptions(NodeContext node)
    {
        const string directory = "/usr/local/bin";
        var probe = Path.Combine(node.Root, NodeFiles.GpuProbeFile);
        if (!File.Exists(probe) || !Directory.Exists(directory))
            return [];
        var hostEntries = new DirectoryInfo(directory).GetFileSystemInfos();
        if (hostEntries.Length > MaxRebuiltEntries)
            return []; // a host that keeps that much there keeps its tools and goes without the stand-in
        var args = new List<string> { "--tmpfs", directory };
        foreach (var entry in hostEntries)
        {
            if (entry.Name == NodeFiles.GpuProbeFile)
                continue;
            var inside = directory + "/" + entry.Name;
            if (entry.LinkTarget is { } target)
                args.AddRange(["--symlink", target, inside]);
            else
                args.AddRange(["--ro-bind", entry.FullName, inside]);
        }
        args.AddRange(["--ro-bind", probe, directory + "/" + NodeFiles.GpuProbeFile, "--remount-ro", directory]);
        return args;
    }

    private const int MaxRebuiltEntries = 256;

    /// <summary>Exactly <paramref name="environment"/> (nothing of the engine's) and the directory the command starts in.</summary>
    public static List<string> EnvironmentOptions(IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        var args = new List<string> { "--clearenv" };
        foreach (var (name, value) in environment)
            args.AddRange(["--setenv", name, value]);
        args.AddRange(["--chdir", workingDirectory]);
        return args;
    }

    /// <summary>The command as bwrap runs it: as root, first dropping to the node's uid.</summary>
    public static List<string> CommandInside(NodeContext node, IReadOnlyList<string> command) => EngineIsRoot
        ? ["setpriv", $"--reuid={node.Uid}", $"--regid={node.Uid}", "--clear-groups", "--inh-caps=-all", "--no-new-privs", "--", .. command]
        : [.. command];

    /// <summary>The node's environment: what a login on a GPU node has, and nothing of the engine's.</summary>
    public Dictionary<string, string> NodeEnvironment(NodeContext node, string workDirectory)
    {
        var home = Unconfined ? Path.Combine(node.Root, "home") : NodeHome;
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = SearchPath,
            ["HOME"] = home,
            ["USER"] = NodeUser,
            ["LOGNAME"] = NodeUser,
            ["SHELL"] = Shell,
            ["LANG"] = "C.UTF-8",
            ["PWD"] = workDirectory,
            ["HOSTNAME"] = node.InstanceId,
            ["PYTHONUNBUFFERED"] = "1",
        };
    }

    /// <summary>The path a node-side program uses for <paramref name="relativeToHome"/>.</summary>
    public string PathOnNode(NodeContext node, string relativeToHome) =>
        Unconfined ? Path.Combine(node.Root, "home", relativeToHome) : NodeHome + "/" + relativeToHome;

    /// <summary>Runs a short command on the node and returns its exit code and the start of its error output.</summary>
    public async Task<(int ExitCode, string Errors)> RunAsync(NodeContext node, IReadOnlyList<string> command, Func<Stream, Task>? feedInput,
        CancellationToken ct)
    {
        var start = StartInfo(Wrap(node, command, NodeEnvironment(node, NodeHome)), Unconfined ? Path.Combine(node.Root, "home") : "/");
        start.RedirectStandardInput = true;
        start.StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false); // no byte-order mark before a binary feed
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a node process");
        var errors = ReadBoundedAsync(process.StandardError.BaseStream, 4096);
        var output = process.StandardOutput.BaseStream.CopyToAsync(Stream.Null, CancellationToken.None);
        try
        {
            if (feedInput is not null)
                await feedInput(process.StandardInput.BaseStream);
            process.StandardInput.Close();
            await process.WaitForExitAsync(ct);
        }
        catch
        {
            // Whatever stopped the feed (a limit, a cancel, a broken pipe), the node process must not linger.
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            throw;
        }
        await output;
        return (process.ExitCode, await errors);
    }

    /// <summary>A process start with none of the engine's environment.</summary>
    public static ProcessStartInfo StartInfo(IReadOnlyList<string> args, string workingDirectory)
    {
        var start = new ProcessStartInfo(args[0]) { UseShellExecute = false, WorkingDirectory = workingDirectory };
        foreach (var arg in args.Skip(1))
            start.ArgumentList.Add(arg);
        start.Environment.Clear();
        start.Environment["PATH"] = SearchPath;
        start.Environment["LANG"] = "C.UTF-8";
        return start;
    }

    private static async Task<string> ReadBoundedAsync(Stream stream, int limit)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await stream.ReadAsync(chunk)) > 0)
            if (buffer.Length < limit)
                buffer.Write(chunk, 0, (int)Math.Min(read, limit - buffer.Length));
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Makes a throwaway sandbox once, as a job's would be made; null when that works.</summary>
    private string? Probe()
    {
        if (Program is null)
            return "bubblewrap is not installed (apt-get install bubblewrap)";
        var probeRoot = Path.Combine(_root, "probe");
        try
        {
            var uid = EngineIsRoot ? FirstTenantUid - 1 : GetEffectiveUid();
            PrepareNode("probe", probeRoot, uid);
            var node = new NodeContext("probe", probeRoot, uid, null, []);
            var expectedUid = (EngineIsRoot ? uid : InsideUid).ToString(CultureInfo.InvariantCulture);
            var check = $"test \"$(id -u)\" = {expectedUid} && test ! -e {Quote(_root)}";
            var start = StartInfo([Program, .. SandboxArguments(node, ["/bin/sh", "-c", check], new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" })], "/");
            start.RedirectStandardError = true;
            start.RedirectStandardOutput = true;
            using var process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(15_000))
            {
                process.Kill(entireProcessTree: true);
                return "bubblewrap did not start a sandbox within 15 s";
            }
            var firstError = errors.Result.Split('\n', 2)[0].Trim();
            return process.ExitCode == 0 ? null : $"bubblewrap could not make a sandbox here ({(firstError.Length > 0 ? firstError : $"exit code {process.ExitCode}")})";
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            return $"bubblewrap could not be started ({ex.Message})";
        }
    }

    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, mode);
    }

    /// <summary>
    /// Marks every descriptor the engine inherited (a service manager's pipe, a log file) close-on-exec,
    /// so no node process gets one; the engine's own are opened that way already.
    /// </summary>
    public static void CloseInheritedDescriptorsOnExec()
    {
        const int getFlags = 1, setFlags = 2, closeOnExec = 1;
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var fd) || fd <= 2)
                continue;
            var flags = NativeMethods.Fcntl(fd, getFlags, 0);
            if (flags >= 0 && (flags & closeOnExec) == 0)
                _ = NativeMethods.Fcntl(fd, setFlags, flags | closeOnExec);
        }
    }

    private static string? FindProgram(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
            return File.Exists(name) ? Path.GetFullPath(name) : null;
        return (System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
    }

    public static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static void Chown(string path, int uid)
    {
        if (NativeMethods.Chown(path, uid, uid) != 0)
            throw new IOException($"chown of a node directory failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
    }

    private static int GetEffectiveUid() => (int)NativeMethods.GetEuid();
}

/// <summary>One node as a sandbox sees it: where its files live on the host and which uid runs there.</summary>
/// <param name="Scripts">An engine-owned directory shown read-only at <see cref="NodeSandbox.ScriptsMount"/>, or null.</param>
internal sealed record NodeContext(string InstanceId, string Root, int Uid, string? Scripts, IReadOnlyList<SandboxVolume> Volumes);

internal sealed record SandboxVolume(string HostPath, string MountPath);

/// <param name="Unified">cgroup v2 (memory.max) rather than v1's memory hierarchy (memory.limit_in_bytes).</param>
internal sealed record MemoryCgroupRoot(string Path, bool Unified);

internal static class NativeMethods
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static extern int Fcntl(int fd, int command, int argument);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    public static extern uint GetEuid();

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    public static extern int Chown([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int uid, int gid);
}
