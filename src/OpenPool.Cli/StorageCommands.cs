using System.CommandLine;
using OpenPool.Contracts;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

internal static class StorageCommands
{
    public static Command Build(Runner run)
    {
        var wait = new Option<bool>("--wait") { Description = "Wait until the request finishes, showing its progress" };
        var size = new Argument<int>("size_gb") { Description = "Size in GB" };
        var name = new Option<string?>("--name") { Description = "A name for the volume" };
        var protection = new Option<bool>("--deletion-protection") { Description = "Refuse destroy until turned off" };
        var create = new Command("create", "Create a storage volume") { size, name, protection, wait };
        create.SetAction(run(async (c, p, ct) =>
        {
            var op = await c.Client.CreateStorageAsync(new StorageCreateRequest { Size = p.GetValue(size), Name = p.GetValue(name), DeletionProtection = p.GetValue(protection) ? true : null }, ct);
            return await FinishAsync(c, op, p.GetValue(wait), op.Accepted, op.Accepted.Message, ct);
        }));

        var id = new Argument<string>("storage_id");
        var destroy = new Command("destroy", "Destroy a storage volume") { id, wait };
        destroy.Aliases.Add("rm");
        destroy.SetAction(run(async (c, p, ct) =>
        {
            var storageId = p.GetValue(id)!;
            if (!c.Confirm($"Destroy storage volume {storageId} and its data?"))
                return 1;
            var op = await c.Client.DestroyStorageAsync(storageId, ct);
            return await FinishAsync(c, op, p.GetValue(wait), new Accepted(op.Id, "Destroying."), $"Destroying storage volume {storageId} ({op.Id}).", ct);
        }));

        var org = new Option<bool>("--org", "--organization") { Description = "Your organization's volumes instead of yours" };
        var list = Show(run, "list", "List storage volumes", (c, p, ct) => c.Client.ListStorageAsync(p.GetValue(org), ct), r => r.Message, org).WithAlias("ls");
        var info = Show(run, "info", "Show a storage volume", (c, p, ct) => c.Client.GetStorageAsync(p.GetValue(id)!, ct), r => r.Message, id);

        var newName = new Option<string?>("--name") { Description = "New name" };
        var protect = new Option<string?>("--deletion-protection") { Description = "true or false" };
        var grow = new Option<int?>("--size", "-s") { Description = "New size in GB (volumes only grow)" };
        var edit = new Command("edit", "Rename, protect or grow a volume") { id, newName, protect, grow, wait };
        edit.SetAction(run(async (c, p, ct) =>
        {
            var change = new StorageEditRequest { TpStorageName = p.GetValue(newName), DeletionProtection = ParseBool(p.GetValue(protect)), SizeGb = p.GetValue(grow) };
            if (change.TpStorageName is null && change.DeletionProtection is null && change.SizeGb is null)
                throw new CliError("Give --name, --deletion-protection and/or --size.");
            var op = await c.Client.EditStorageAsync(p.GetValue(id)!, change, ct);
            return await FinishAsync(c, op, p.GetValue(wait), new Accepted(op.Id, "Volume updated."), $"Storage volume {p.GetValue(id)} updated ({op.Id}).", ct);
        }));

        return Group("storage", "Create and manage shared storage volumes", create, destroy, list, info, edit);
    }
}
