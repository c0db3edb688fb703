using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OpenPool.Bench.Harness;

/// <summary>
/// A plain OpenSSH daemon (<c>sshd -D</c>) of the harness's own on a free loopback port, logging in a
/// host user of its own: the baseline a node's SSH login is compared with. No systemd and nothing of
/// the host's sshd configuration; its configuration, host key and authorized keys live in a
/// directory under <c>/run</c>, removed when it stops.
/// </summary>
public sealed class LoopbackSshd : IDisposable
{
    /// <summary>The baseline's login: an ordinary, unprivileged host account with a home of its own.</summary>
    public const string User = "openpool-bench";
    public const string Sshd = "/usr/sbin/sshd";

    private readonly Process _process;
    private readonly string _dir;
    private readonly StringBuilder _log;

    private LoopbackSshd(Process process, string dir, int port, StringBuilder log)
    {
        _process = process;
        _dir = dir;
        Port = port;
        _log = log;
    }

    public int Port { get; }

    /// <summary>What sshd printed (-e sends its log to stderr), for a login that fails.</summary>
    public string Log
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }

    /// <summary>
    /// Starts the daemon with <paramref name="publicKeyLine"/> as the only authorized key, once it
    /// answers with an SSH banner. Needs root: sshd -D changes to the user's uid for the session.
    /// </summary>
    public static async Task<LoopbackSshd> StartAsync(string publicKeyLine)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the loopback sshd baseline runs on Linux only");
        EnsureUser();
        // StrictModes (on, as on the nodes) refuses keys under a directory others can write, as /tmp
        // is; /run is root's 0755, like the node's /etc/ssh.
        var dir = Path.Combine("/run", "openpool-bench-sshd-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                       UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var hostKey = Path.Combine(dir, "ssh_host_ed25519_key");
        await RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "openpool-bench-loopback", "-f", hostKey]);
        var authorizedKeys = Path.Combine(dir, "authorized_keys");
        await File.WriteAllTextAsync(authorizedKeys, publicKeyLine.Trim() + "\n");
        File.SetUnixFileMode(authorizedKeys, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        // sshd -D will not start without its privilege-separation directory, which a container may
        // lack. It stays, as the package would have made it: another sshd may be using it by now.
        if (!Directory.Exists("/run/sshd"))
            Directory.CreateDirectory("/run/sshd", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                                   UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        var port = FreeLoopbackPort();
        var config = Path.Combine(dir, "sshd_config");
        await File.WriteAllTextAsync(config, Config(port, hostKey, authorizedKeys));
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var start = new ProcessStartInfo(Sshd) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-D", "-e", "-f", config })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        var log = new StringBuilder();
        void Collect(string? line)
        {
            if (line is not null)
                lock (log)
                    log.AppendLine(line);
        }
        process.ErrorDataReceived += (_, e) => Collect(e.Data);
        process.OutputDataReceived += (_, e) => Collect(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var sshd = new LoopbackSshd(process, dir, port, log);
        try
        {
            await sshd.WaitForBannerAsync(TimeSpan.FromSeconds(20));
            return sshd;
        }
        catch
        {
            sshd.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The daemon's configuration: the nodes' choices where they bear on a login's cost (public key
    /// only, no PAM, no DNS lookup, no motd or lastlog, StrictModes), so the two differ in how sshd
    /// is started (a daemon that forks and re-execs per connection, against the engine's accept and
    /// <c>sshd -i</c> in a fresh sandbox), not in what a login does.
    /// </summary>
    private static string Config(int port, string hostKey, string authorizedKeys) =>
        $"""
        ListenAddress 127.0.0.1
        Port {port}
        HostKey {hostKey}
        AuthorizedKeysFile {authorizedKeys}
        AllowUsers {User}
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
        PrintMotd no
        PrintLastLog no
        UseDNS no
        Compression no
        PidFile none
        LogLevel INFO
        Subsystem sftp internal-sftp

        """;

    /// <summary>
    /// Makes the baseline user when missing: a home of its own left empty (a node's home starts
    /// empty too, so neither login's shell reads a .bashrc the other does not), bash as its shell.
    /// useradd leaves "!" as the password, which sshd without PAM takes for a locked account and
    /// refuses even for a key; "*" is no password at all, and not locked.
    /// </summary>
    private static void EnsureUser()
    {
        if (!File.ReadLines("/etc/passwd").Any(line => line.StartsWith(User + ":", StringComparison.Ordinal)))
        {
            var emptySkeleton = Directory.CreateTempSubdirectory("openpool-bench-skel-").FullName;
            try
            {
                RunAsync("useradd", ["--create-home", "--skel", emptySkeleton, "--shell", "/bin/bash", User]).GetAwaiter().GetResult();
            }
            finally
            {
                Directory.Delete(emptySkeleton);
            }
        }
        RunAsync("usermod", ["-p", "*", User]).GetAwaiter().GetResult();
    }

    private async Task WaitForBannerAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"sshd -D exited with {_process.ExitCode}: {Log}");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                var buffer = new byte[64];
                var read = await client.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                if (Encoding.ASCII.GetString(buffer, 0, read).StartsWith("SSH-2.0-", StringComparison.Ordinal))
                    return;
            }
            catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
            {
                // Not listening yet.
            }
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"sshd -D did not answer on 127.0.0.1:{Port} within {timeout.TotalSeconds:0} s: {Log}");
            await Task.Delay(50);
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task RunAsync(string program, string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {await output}{await errors}");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            // The daemon and any session it still has (each a child of it).
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
