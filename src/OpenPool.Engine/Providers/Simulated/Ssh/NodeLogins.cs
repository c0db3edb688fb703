using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.Win32.SafeHandles;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Jobs;
using static OpenPool.Engine.Providers.Simulated.NodeFiles;

namespace OpenPool.Engine.Providers.Simulated.Ssh;

/// <summary>
/// SSH logins into simulated nodes (decision 0003). A running node has one listening socket on the
/// engine's host and nothing else; each accepted connection becomes OpenSSH's <c>sshd -i</c> started
/// inside the node's bubblewrap sandbox, with the socket as its stdin and stdout, in a session of its
/// own and without <c>--die-with-parent</c>, so logins outlive an engine restart. The node's
/// <c>/etc/ssh</c> is the engine's: the ed25519 host key, the sshd configuration and the cluster's keys
/// as the only authorized keys. Nothing of it is written when the node comes up (a claim writes no
/// file): the host key is derived from the engine's secret and the instance id, so its fingerprint is
/// known at once, and the node's files are made at its first login, by whichever engine process takes it.
/// </summary>
/// <remarks>
/// On the host a node's SSH files are <c>sim/nodes/&lt;instance&gt;/etc-ssh/</c> (shown read-only at
/// <c>/etc/ssh</c>; the host key and configuration are root's 0600 there), <c>ssh-sessions/</c> (the
/// host pid and start time of each login's PID-namespace init, so a destroy, even by a later engine,
/// ends them) and <c>sshd.log</c>; no node process can open the last two.
/// </remarks>
internal sealed class NodeLogins : IDisposable
{
    public const string User = NodeSandbox.NodeUser;
    private const string HostKeyFile = "ssh_host_ed25519_key";
    /// <summary>In the data directory: the 32 random bytes every node's host key is derived from.</summary>
    public const string SecretFile = "ssh-host-keys.secret";
    private const string ConfigInside = "/etc/ssh/sshd_config";
    private const long MaxLogBytes = 1 << 20;
    private const int SigKill = 9;

    // What sshd's root monitor needs in the sandbox (each was dropped in turn in the spike: without any
    // of them exec, a PTY shell or sftp fails). sshd drops to the tenant's uid itself; the session keeps none.
    private static readonly string[] SshdCapabilities =
        ["CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_FOWNER", "CAP_KILL", "CAP_AUDIT_WRITE"];

    private readonly SimulatedSshOptions _options;
    private readonly NodeSandbox _sandbox;
    private readonly NodeFiles _nodeFiles;
    private readonly string _nodesRoot;
    private readonly JobsOptions _jobs;
    private readonly ILogger<NodeLogins> _log;
    private readonly Lazy<string?> _problem;
    private readonly Lazy<byte[]> _secret;
    private readonly string? _keygen;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, NodeListener> _listeners = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _portHolders = [];
    private readonly ConcurrentDictionary<int, Session> _sessions = new();
    // Nodes closed lately (instance id → when): a provision that raced the release must not listen
    // again for a node whose logins were just ended. Kept for minutes, not forever.
    private readonly ConcurrentDictionary<string, long> _closed = new(StringComparer.Ordinal);
    private readonly Timer _reaper;

