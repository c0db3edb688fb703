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
    public void A_key_from_a_seed_is_the_same_for_the_same_seed_and_is_read_by_ssh_keygen()
    {
        var seed = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        var pair = Ed25519HostKey.FromSeed(seed, "i-seeded");
        Assert.True(pair is not null, "libcrypto (OpenSSL 3, which .NET uses on Linux) could not make an ed25519 key from a seed");
        Assert.EndsWith(" i-seeded\n", pair.Value.PublicKey);
        var again = Ed25519HostKey.FromSeed(seed, "i-seeded")!.Value;
        Assert.Equal(pair.Value.PublicKey, again.PublicKey);
        var other = seed.ToArray();
        other[0] ^= 1;
        Assert.NotEqual(pair.Value.PublicKey, Ed25519HostKey.FromSeed(other, "i-seeded")!.Value.PublicKey);

        // Both private key files (their check words differ) are the same key to OpenSSH.
        foreach (var (privateKey, name) in new[] { (pair.Value.PrivateKey, "one"), (again.PrivateKey, "two") })
        {
            var path = Path.Combine(_dir.Path, name);
            File.WriteAllText(path, privateKey);
            OpenPool.Engine.Providers.Simulated.NodeSandbox.SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var derived = Run("-y", "-f", path).Trim();
            Assert.Equal(string.Join(' ', pair.Value.PublicKey.Split(' ').Take(2)), string.Join(' ', derived.Split(' ').Take(2)));
        }
        File.WriteAllText(Path.Combine(_dir.Path, "one.pub"), pair.Value.PublicKey);
        Assert.True(SshPublicKey.TryParse(pair.Value.PublicKey, out var parsed, out var error), error);
        Assert.Equal(SshKeygen.Fingerprint(Path.Combine(_dir.Path, "one.pub")), parsed!.Fingerprint);

        // RFC 8032's first test vector: the seed's public key is the one the standard gives.
        var vector = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        var line = Ed25519HostKey.FromSeed(vector, "rfc8032")!.Value.PublicKey;
        var blob = Convert.FromBase64String(line.Split(' ')[1]);
        Assert.Equal("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", Convert.ToHexStringLower(blob[^32..]));
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
