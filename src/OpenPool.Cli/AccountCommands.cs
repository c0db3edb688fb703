using System.CommandLine;
using System.Diagnostics;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

internal static class AccountCommands
{
    public static Command BuildSsh(Runner run)
    {
        var instance = new Argument<string>("instance_id");
        var extra = new Argument<string[]>("ssh_args") { Arity = ArgumentArity.ZeroOrMore, Description = "Passed on to ssh" };
        var print = new Option<bool>("--print") { Description = "Print the ssh command instead of running it" };
        var ssh = new Command("ssh", "SSH into an instance") { instance, extra, print };
        ssh.SetAction(run(async (c, p, ct) =>
        {
            var answer = await c.Client.GetSshCommandAsync(p.GetValue(instance)!, OperatingSystem.IsMacOS() ? "Darwin" : "Linux", ct);
            var command = string.Join(' ', new[] { answer.Command }.Concat(p.GetValue(extra) ?? []));
            if (c.Json || p.GetValue(print))
            {
                c.Print(answer with { Command = command }, command);
                return 0;
            }
            if (answer.Message is not null)
                await c.Err.WriteLineAsync(answer.Message);
            using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { UseShellExecute = false })!;
            await process.WaitForExitAsync(ct);
            return process.ExitCode;
        }));
        return ssh;
    }

    public static Command BuildMe(Runner run)
    {
        var me = new Command("me", "Your account: email, organization, balance");
        me.SetAction(run(async (c, p, ct) =>
        {
            var info = await c.Client.GetUserAsync(ct);
            c.Print(info, info.Message);
            return 0;
        }));

        var path = new Argument<string>("key_path") { Description = "A public key file (.pub)" };
        var name = new Option<string?>("--name") { Description = "A name for the key (default: your email)" };
        var add = new Command("add", "Save an SSH public key; it goes onto every new cluster") { path, name };
        add.SetAction(run(async (c, p, ct) =>
        {
            var file = p.GetValue(path)!.Replace("~", Environment.GetEnvironmentVariable("HOME"), StringComparison.Ordinal);
            var result = await c.Client.AddSshKeyAsync((await File.ReadAllTextAsync(file, ct)).Trim(), p.GetValue(name), ct);
            c.Print(result, result.Message);
            return 0;
        }));
        var org = new Option<bool>("--org", "--organization") { Description = "Your organization's keys" };
        var list = Show(run, "list", "List saved SSH keys", (c, p, ct) => c.Client.ListSshKeysAsync(p.GetValue(org), ct), r => r.Message, org).WithAlias("ls");
        var keyId = new Argument<string>("key_id");
        var remove = new Command("remove", "Remove a saved SSH key") { keyId };
        remove.Aliases.Add("rm");
        remove.SetAction(run(async (c, p, ct) =>
        {
            if (!c.Confirm($"Remove SSH key {p.GetValue(keyId)}?"))
                return 1;
            var result = await c.Client.RemoveSshKeyAsync(p.GetValue(keyId)!, ct);
            c.Print(result, result.Message);
            return 0;
        }));
        me.Subcommands.Add(Group("sshkey", "Manage saved SSH keys", add, list, remove));

        var preferences = new Command("preferences", "Show notification and autopay preferences");
        preferences.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.GetPreferencesAsync(ct);
            c.Print(result, $"notify on cluster create: {result.NotifyEmailClusterCreate}\nnotify on cluster destroy: {result.NotifyEmailClusterDestroy}\n" +
                            $"autopay: {result.AutopayEnabled}\nbalance warning below: {result.BalanceWarningThreshold?.ToString() ?? "-"}\n" +
                            $"autopay reload below: {result.AutopayReloadThreshold?.ToString() ?? "-"}");
            return 0;
        }));
        me.Subcommands.Add(preferences);
        return me;
    }
}
