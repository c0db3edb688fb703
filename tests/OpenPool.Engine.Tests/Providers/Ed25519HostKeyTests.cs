using System.Diagnostics;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Providers.Simulated.Ssh;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Providers;

/// <summary>The in-process host keys are files OpenSSH itself reads: ssh-keygen is the oracle.</summary>
public sealed class Ed25519HostKeyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_made_key_is_read_by_ssh_keygen_which_derives_the_same_public_key_and_fingerprint()
    {
        var pair = Ed25519HostKey.TryCreate("i-test-node");
        Assert.True(pair is not null, "libcrypto (OpenSSL 3, which .NET uses on Linux) could not make an ed25519 key");
        var (privateKey, publicKey) = pair.Value;
        var path = Path.Combine(_dir.Path, "host_key");
        File.WriteAllText(path, privateKey);
        OpenPool.Engine.Providers.Simulated.NodeSandbox.SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // ssh-keygen refuses a private key others may read
        File.WriteAllText(path + ".pub", publicKey);

        Assert.EndsWith(" i-test-node\n", publicKey);
        var derived = Run("-y", "-f", path).Trim();
        Assert.Equal(string.Join(' ', publicKey.Split(' ').Take(2)), string.Join(' ', derived.Split(' ').Take(2)));
        Assert.True(SshPublicKey.TryParse(publicKey, out var parsed, out var error), error);
        Assert.Equal(SshKeygen.Fingerprint(path + ".pub"), parsed!.Fingerprint);
        Assert.NotEqual(publicKey, Ed25519HostKey.TryCreate("i-test-node")!.Value.PublicKey);
    }

    private static string Run(params string[] args)
    {
        var start = new ProcessStartInfo("ssh-keygen", args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"ssh-keygen {string.Join(' ', args)}: {errors}");
        return output;
    }
}
