using System.Globalization;
using System.Text;
using OpenPool.Engine.Http;
using OpenPool.Engine.Storage;

namespace OpenPool.Engine.Clusters;

/// <summary>The readable <c>message</c> texts of the cluster endpoints: what <c>tp</c> prints.</summary>
internal static class ClusterText
{
    public static string ClusterTable(IReadOnlyList<ClusterRecord> clusters, bool includeOrg)
    {
        if (clusters.Count == 0)
            return includeOrg ? "Your organization has no clusters." : "You have no clusters. Create one with: tp cluster create <instance_type>";
        var table = new TextTable("CLUSTER ID", "NAME", "TYPE", "NODES", "STATUS", "$/HOUR", "CREATED");
        foreach (var c in clusters)
            table.Add(c.Id, c.Name ?? "-", c.InstanceType, c.NumNodes.ToString(CultureInfo.InvariantCulture), c.Status, Price(c), TextTable.When(c.CreatedAt));
        return table.ToString();
    }

    public static string InstanceTable(IReadOnlyList<ClusterRecord> clusters)
    {
        if (clusters.Count == 0)
            return "No instances.";
        var table = new TextTable("INSTANCE ID", "CLUSTER ID", "NODE", "TYPE", "STATUS", "IP");
        foreach (var c in clusters)
            foreach (var i in c.Instances)
                table.Add(i.Id, c.Id, i.NodeIndex.ToString(CultureInfo.InvariantCulture), c.InstanceType, i.Status, i.IpAddress ?? "-");
        return table.ToString();
    }

    public static string Info(ClusterRecord c, IReadOnlyList<ClusterVolume> volumes)
    {
        var text = new StringBuilder();
        text.Append($"Cluster {c.Id}");
        if (c.Name is not null)
            text.Append($" ({c.Name})");
        text.Append('\n');
        text.Append($"  Status:               {c.Status}\n");
        text.Append($"  Instance type:        {c.InstanceType} x {c.NumNodes} node(s)\n");
        text.Append($"  Price:                ${Price(c)}/hour\n");
        text.Append($"  Deletion protection:  {(c.DeletionProtection ? "on" : "off")}\n");
        if (c.Container is not null)
            text.Append($"  Container:            {c.Container}\n");
        text.Append($"  Owner:                {c.OwnerEmail}{(c.OrgName is null ? "" : $" ({c.OrgName})")}\n");
        text.Append($"  Created:              {TextTable.When(c.CreatedAt)}\n");
        text.Append($"  SSH keys:             {(c.Keys.Count == 0 ? "none (add one with: tp me sshkey add <path.pub>)" : string.Join(", ", c.Keys.Select(k => $"{k.Name} {k.Fingerprint}")))}\n\n");
        if (volumes.Count > 0)
        {
            var attached = new TextTable("STORAGE ID", "NAME", "MOUNT PATH", "STATUS");
            foreach (var v in volumes)
                attached.Add(v.VolumeId, v.Name ?? "-", v.MountPath, v.Status);
            text.Append("Volumes:\n").Append(attached).Append("\n\n");
        }
        var table = new TextTable("INSTANCE ID", "NODE", "STATUS", "IP");
        foreach (var i in c.Instances)
            table.Add(i.Id, i.NodeIndex.ToString(CultureInfo.InvariantCulture), i.Status, i.IpAddress ?? "-");
        text.Append(table);
        if (c.Status == ClusterStatuses.Running && c.Instances.Count > 0)
            text.Append($"\n\nConnect with: tp ssh {c.Instances[0].Id}");
        return text.ToString();
    }

    private static string Price(ClusterRecord c) => (c.PriceMicrosPerHour / 1_000_000m).ToString("0.00", CultureInfo.InvariantCulture);
}