    public NodeLogins(IOptions<SimulatedSshOptions> options, NodeSandbox sandbox, NodeFiles nodeFiles, IOptions<JobsOptions> jobs, EngineOptions engine,
        ILogger<NodeLogins> log)
    {
        _nodeFiles = nodeFiles;
        _nodesRoot = Path.Combine(engine.DataDir, "sim", "nodes");
        _secret = new Lazy<byte[]>(() => LoadOrCreateSecret(Path.Combine(engine.DataDir, SecretFile)));
        _options = options.Value;
        _sandbox = sandbox;
        _jobs = jobs.Value;
        _log = log;
        _keygen = FindOnPath("ssh-keygen");
        _problem = new Lazy<string?>(FindProblem);
        // Logins are our children: each is collected when it ends so none stays a zombie.
        _reaper = new Timer(_ => ReapEnded(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>Null when nodes take logins; otherwise why not, in one line that says what to install or change.</summary>
    public string? Problem => _problem.Value;

    /// <summary>The host name or address clients are told to connect to.</summary>
    public string Host => _options.SshHost;

    /// <summary>The configured port range (valid whenever <see cref="Problem"/> is null).</summary>
    public (int First, int Last) Ports => _options.PortRange(out _) ?? (0, -1);

    /// <summary>Logins open now (sessions this engine started and has not yet seen end).</summary>
    public int OpenSessions => _sessions.Count;

    private string? FindProblem()
    {
        if (_options.PortRange(out var rangeProblem) is null)
            return rangeProblem;
        if (!File.Exists(_options.Sshd))
            return $"SSH into simulated nodes needs OpenSSH's server: apt-get install openssh-server (there is no {_options.Sshd}; Simulated:Sshd names it)";
        var sshd = Path.GetFullPath(_options.Sshd);
        if (!sshd.StartsWith("/usr/", StringComparison.Ordinal) && !sshd.StartsWith("/sbin/", StringComparison.Ordinal) && !sshd.StartsWith("/bin/", StringComparison.Ordinal))
            return $"Simulated:Sshd must be under /usr, the only host directory a node sees ({sshd} is not)";
        if (_keygen is null)
            return "SSH into simulated nodes needs ssh-keygen to make host keys: apt-get install openssh-client";
        if (_sandbox.Mode == SandboxMode.None)
            return "SSH into simulated nodes needs their sandbox, and the operator turned it off (Jobs:Sandbox=None)";
        if (_sandbox.Problem is { } sandboxProblem)
            return $"SSH into simulated nodes needs their sandbox: {sandboxProblem}";
        return null;
    }

    private static string EtcSsh(string nodeRoot) => Path.Combine(nodeRoot, NodeSandbox.EtcSshDirectory);

    private static string SessionsDirectory(string nodeRoot) => Path.Combine(nodeRoot, "ssh-sessions");

    /// <summary>
    /// The engine's secret: 32 random bytes in a 0600 file of the data directory, made on first use.
    /// A replica with a data directory of its own has another and so derives other host keys.
    /// </summary>
    private static byte[] LoadOrCreateSecret(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (File.Exists(path))
            {
                var text = File.ReadAllText(path).Trim();
                if (text.Length == 64)
                    return Convert.FromHexString(text);
                if (attempt > 20)
                    throw new IOException($"{path} is not 64 hex digits");
                Thread.Sleep(10); // another process is writing it
                continue;
            }
            var fresh = RandomNumberGenerator.GetBytes(32);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                create.UnixCreateMode = DataDirectory.OwnerOnlyFile;
            try
            {
                using (var file = new FileStream(path, create))
                {
                    file.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(fresh) + "\n"));
                    file.Flush(flushToDisk: true);
                }
                return fresh;
            }
            catch (IOException) when (File.Exists(path))
            {
                // Made meanwhile by another caller: theirs counts.
            }
        }
    }

    /// <summary>The node's host key, derived from the engine's secret and the instance id; null where libcrypto cannot make it.</summary>
    private (string PrivateKey, string PublicKey)? DerivedHostKey(string instanceId) => DerivedKey(instanceId, instanceId);

    /// <summary>
    /// The cluster's own key pair, which every node of the cluster authorizes and whose private half
    /// its user holds, so <c>ssh node-2</c> needs no key of the tenant's. Derived like the host keys
    /// (instance ids start with <c>i-</c>, so the two never share a seed).
    /// </summary>
    private (string PrivateKey, string PublicKey)? ClusterKey(string clusterId) => DerivedKey("cluster:" + clusterId, "openpool-cluster-" + clusterId);

