using OpenPool.Engine.Tests.Infrastructure;
using OpenPool.Engine.Tests.Jobs;

namespace OpenPool.Engine.Tests.Clusters;

/// <summary>An engine as root whose nodes take SSH logins, on ports of its own (no other test engine's range).</summary>
public sealed class SshTerminalEngineFixture : RealEngineFixture
{
    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Jobs:PythonVenv=false", "--Simulated:SshPorts=23800-23849",
    ];
}

/// <summary>
/// <c>tp ssh i-…</c> with no command, on a pseudo-terminal the test owns, as a user's terminal
/// emulator runs it; and sftp, as the stock client speaks it with the options /ssh returned.
/// </summary>
public sealed class SshTerminalTests(SshTerminalEngineFixture fx) : IClassFixture<SshTerminalEngineFixture>, IDisposable
{
    private readonly SshKeygen _keys = new();
    private readonly TempDir _client = new();
    private readonly TempDir _files = new();

    public void Dispose()
    {
        _keys.Dispose();
        _client.Dispose();
        _files.Dispose();
    }

    [Fact]
    public async Task Tp_ssh_without_a_command_is_an_interactive_shell_where_window_size_ctrl_c_top_and_vi_behave_and_exit_passes_its_code_back()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "terminal@example.com");
        using var terminal = await Terminal.LoginAsync(node, _client, rows: 40, columns: 120);

        // The shell is bash on the node's own pty (sshd's, inside the sandbox), with the client's TERM.
        // Each marker is computed by the shell, so the echo of what was typed never matches it.
        terminal.Type("echo ID-$(id -un)-$(hostname)-$(tty | cut -c1-9)-$TERM-$((6*7))\r");
        await terminal.WaitForAsync($"ID-ubuntu-{node.InstanceId}-/dev/pts/-xterm-42");

        // The window size the terminal had when the client started, and a resize while logged in
        // (SIGWINCH to the client, a window-change request to sshd).
        terminal.Type("echo SIZE-$(stty size | tr ' ' x)\r");
        await terminal.WaitForAsync("SIZE-40x120");
        terminal.Resize(50, 132);
        terminal.Type("for i in $(seq 100); do [ \"$(stty size)\" = '50 132' ] && break; sleep 0.1; done; echo SIZE-$(stty size | tr ' ' x)\r");
        await terminal.WaitForAsync("SIZE-50x132");

        // Ctrl-C is a byte on the wire; the node's pty turns it into SIGINT for the foreground job.
        terminal.Type("sh -c 'echo SLEEPING-$((6*7)); exec sleep 1000'\r");
        await terminal.WaitForAsync("SLEEPING-42");
        terminal.Type("\x03");
        await terminal.WaitForAsync("$ "); // the prompt is back
        terminal.Type("echo RC-$?; pgrep -x sleep || echo NO-SLEEP-$((6*7))\r");
        await terminal.WaitForAsync("RC-130"); // 128 + SIGINT
        await terminal.WaitForAsync("NO-SLEEP-42");

        // A full-screen program: top draws its screen, takes a key unbuffered and gives the terminal back.
        terminal.Type("top\r");
        await terminal.WaitForAsync("load average");
        terminal.Type("q");
        await terminal.WaitForAsync("$ ");
        terminal.Type("echo TOP-$?-$((6*7))\r");
        await terminal.WaitForAsync("TOP-0-42");

        // vi: insert mode, Escape, :wq.
        terminal.Type("vi ~/typed.txt\r");
        await terminal.WaitForAsync("[New");
        terminal.Type("ihello from vi");
        terminal.Type("\x1b");
        terminal.Type(":wq\r");
        await terminal.WaitForAsync("written");
        await terminal.WaitForAsync("$ ");
        terminal.Type("echo VI-$?-$((6*7))\r");
        await terminal.WaitForAsync("VI-0-42");
        var typed = await node.SshAsync("cat ~/typed.txt");
        Assert.True(typed.ExitCode == 0, typed.Errors);
        Assert.Equal("hello from vi\n", typed.Output);

        terminal.Type("exit 3\r");
        Assert.Equal(3, await terminal.Exited.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Sftp_puts_lists_and_gets_a_file_byte_for_byte_and_cannot_write_or_read_the_nodes_system_files()
    {
        var node = await SshNode.StartAsync(fx, _keys, _client, "sftp@example.com");
        var local = Path.Combine(_files.Path, "up.bin");
        var blob = new byte[3 * 1024 * 1024 + 17];
        Random.Shared.NextBytes(blob);
        await File.WriteAllBytesAsync(local, blob);
        var back = Path.Combine(_files.Path, "back.bin");

        var session = await Sftp(node,
            $"put {local} up.bin", "ls -l up.bin", "mkdir sub", "rename up.bin sub/moved.bin", $"get sub/moved.bin {back}", "ls sub", "pwd");
        Assert.True(session.ExitCode == 0, session.Output + session.Errors);
        Assert.Equal(blob, await File.ReadAllBytesAsync(back));
        // ls -l as the node's sftp server lists it: the node's user's file, its exact size.
        Assert.Contains(session.Output.Split('\n'), line => line.Contains("ubuntu", StringComparison.Ordinal)
            && line.Contains($" {blob.Length} ", StringComparison.Ordinal) && line.TrimEnd().EndsWith("up.bin", StringComparison.Ordinal));
        Assert.Contains("moved.bin", session.Output[session.Output.IndexOf("sftp> ls sub", StringComparison.Ordinal)..]);
        Assert.Contains("Remote working directory: /home/ubuntu", session.Output);
        var onNode = await node.SshAsync("stat -c '%U %s' ~/sub/moved.bin");
        Assert.Equal($"ubuntu {blob.Length}\n", onNode.Output);

        // The sftp server runs as the node's user inside its sandbox: the node's system files are not its to change or read.
        var write = await Sftp(node, $"put {local} /etc/passwd");
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("dest open \"/etc/passwd\"", write.Errors); // a read-only bind: the server says Failure (EROFS)
        var passwd = await node.SshAsync("cat /etc/passwd");
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(fx.DataDir, "sim", "nodes", node.InstanceId, "etc", "passwd")), passwd.Output);
        foreach (var secret in new[] { "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/sshd_config" })
        {
            var copy = Path.Combine(_files.Path, Path.GetFileName(secret));
            var read = await Sftp(node, $"get {secret} {copy}");
            Assert.NotEqual(0, read.ExitCode);
            Assert.Contains("Permission denied", read.Errors + read.Output);
            Assert.False(File.Exists(copy) && new FileInfo(copy).Length > 0, $"{secret} was copied over sftp");
        }
    }

    /// <summary>The stock sftp in batch mode with the options the returned command has (sftp takes the port as -P).</summary>
    private async Task<(int ExitCode, string Output, string Errors)> Sftp(SshNode node, params string[] commands)
    {
        var batch = Path.Combine(_files.Path, $"batch-{Guid.NewGuid():N}");
        await File.WriteAllLinesAsync(batch, commands);
        return await SshNode.RunAsync("sftp", ["-b", batch, "-P", node.Port, .. node.ClientOptions(), "ubuntu@127.0.0.1"]);
    }
}

/// <summary>An interactive <c>tp ssh i-…</c>: the ssh client on a pseudo-terminal, logged in once the shell's prompt shows.</summary>
internal static class Terminal
{
    public static async Task<PseudoTerminal> LoginAsync(SshNode node, TempDir client, ushort rows, ushort columns)
    {
        // What a user's terminal gives the client: TERM, a home, a PATH; no agent.
        var environment = new Dictionary<string, string>
        {
            ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
            ["HOME"] = client.Path,
            ["TERM"] = "xterm",
            ["LANG"] = "C.UTF-8",
        };
        var terminal = PseudoTerminal.Start(node.SshArguments(), environment, rows, columns);
        try
        {
            await terminal.WaitForAsync("$ ");
            return terminal;
        }
        catch
        {
            terminal.Dispose();
            throw;
        }
    }
}
