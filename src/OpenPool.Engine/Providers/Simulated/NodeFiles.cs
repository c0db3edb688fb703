using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// What a simulated node shows of its cluster and its machine, for its jobs and its logins alike:
/// an <c>/etc/hosts</c> naming every node of the cluster (<c>node-1</c>, <c>node-2</c>, … and the
/// instance ids, at their listed addresses), an <c>nvidia-smi</c> that reports the instance type's
/// GPUs, and the cluster's volumes. Read from the provider's own tables (<c>sim_nodes</c>,
/// <c>sim_attachments</c>), never the engine's, so a real provider answers the same from its machines.
/// </summary>
internal sealed class NodeFiles(Database db, InstanceCatalog catalog, EngineOptions engine)
{
    /// <summary>The stand-in's file beside the node's other files; <see cref="NodeSandbox"/> shows it at <c>/usr/local/bin/nvidia-smi</c>.</summary>
    public const string GpuProbeFile = "nvidia-smi";

    /// <summary>Where a volume's files live on the engine's host (every node it is attached to binds it).</summary>
    public string VolumeRoot(string volumeId) => Path.Combine(engine.DataDir, "sim", "volumes", volumeId);

    /// <summary>The volume as a node binds it; its directory is made (owned by the tenant's uid) the first time any node uses it.</summary>
    public SandboxVolume VolumeFor(string volumeId, string mountPath, int uid)
    {
        var root = VolumeRoot(volumeId);
        if (!Directory.Exists(root))
        {
            Directory.CreateDirectory(root);
            if (NodeSandbox.EngineIsRoot)
                _ = NativeMethods.Chown(root, uid, uid);
        }
        return new SandboxVolume(root, mountPath);
    }

    /// <summary>The node's cluster as the provider knows it now, or null for a node it does not have (released, or never provisioned here).</summary>
    public Task<NodeView?> DescribeAsync(string instanceId, CancellationToken ct) =>
        db.ReadAsync<NodeView?>(async c =>
        {
            var nodes = (await c.QueryAsync<(string InstanceId, string ClusterId, string InstanceType, string? IpAddress, long? SshPort, long? NodeIndex)>(
                """
                SELECT n.instance_id, n.cluster_id, n.instance_type, n.ip_address, n.ssh_port, n.node_index
                FROM sim_nodes me JOIN sim_nodes n ON n.cluster_id = me.cluster_id
                WHERE me.instance_id = @instanceId AND n.state IN ('provisioning', 'running')
                """, new { instanceId })).AsList();
            var me = nodes.FirstOrDefault(n => n.InstanceId == instanceId);
            if (me.InstanceId is null)
                return null;
            var volumes = (await c.QueryAsync<string>(
                "SELECT volume_id FROM sim_attachments WHERE cluster_id = @ClusterId ORDER BY volume_id", new { me.ClusterId })).AsList();
            // Nodes from before node_index was kept sort by instance id, after the numbered ones.
            var peers = nodes.OrderBy(n => n.NodeIndex ?? long.MaxValue).ThenBy(n => n.InstanceId, StringComparer.Ordinal)
                .Select((n, i) => new ClusterPeer(n.InstanceId, $"node-{i + 1}", n.IpAddress, n.SshPort is { } port ? (int)port : null))
                .ToList();
            return new NodeView(instanceId, me.ClusterId, me.InstanceType, peers, volumes);
        }, ct);

    /// <summary>
    /// Writes the node's <c>/etc/hosts</c> and its <c>nvidia-smi</c> where they differ from <paramref name="view"/>
    /// (a node is prepared already). Cheap when nothing changed: two small reads.
    /// </summary>
    public void Write(NodeView view, string nodeRoot)
    {
        WriteIfChanged(Path.Combine(nodeRoot, "etc", "hosts"), HostsText(view), NodeSandbox.ReadableFile);
        WriteIfChanged(Path.Combine(nodeRoot, GpuProbeFile), GpuProbeScript(view.InstanceId, catalog.Find(view.InstanceType)),
            NodeSandbox.ReadableDirectory);
    }

