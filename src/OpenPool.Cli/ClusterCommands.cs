using System.CommandLine;
using OpenPool.Contracts;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

internal delegate Func<ParseResult, CancellationToken, Task<int>> Runner(Func<CliContext, ParseResult, CancellationToken, Task<int>> body);

internal static class ClusterCommands
{
    public static Command Build(Runner run)
    {
        var wait = new Option<bool>("--wait") { Description = "Wait until the request finishes, showing its progress" };

        var type = new Argument<string>("instance_type") { Description = "e.g. 1xH100, 8xB200" };
        var keyFile = new Option<string[]>("--public-key", "-i") { Description = "Public key file(s) to install", AllowMultipleArgumentsPerToken = true };
        var name = new Option<string?>("--name") { Description = "A name for the cluster" };
        var nodes = new Option<int?>("--num-nodes", "-n") { Description = "Number of nodes (multi-node types)" };
        var protection = new Option<bool>("--deletion-protection") { Description = "Refuse destroy until turned off" };
        var container = new Option<string?>("--container") { Description = "Container image for the nodes" };
        var create = new Command("create", "Create a cluster") { type, keyFile, name, nodes, protection, container, wait };
        create.SetAction(run(async (c, p, ct) =>
        {
            var keys = (p.GetValue(keyFile) ?? []).Select(f => File.ReadAllText(Path.GetFullPath(Environment.ExpandEnvironmentVariables(f.Replace("~", Environment.GetEnvironmentVariable("HOME"), StringComparison.Ordinal)))).Trim()).ToList();
            var op = await c.Client.CreateClusterAsync(new ClusterCreateRequest
            {
                InstanceType = p.GetValue(type)!, TpClusterName = p.GetValue(name), NumNodes = p.GetValue(nodes),
                DeletionProtection = p.GetValue(protection) ? true : null, Container = p.GetValue(container), PublicKeys = keys.Count > 0 ? keys : null,
            }, ct);
            return await FinishAsync(c, op, p.GetValue(wait), op.Accepted, op.Accepted.Message, ct);
        }));

        var id = new Argument<string>("cluster_id");
        var destroy = new Command("destroy", "Destroy a cluster") { id, wait };
        destroy.Aliases.Add("rm");
        destroy.SetAction(run(async (c, p, ct) =>
        {
            var clusterId = p.GetValue(id)!;
            if (!c.Confirm($"Destroy cluster {clusterId}?"))
                return 1;
            var op = await c.Client.DestroyClusterAsync(clusterId, ct);
            return await FinishAsync(c, op, p.GetValue(wait), new Accepted(op.Id, $"Destroying cluster {clusterId}."), $"Destroying cluster {clusterId} ({op.Id}).", ct);
        }));

        var org = new Option<bool>("--org", "--organization") { Description = "Your organization's clusters instead of yours" };
        var instances = new Option<bool>("--instances") { Description = "List every instance" };
        var list = Show(run, "list", "List clusters", (c, p, ct) => c.Client.ListClustersAsync(p.GetValue(org), p.GetValue(instances), ct),
            r => r.Message, org, instances).WithAlias("ls");
        var info = Show(run, "info", "Show a cluster", (c, p, ct) => c.Client.GetClusterAsync(p.GetValue(id)!, ct), r => r.Message, id);

        var newName = new Option<string?>("--name") { Description = "New name" };
        var protect = new Option<string?>("--deletion-protection") { Description = "true or false" };
        var edit = new Command("edit", "Rename a cluster or change its deletion protection") { id, newName, protect, wait };
        edit.SetAction(run(async (c, p, ct) =>
        {
            var change = new ClusterEditRequest { ClusterName = p.GetValue(newName), DeletionProtection = ParseBool(p.GetValue(protect)) };
            if (change.ClusterName is null && change.DeletionProtection is null)
                throw new CliError("Give --name and/or --deletion-protection.");
            var op = await c.Client.EditClusterAsync(p.GetValue(id)!, change, ct);
            return await FinishAsync(c, op, p.GetValue(wait), new Accepted(op.Id, "Cluster updated."), $"Cluster {p.GetValue(id)} updated ({op.Id}).", ct);
        }));

        var storageId = new Argument<string>("storage_id");
        var attach = new Command("attach", "Attach a storage volume (restarts the cluster's nodes)") { id, storageId, wait };
        attach.SetAction(run(async (c, p, ct) =>
        {
            var ops = await c.Client.AttachStorageAsync(p.GetValue(storageId)!, [p.GetValue(id)!], ct);
            return await FinishAsync(c, ops[0], p.GetValue(wait), new Accepted(ops[0].Id, "Attaching."), $"Attaching {p.GetValue(storageId)} to {p.GetValue(id)} ({ops[0].Id}).", ct);
        }));
        var detach = new Command("detach", "Detach a storage volume") { id, storageId, wait };
        detach.SetAction(run(async (c, p, ct) =>
        {
            var op = await c.Client.DetachStorageAsync(p.GetValue(storageId)!, p.GetValue(id)!, ct);
            return await FinishAsync(c, op, p.GetValue(wait), new Accepted(op.Id, "Detaching."), $"Detaching {p.GetValue(storageId)} from {p.GetValue(id)} ({op.Id}).", ct);
        }));

        return Group("cluster", "Create and manage GPU clusters", create, destroy, list, info, edit, attach, detach);
    }
}