    private (string PrivateKey, string PublicKey)? DerivedKey(string purpose, string comment)
    {
        var seed = HMACSHA256.HashData(_secret.Value, Encoding.UTF8.GetBytes(purpose));
        try
        {
            return Ed25519HostKey.FromSeed(seed, comment);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>
    /// The fingerprint the node's host key will have (derived, so no file is needed for it), or null
    /// where libcrypto cannot derive keys: then <see cref="PrepareAsync"/> must make the key now.
    /// </summary>
    public string? DerivedFingerprint(string instanceId) =>
        DerivedHostKey(instanceId) is { } pair && SshPublicKey.TryParse(pair.PublicKey, out var parsed, out _) ? parsed!.Fingerprint : null;

    /// <summary>Whether the node has its <c>/etc/ssh</c> (its host key's public half is written last).</summary>
    private static bool HasEtcSsh(string nodeRoot) => File.Exists(Path.Combine(EtcSsh(nodeRoot), HostKeyFile + ".pub"));

    /// <summary>
    /// Writes the node's <c>/etc/ssh</c>: the sshd configuration, <paramref name="authorizedKeys"/>
    /// (OpenSSH lines) as the only keys that log in, and its host key the first time (derived from
    /// the engine's secret; made by ssh-keygen where libcrypto cannot). Idempotent.
    /// </summary>
    /// <returns>The host key's fingerprint, <c>SHA256:…</c> as <c>ssh-keygen -lf</c> prints it.</returns>
    /// <param name="clusterId">The node's cluster, whose own key (<see cref="ClusterKey"/>) is authorized too; null for none.</param>
    public async Task<string> PrepareAsync(string instanceId, string nodeRoot, IReadOnlyList<string> authorizedKeys, string? clusterId, CancellationToken ct)
    {
        var directory = EtcSsh(nodeRoot);
        Directory.CreateDirectory(directory);
        NodeSandbox.SetMode(directory, NodeSandbox.ReadableDirectory);
        WriteAtomically(Path.Combine(directory, "sshd_config"), SshdConfig, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WriteAuthorizedKeys(directory, authorizedKeys, clusterId);
        var key = Path.Combine(directory, HostKeyFile);
        // The public half is written last: a crash midway leaves no .pub, and so the node's files
        // are simply made again (the derived key is the same one).
        if (!File.Exists(key + ".pub") && DerivedHostKey(instanceId) is { } pair)
        {
            WriteAtomically(key, pair.PrivateKey, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            WriteAtomically(key + ".pub", pair.PublicKey, NodeSandbox.ReadableFile);
        }
        else if (!File.Exists(key + ".pub"))
        {
            var scratch = Path.Combine(nodeRoot, "ssh-host-key.new");
            File.Delete(scratch);
            File.Delete(scratch + ".pub");
            await RunKeygenAsync(["-q", "-t", "ed25519", "-N", "", "-C", instanceId, "-f", scratch], ct);
            File.Move(scratch, key, overwrite: true);
            File.Move(scratch + ".pub", key + ".pub", overwrite: true);
            NodeSandbox.SetMode(key + ".pub", NodeSandbox.ReadableFile);
        }
        return HostKeyFingerprint(nodeRoot) ?? throw new IOException($"the host key of {instanceId} is not a public key ssh-keygen made");
    }

    /// <summary>The node's <c>authorized_keys</c>: the cluster's keys and the cluster's own (for its nodes' hops to each other).</summary>
    private void WriteAuthorizedKeys(string etcSsh, IReadOnlyList<string> authorizedKeys, string? clusterId)
    {
        var keys = authorizedKeys.Select(k => k.Trim());
        if (clusterId is not null && ClusterKey(clusterId) is { } clusterKey)
            keys = keys.Append(clusterKey.PublicKey.Trim());
        WriteAtomically(Path.Combine(etcSsh, "authorized_keys"), string.Concat(keys.Select(k => k + "\n")), NodeSandbox.ReadableFile);
    }

    /// <summary>
    /// Makes <paramref name="keys"/> the node's keys: those its first login writes (when it has had
    /// none) and, once it has its <c>/etc/ssh</c>, those sshd reads at the next connection. Logins
    /// open already stay open, as on any server whose authorized_keys changes.
    /// </summary>
    public async Task ReplaceKeysAsync(string instanceId, string nodeRoot, IReadOnlyList<string> keys, string clusterId, CancellationToken ct)
    {
        NodeListener? listener;
        lock (_gate)
            _listeners.TryGetValue(instanceId, out listener);
        // Under the listener's preparation lock: a first login making the files meanwhile writes the new keys or is overwritten by them.
        if (listener is not null)
            await listener.Preparing.WaitAsync(ct);
        try
        {
            if (listener?.Setup is { } setup)
                listener.Setup = setup with { AuthorizedKeys = keys };
            if (HasEtcSsh(nodeRoot))
                WriteAuthorizedKeys(EtcSsh(nodeRoot), keys, clusterId);
        }
        finally
        {
            listener?.Preparing.Release();
        }
    }

    /// <summary>The node's host key fingerprint, or null before <see cref="PrepareAsync"/> made it.</summary>
    public static string? HostKeyFingerprint(string nodeRoot)
    {
        var publicKey = Path.Combine(EtcSsh(nodeRoot), HostKeyFile + ".pub");
        return File.Exists(publicKey) && SshPublicKey.TryParse(File.ReadAllText(publicKey), out var parsed, out _) ? parsed!.Fingerprint : null;
    }

    /// <summary>
    /// Writes what the node shows of its cluster as its provider knows it now (<see cref="NodeFiles.Write"/>:
    /// <c>/etc/hosts</c>, <c>nvidia-smi</c>) and, where nodes take logins, the SSH client's side of
    /// it in the node's <c>/etc/ssh</c>: an <c>ssh_config</c> that routes <c>node-N</c>, each instance
    /// id and each listed address to that node's port, an <c>ssh_known_hosts</c> with their host keys,
    /// and the cluster's key for the node's user. Cheap when nothing changed. Null for a node the
    /// provider no longer has.
    /// </summary>
    public async Task<NodeView?> WriteClusterFilesAsync(string instanceId, string nodeRoot, int uid, CancellationToken ct)
    {
        if (await _nodeFiles.DescribeAsync(instanceId, ct) is not { } view)
            return null;
        _nodeFiles.Write(view, nodeRoot);
        if (Problem is not null)
            return view;
        var directory = EtcSsh(nodeRoot);
        Directory.CreateDirectory(directory);
        NodeSandbox.SetMode(directory, NodeSandbox.ReadableDirectory);
        var reachable = view.Peers.Where(p => p.SshPort is not null).ToList();
        // From inside a node the engine's host is where the ports are: the sandbox shares its network.
        var address = _options.ListenAddress();
        var hostName = address.Equals(IPAddress.Any) ? "127.0.0.1" : address.Equals(IPAddress.IPv6Any) ? "::1" : address.ToString();
        var config = new StringBuilder("# Written by OpenPool: the nodes of this cluster, each reached on its own port of the engine's host.\n");
        var knownHosts = new StringBuilder();
        foreach (var peer in reachable)
        {
            var names = peer.ListedIp is { } ip ? $"{peer.Name} {peer.InstanceId} {ip}" : $"{peer.Name} {peer.InstanceId}";
            config.Append(CultureInfo.InvariantCulture,
                $"Host {names}\n    HostName {hostName}\n    Port {peer.SshPort}\n    HostKeyAlias {peer.InstanceId}\n    StrictHostKeyChecking yes\n");
            if (PeerHostKey(peer.InstanceId) is { } hostKey)
                knownHosts.Append(CultureInfo.InvariantCulture, $"{peer.InstanceId},{names.Replace(' ', ',')} {hostKey}\n");
        }
        config.Append(
            """
            Host *
                User ubuntu
                IdentityFile /etc/ssh/cluster_ed25519
                IdentityFile ~/.ssh/id_ed25519
                IdentityFile ~/.ssh/id_ecdsa
                IdentityFile ~/.ssh/id_rsa
                HashKnownHosts no

            """);
        WriteIfChanged(Path.Combine(directory, "ssh_config"), config.ToString(), NodeSandbox.ReadableFile);
        WriteIfChanged(Path.Combine(directory, "ssh_known_hosts"), knownHosts.ToString(), NodeSandbox.ReadableFile);
        var clusterKeyFile = Path.Combine(directory, ClusterKeyFile);
        if (!File.Exists(clusterKeyFile) && ClusterKey(view.ClusterId) is { } clusterKey)
        {
            // The node's user's own key (ssh refuses a private key others can read); no other node's user can open it.
            WriteAtomically(clusterKeyFile, clusterKey.PrivateKey, UnixFileMode.UserRead | UnixFileMode.UserWrite,
                NodeSandbox.EngineIsRoot ? uid : null);
        }
        return view;
    }

    private const string ClusterKeyFile = "cluster_ed25519";

    /// <summary>A node's host key line (<c>ssh-ed25519 AAAA…</c>): the one its files hold, or the derived one it will get at its first login.</summary>
    private string? PeerHostKey(string instanceId)
    {
        var written = Path.Combine(EtcSsh(Path.Combine(_nodesRoot, instanceId)), HostKeyFile + ".pub");
        var line = File.Exists(written) ? File.ReadAllText(written) : DerivedHostKey(instanceId)?.PublicKey;
        if (line is null)
            return null;
        var fields = line.Trim().Split(' ', 3);
        return fields.Length >= 2 ? $"{fields[0]} {fields[1]}" : null;
    }

    /// <summary>Whether this engine listens on <paramref name="port"/> for some node.</summary>
    public bool IsListening(int port)
    {
        lock (_gate)
            return _portHolders.ContainsKey(port);
    }

    /// <summary>
    /// Starts taking logins for the node on <paramref name="port"/> (a no-op when it does already).
    /// False when the port cannot be had: another node of this engine or another program holds it,
    /// the node listens on another port, or the node was just closed.
    /// </summary>
    /// <param name="setup">What the node's files are made from at its first login; null for a node that has them already.</param>
    public bool TryListen(string instanceId, string nodeRoot, int port, NodeSetup? setup)
    {
        lock (_gate)
        {
            if (_closed.ContainsKey(instanceId))
                return false;
            if (_listeners.TryGetValue(instanceId, out var existing))
                return existing.Port == port;
            if (_portHolders.ContainsKey(port))
                return false;
            var address = _options.ListenAddress();
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                // SO_REUSEADDR alone (not .NET's ReuseAddress, which may add SO_REUSEPORT and would let
                // a second engine share the port): a port whose last logins are in TIME_WAIT binds again.
                socket.SetRawSocketOption(1, 2, BitConverter.GetBytes(1));
                socket.Bind(new IPEndPoint(address, port));
                socket.Listen(64);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                _log.LogDebug("SSH port {Port} for {Instance} is not free: {Error}", port, instanceId, ex.SocketErrorCode);
                return false;
            }
            var listener = new NodeListener(instanceId, nodeRoot, port, socket, setup);
            _listeners[instanceId] = listener;
            _portHolders[port] = instanceId;
            _ = AcceptAsync(listener);
            return true;
        }
    }

    /// <summary>
    /// Ends SSH to the node: its port closes (new logins are refused) and every login open on it is
    /// killed, those an earlier engine started included; for the next minutes the node is not listened
    /// for again. Idempotent.
    /// </summary>
    public void Close(string instanceId, string nodeRoot)
    {
        NodeListener? listener;
        lock (_gate)
        {
            var now = Environment.TickCount64;
            _closed[instanceId] = now;
            if (_closed.Count > 1024)
                foreach (var (closed, at) in _closed)
                    if (now - at > 600_000)
                        _closed.TryRemove(closed, out _);
            if (_listeners.Remove(instanceId, out listener))
                _portHolders.Remove(listener.Port);
        }
        if (listener is not null)
        {
            lock (listener)
                listener.Closed = true;
            listener.Socket.Dispose();
        }
        var sessions = SessionsDirectory(nodeRoot);
        if (!Directory.Exists(sessions))
            return;
        foreach (var record in Directory.EnumerateFiles(sessions))
        {
            var fields = File.ReadAllText(record).Split(' ', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 2 && int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var init))
                KillIfSame(init, fields[1]);
            File.Delete(record);
        }
    }

    /// <summary>Closes the node's port without ending its logins or marking it closed (a port given up for another).</summary>
    public void StopListening(string instanceId)
    {
        NodeListener? listener;
        lock (_gate)
        {
            if (_listeners.Remove(instanceId, out listener))
                _portHolders.Remove(listener.Port);
        }
        if (listener is null)
            return;
        lock (listener)
            listener.Closed = true;
        listener.Socket.Dispose();
    }

    /// <summary>
    /// SIGKILL to a login's PID-namespace init, which takes every process of the login with it
    /// (nohup'd and daemonized ones too), only while the pid is still that process: a pid reused
    /// since has another start time.
    /// </summary>
    private static void KillIfSame(int pid, string startTime)
    {
        if (StartTimeOf(pid) == startTime)
            _ = PosixSpawn.Signal(pid, SigKill);
    }

    /// <summary>Field 22 of /proc/PID/stat (clock ticks after boot), or null when there is no such process.</summary>
    private static string? StartTimeOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 ? fields[19] : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private async Task AcceptAsync(NodeListener listener)
    {
        while (true)
        {
            Socket connection;
            try
            {
                connection = await listener.Socket.AcceptAsync();
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException && listener.Closed)
            {
                return;
            }
            catch (SocketException ex)
            {
                // A connection reset before it was taken, or a descriptor limit reached: later ones may do.
                _log.LogWarning("Accepting an SSH login for {Instance} failed: {Error}", listener.InstanceId, ex.SocketErrorCode);
                await Task.Delay(100);
                continue;
            }
            using (connection)
            {
                try
                {
                    if (!await EnsureNodeFilesAsync(listener))
                        continue;
                    var uid = NodeSandbox.UidOfPreparedNode(listener.NodeRoot);
                    // Read afresh for each login: a volume attached or a node's port exchanged since shows in the next one.
                    if (await WriteClusterFilesAsync(listener.InstanceId, listener.NodeRoot, uid, CancellationToken.None) is not { } view)
                        continue; // the provider no longer has the node: it is being released
                    var volumes = view.VolumeIds.Select(v => _nodeFiles.VolumeFor(v, Jobs.JobStore.MountPathOf(v), uid)).ToList();
                    Serve(listener, connection, new NodeContext(listener.InstanceId, listener.NodeRoot, uid, null, volumes));
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // One connection that could not be served must not stop the node taking the next.
                    _log.LogWarning("An SSH login for {Instance} could not be started: {Error}", listener.InstanceId, ex.Message);
                }
            }
        }
    }

    /// <summary>
    /// Makes the node's files (its home and identity, its <c>/etc/ssh</c>) at its first login, unless
    /// a job or an earlier login (of this engine process or an earlier one) made them. One at a time
    /// per node; a crash midway leaves files that are made again whole.
    /// </summary>
    /// <returns>False when the node has no files and nothing to make them from (the connection is dropped).</returns>
    private async Task<bool> EnsureNodeFilesAsync(NodeListener listener)
    {
        if (listener.HasFiles)
            return true;
        await listener.Preparing.WaitAsync();
        try
        {
            if (listener.HasFiles || listener.Closed)
                return listener.HasFiles;
            var root = listener.NodeRoot;
            if (!NodeSandbox.IsPrepared(root) || !HasEtcSsh(root))
            {
                if (listener.Setup is not { } setup)
                {
                    _log.LogWarning("{Instance} has no SSH files and nothing to make them from; the login was refused", listener.InstanceId);
                    return false;
                }
                NodeSandbox.PrepareNode(listener.InstanceId, root, _sandbox.UidOf(setup.Tenant));
                await PrepareAsync(listener.InstanceId, root, setup.AuthorizedKeys, setup.ClusterId, CancellationToken.None);
            }
            listener.HasFiles = true;
            return true;
        }
        finally
        {
            listener.Preparing.Release();
        }
    }

    /// <summary>Starts sshd for one connection; the caller closes its own copy of the socket afterwards.</summary>
    private void Serve(NodeListener listener, Socket connection, NodeContext node)
    {
        lock (listener)
        {
            if (listener.Closed)
                return;
            if (listener.Sessions >= _options.SshMaxSessionsPerNode)
            {
                _log.LogWarning("{Instance} has {Count} SSH logins open; a new connection was closed", listener.InstanceId, listener.Sessions);
                return;
            }
        }
        var options = SandboxOptions(node);
        var argsText = Encoding.UTF8.GetBytes(string.Concat(options.Select(a => a + "\0")));
        // bwrap reads its options from a descriptor, so the PID-namespace init (whose command line
        // every process of the login can read) names no host path; they must fit in the pipe at once.
        if (argsText.Length > 60_000)
            throw new IOException("the login sandbox's options are too long for a pipe");
        var (argsRead, argsWrite) = PosixSpawn.Pipe();
        var (infoRead, infoWrite) = PosixSpawn.Pipe();
        var infoHandedOver = false;
        try
        {
            using (var pipe = new FileStream(new SafeFileHandle(argsWrite, ownsHandle: true), FileAccess.Write, 1))
                pipe.Write(argsText);
            using var log = OpenLog(listener.NodeRoot);
            connection.Blocking = true; // the file status is shared with sshd's copies, which expect a blocking socket
            var socket = (int)connection.SafeHandle.DangerousGetHandle();
            var environment = new Dictionary<string, string> { ["PATH"] = NodeSandbox.SearchPath, ["LANG"] = "C.UTF-8" };
            int pid;
            lock (listener)
            {
                if (listener.Closed)
                    return;
                pid = PosixSpawn.Start(Command(node), environment, [socket, socket, (int)log.DangerousGetHandle(), infoWrite, argsRead]);
                listener.Sessions++;
            }
            var session = new Session(listener, pid);
            _sessions[pid] = session;
            PosixSpawn.CloseDescriptor(infoWrite);
            infoWrite = -1;
            infoHandedOver = true;
            _ = Task.Run(() => RecordInit(session, infoRead));
        }
        finally
        {
            PosixSpawn.CloseDescriptor(argsRead);
            if (infoWrite >= 0)
                PosixSpawn.CloseDescriptor(infoWrite);
            if (!infoHandedOver)
                PosixSpawn.CloseDescriptor(infoRead);
        }
    }

    /// <summary>
    /// Reads bwrap's <c>{"child-pid": N}</c> (the login's PID-namespace init, as the host numbers it)
    /// and records it with its start time beside the node, so a destroy can end the login even after
    /// an engine restart. A login whose node closed meanwhile is ended at once.
    /// </summary>
    private void RecordInit(Session session, int infoRead)
    {
        try
        {
            string text;
            using (var info = new FileStream(new SafeFileHandle(infoRead, ownsHandle: true), FileAccess.Read, 1))
            using (var reader = new StreamReader(info))
                text = reader.ReadToEnd();
            if (text.Length == 0)
                return; // bwrap failed before it made the sandbox; its error is in sshd.log
            using var document = JsonDocument.Parse(text);
            var init = document.RootElement.GetProperty("child-pid").GetInt32();
            if (StartTimeOf(init) is not { } start)
                return; // gone already
            var listener = session.Listener;
            lock (listener)
            {
                if (listener.Closed)
                {
                    KillIfSame(init, start);
                    return;
                }
                var directory = SessionsDirectory(listener.NodeRoot);
                Directory.CreateDirectory(directory);
                session.RecordFile = Path.Combine(directory, init.ToString(CultureInfo.InvariantCulture));
                File.WriteAllText(session.RecordFile, $"{init.ToString(CultureInfo.InvariantCulture)} {start}\n");
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or KeyNotFoundException or InvalidOperationException or UnauthorizedAccessException or FormatException)
        {
            _log.LogWarning("The SSH login {Pid} on {Instance} could not be recorded: {Error}", session.Pid, session.Listener.InstanceId, ex.Message);
        }
    }

    private void ReapEnded()
    {
        foreach (var (pid, session) in _sessions)
        {
            if (!PosixSpawn.TryReap(pid))
                continue;
            _sessions.TryRemove(pid, out _);
            lock (session.Listener)
            {
                session.Listener.Sessions--;
                try
                {
                    // The spawned bwrap ends with the login's sshd, but the login's PID namespace
                    // lives on while anything in it runs (nohup, setsid, a daemon): its record must
                    // stay until then, or a destroy would not know to end it.
                    if (session.RecordFile is { } record && !InitStillRuns(record))
                        File.Delete(record);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // A stale record is harmless: its start time no longer matches any process.
                }
            }
        }
    }

    /// <summary>Whether the PID-namespace init a session record names is the same process still (pid and start time).</summary>
    private static bool InitStillRuns(string record)
    {
        var fields = File.ReadAllText(record).Split(' ', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return fields.Length == 2 && int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var init)
            && StartTimeOf(init) == fields[1];
    }

    /// <summary>bwrap's options for a login: the node's sandbox as its jobs have it, plus what sshd needs.</summary>
    private static List<string> SandboxOptions(NodeContext node) =>
    [
        // No --die-with-parent: a login outlives the engine (a restart must not cut it).
        .. NodeSandbox.IsolationOptions(node, dieWithParent: false, SshdCapabilities),
        .. NodeSandbox.FileSystemOptions(node), // with the node's /etc/ssh
        // The privilege-separation directory: empty, root's, 0755, as sshd insists.
        "--dir", "/run/sshd",
        .. NodeSandbox.EnvironmentOptions(new Dictionary<string, string> { ["PATH"] = NodeSandbox.SearchPath, ["LANG"] = "C.UTF-8" }, "/"),
        "--info-fd", "3",
    ];

    /// <summary>bwrap running sshd; first joining the node's memory cgroup where there is one, so logins share the node's memory with its jobs.</summary>
    private List<string> Command(NodeContext node)
    {
        List<string> sshd = [_sandbox.Program!, "--args", "4", "--", Path.GetFullPath(_options.Sshd), "-i", "-e", "-f", ConfigInside];
        var join = _sandbox.JoinMemoryCgroup(node.InstanceId, _jobs.MaxNodeMemoryBytes);
        // sh, not bash: bash run with a socket as its stdin reads ~/.bashrc (of the engine's user) first.
        return join.Length == 0 ? sshd : ["/bin/sh", "-c", join + "exec \"$@\"", "openpool-login", .. sshd];
    }

    /// <summary>sshd's error output for the node, kept to about a megabyte (one older file beside it).</summary>
    private static SafeFileHandle OpenLog(string nodeRoot)
    {
        var path = Path.Combine(nodeRoot, "sshd.log");
        var existing = new FileInfo(path);
        if (existing.Exists && existing.Length > MaxLogBytes)
            File.Move(path, path + ".1", overwrite: true);
        return File.OpenHandle(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
    }

    private async Task RunKeygenAsync(IReadOnlyList<string> args, CancellationToken ct)
    {
        var start = NodeSandbox.StartInfo([_keygen!, .. args], "/");
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardInput = true;
        using var process = Process.Start(start) ?? throw new IOException("ssh-keygen could not be started");
        process.StandardInput.Close();
        var errors = process.StandardError.ReadToEndAsync(ct);
        await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
            throw new IOException($"ssh-keygen failed: {(await errors).Trim()}");
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);

    public void Dispose()
    {
        _reaper.Dispose();
        lock (_gate)
        {
            foreach (var listener in _listeners.Values)
            {
                lock (listener)
                    listener.Closed = true;
                listener.Socket.Dispose();
            }
            _listeners.Clear();
            _portHolders.Clear();
        }
    }

    /// <summary>
    /// Paths as the sandbox sees them. Only the engine's list of keys counts and the tenant can change
    /// nothing sshd's root monitor reads; why each line is there is in decision 0003.
    /// </summary>
    private const string SshdConfig =
        """
        # Written by OpenPool for a simulated node; read by sshd -i inside the node's sandbox.
        HostKey /etc/ssh/ssh_host_ed25519_key
        AuthorizedKeysFile /etc/ssh/authorized_keys
        AllowUsers ubuntu
        PermitRootLogin no
        AuthenticationMethods publickey
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        HostbasedAuthentication no
        GSSAPIAuthentication no
        UsePAM no
        StrictModes yes
        PermitUserEnvironment no
        PermitUserRC no
        X11Forwarding no
        PermitTunnel no
        AllowTcpForwarding local
        AllowStreamLocalForwarding no
        GatewayPorts no
        AllowAgentForwarding yes
        PermitTTY yes
        PrintMotd no
        PrintLastLog no
        UseDNS no
        Compression no
        LoginGraceTime 30
        MaxAuthTries 6
        ClientAliveInterval 15
        ClientAliveCountMax 4
        PidFile none
        LogLevel INFO
        Subsystem sftp internal-sftp

        """;

    private sealed class NodeListener(string instanceId, string nodeRoot, int port, Socket socket, NodeSetup? setup)
    {
        public NodeSetup? Setup { get; set; } = setup;
        /// <summary>Held while the node's files are checked or made.</summary>
        public SemaphoreSlim Preparing { get; } = new(1, 1);
        /// <summary>Set once the node's files are known to be there.</summary>
        public bool HasFiles { get; set; }
        public string InstanceId { get; } = instanceId;
        public string NodeRoot { get; } = nodeRoot;
        public int Port { get; } = port;
        public Socket Socket { get; } = socket;
        /// <summary>Set once under the listener's lock: no login starts or stays recorded after it.</summary>
        public bool Closed { get; set; }
        public int Sessions { get; set; }
    }

    private sealed class Session(NodeListener listener, int pid)
    {
        public NodeListener Listener { get; } = listener;
        /// <summary>The spawned bwrap (this engine's child), reaped when the login ends.</summary>
        public int Pid { get; } = pid;
        public string? RecordFile { get; set; }
    }
}

/// <summary>What a node's files are made from at its first login: the tenant (whose uid the node's user has) and the cluster's keys.</summary>
/// <param name="ClusterId">The node's cluster (its nodes log in to each other with the cluster's key); null for a node from before it was kept.</param>
internal sealed record NodeSetup(string Tenant, IReadOnlyList<string> AuthorizedKeys, string? ClusterId);