    /// <summary>Each node of the cluster under its listed address, as on a TensorPool cluster; only SSH is routed to them (see <c>ssh_config</c>).</summary>
    private static string HostsText(NodeView view)
    {
        var text = new StringBuilder("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        foreach (var peer in view.Peers)
            if (peer.ListedIp is { } ip)
                text.Append(CultureInfo.InvariantCulture, $"{ip}\t{peer.Name} {peer.InstanceId}\n");
        return text.ToString();
    }

    /// <summary>Writes <paramref name="content"/> unless the file holds it already (atomically: a reader never sees half of it).</summary>
    public static void WriteIfChanged(string path, string content, UnixFileMode mode)
    {
        if (File.Exists(path) && File.ReadAllText(path) == content)
            return;
        WriteAtomically(path, content, mode);
    }

    /// <summary>Replaces the file whole (a scratch file renamed over it), with <paramref name="mode"/> and, when given, owned by <paramref name="ownerUid"/>.</summary>
    public static void WriteAtomically(string path, string content, UnixFileMode mode, int? ownerUid = null)
    {
        var scratch = path + ".new";
        // A scratch file a crash left is truncated, and keeps the mode it was made with.
        var create = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
            create.UnixCreateMode = mode; // never readable by others, not even for a moment
        using (var file = new FileStream(scratch, create))
            file.Write(Encoding.UTF8.GetBytes(content));
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
            NodeSandbox.SetMode(scratch, mode); // the engine's umask takes the bits others need
        if (ownerUid is { } uid && NativeMethods.Chown(scratch, uid, uid) != 0)
            throw new IOException($"chown of {Path.GetFileName(path)} failed");
        File.Move(scratch, path, overwrite: true);
    }

    /// <summary>
    /// A POSIX shell <c>nvidia-smi</c> for the instance type: the summary table, <c>-L</c>, and
    /// <c>--query-gpu=…</c> with <c>--format=csv[,noheader][,nounits]</c>, the forms GPU-probing
    /// scripts use. The GPUs are idle and their UUIDs stable per node.
    /// </summary>
    private static string GpuProbeScript(string instanceId, InstanceType? type)
    {
        var count = type?.GpuCount ?? 0;
        var name = type is null ? "" : $"{type.GpuModel} {type.GpuMemoryGb}GB";
        var memoryMib = (type?.GpuMemoryGb ?? 0) * 1024;
        var computeCapability = type?.GpuModel.Contains("B200", StringComparison.Ordinal) == true ? "10.0" : "9.0";
        var uuids = string.Join(' ', Enumerable.Range(0, count).Select(i => GpuUuid(instanceId, i)));
        return GpuProbeTemplate
            .Replace("@COUNT@", count.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@NAME@", name, StringComparison.Ordinal)
            .Replace("@MEMORY@", memoryMib.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@CC@", computeCapability, StringComparison.Ordinal)
            .Replace("@UUIDS@", uuids, StringComparison.Ordinal)
            .Replace("@TYPE@", type?.Name ?? "an unknown instance type", StringComparison.Ordinal);
    }

    private static string GpuUuid(string instanceId, int index)
    {
        var hex = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{instanceId}/gpu/{index}")));
        return $"GPU-{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..32]}";
    }

    // Values a GPU node reports when idle; the driver is one that supports all of H100, H200 and B200.
    private const string GpuProbeTemplate =
        """
        #!/bin/sh
        # nvidia-smi of a simulated OpenPool node (@TYPE@): it reports the node's GPUs, which are idle;
        # nothing here computes on them.
        count=@COUNT@
        name='@NAME@'
        memory=@MEMORY@
        cc=@CC@
        driver=570.124.06
        cuda=12.8
        uuids='@UUIDS@'

        uuid_of() { i=0; for u in $uuids; do [ "$i" = "$1" ] && { echo "$u"; return; }; i=$((i + 1)); done; }
        bus_of() { printf '00000000:%02X:00.0' $((24 + 16 * $1)); }

        if [ "$count" -eq 0 ]; then
            echo "No devices were found"
            exit 6
        fi

        usage() {
            echo "NVIDIA System Management Interface (simulated by OpenPool)"
            echo
            echo "    nvidia-smi                      the summary table"
            echo "    nvidia-smi -L | --list-gpus     one line per GPU"
            echo "    nvidia-smi --query-gpu=FIELD[,FIELD...] --format=csv[,noheader][,nounits]"
            echo
            echo "FIELDs: index name uuid count driver_version memory.total memory.used memory.free"
            echo "        utilization.gpu utilization.memory temperature.gpu power.draw power.limit pci.bus_id compute_cap"
        }

        table() {
            echo "+-----------------------------------------------------------------------------------------+"
            printf '| NVIDIA-SMI %-21s Driver Version: %-14s CUDA Version: %-9s|\n' "$driver" "$driver" "$cuda"
            echo "|-----------------------------------------+------------------------+----------------------+"
            echo "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |"
            echo "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |"
            echo "|=========================================+========================+======================|"
            i=0
            while [ "$i" -lt "$count" ]; do
                printf '| %3d  %-28s   On  | %18s Off | %20s |\n' "$i" "$name" "$(bus_of $i)" 0
                printf '| N/A   30C    P0             70W /  700W | %9s / %9s |      0%%      Default |\n' "0MiB" "${memory}MiB"
                echo "+-----------------------------------------+------------------------+----------------------+"
                i=$((i + 1))
            done
            echo
            echo "+-----------------------------------------------------------------------------------------+"
            echo "| Processes:                                                                              |"
            echo "|  GPU   GI   CI        PID   Type   Process name                              GPU Memory |"
            echo "|=========================================================================================|"
            echo "|  No running processes found                                                             |"
            echo "+-----------------------------------------------------------------------------------------+"
        }

        # One field of GPU $1: its header, its value and its unit (printed unless nounits).
        field() {
            case "$2" in
                index) header=index; value=$1; unit= ;;
                name|gpu_name) header=name; value=$name; unit= ;;
                uuid|gpu_uuid) header=uuid; value=$(uuid_of "$1"); unit= ;;
                count) header=count; value=$count; unit= ;;
                driver_version) header=driver_version; value=$driver; unit= ;;
                memory.total) header="memory.total [MiB]"; value=$memory; unit=" MiB" ;;
                memory.used) header="memory.used [MiB]"; value=0; unit=" MiB" ;;
                memory.free) header="memory.free [MiB]"; value=$memory; unit=" MiB" ;;
                utilization.gpu) header="utilization.gpu [%]"; value=0; unit=" %" ;;
                utilization.memory) header="utilization.memory [%]"; value=0; unit=" %" ;;
                temperature.gpu) header=temperature.gpu; value=30; unit= ;;
                power.draw) header="power.draw [W]"; value=70.00; unit=" W" ;;
                power.limit) header="power.limit [W]"; value=700.00; unit=" W" ;;
                pci.bus_id|gpu_bus_id) header=pci.bus_id; value=$(bus_of "$1"); unit= ;;
                compute_cap) header=compute_cap; value=$cc; unit= ;;
                *) echo "Field \"$2\" is not a valid field to query." >&2; exit 2 ;;
            esac
        }

        query=; format=
        for argument in "$@"; do
            case "$argument" in
                -h|--help) usage; exit 0 ;;
                -L|--list-gpus)
                    i=0
                    while [ "$i" -lt "$count" ]; do
                        echo "GPU $i: $name (UUID: $(uuid_of $i))"
                        i=$((i + 1))
                    done
                    exit 0 ;;
                --query-gpu=*) query=${argument#--query-gpu=} ;;
                --format=*) format=${argument#--format=} ;;
                *) echo "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help." >&2; exit 2 ;;
            esac
        done

        if [ -z "$query" ]; then
            [ -z "$format" ] || { echo "--format needs --query-gpu" >&2; exit 2; }
            table
            exit 0
        fi
        case ",$format," in
            *,csv,*) ;;
            *) echo "--format=csv is the only format (with noheader and nounits)" >&2; exit 2 ;;
        esac
        noheader=no; nounits=no
        case ",$format," in *,noheader,*) noheader=yes ;; esac
        case ",$format," in *,nounits,*) nounits=yes ;; esac
        fields=$(echo "$query" | tr ',' ' ')
        if [ "$noheader" = no ]; then
            line=
            for f in $fields; do
                field 0 "$f"
                line="${line:+$line, }$header"
            done
            echo "$line"
        fi
        i=0
        while [ "$i" -lt "$count" ]; do
            line=
            for f in $fields; do
                field "$i" "$f"
                [ "$nounits" = yes ] && unit=
                line="${line:+$line, }$value$unit"
            done
            echo "$line"
            i=$((i + 1))
        done

        """;
}

/// <summary>A node's cluster as its provider knows it.</summary>
/// <param name="Peers">Every live node of the cluster, this one included, in claim order (<c>node-1</c> first).</param>
/// <param name="VolumeIds">The volumes mounted on the cluster's nodes.</param>
internal sealed record NodeView(string InstanceId, string ClusterId, string InstanceType, IReadOnlyList<ClusterPeer> Peers, IReadOnlyList<string> VolumeIds);

/// <param name="Name">The node's short name inside the cluster: <c>node-1</c>, <c>node-2</c>, …</param>
/// <param name="ListedIp">The address <c>tp cluster info</c> lists for it.</param>
/// <param name="SshPort">Its SSH port on the engine's host, or null when it takes no logins.</param>
internal sealed record ClusterPeer(string InstanceId, string Name, string? ListedIp, int? SshPort);
