using System.Diagnostics;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>OpenSSH's own ssh-keygen, to make real keys and certificates and to fingerprint them: an oracle independent of the engine.</summary>
internal sealed class SshKeygen : IDisposable
{
    private readonly TempDir _dir = new();

    /// <summary>Makes a key pair; returns the public key file's path.</summary>
    public string NewKey(string type, int? bits = null)
    {
        var path = Path.Combine(_dir.Path, $"{type}-{bits}-{Guid.NewGuid():N}");
        Run(["-q", "-t", type, .. bits is { } b ? new[] { "-b", b.ToString(System.Globalization.CultureInfo.InvariantCulture) } : [], "-N", "", "-C", "test@lab", "-f", path]);
        return path + ".pub";
    }

    /// <summary>Certifies a public key file with a fresh CA; returns the certificate's path (…-cert.pub).</summary>
    public string Certify(string publicKeyPath)
    {
        var ca = NewKey("ed25519")[..^".pub".Length];
        Run(["-q", "-s", ca, "-I", "test-identity", "-n", "ada", "-V", "+52w", publicKeyPath]);
        return publicKeyPath[..^".pub".Length] + "-cert.pub";
    }

    /// <summary>Writes a public key line to a file (for keys made by hand).</summary>
    public string Write(string line)
    {
        var path = Path.Combine(_dir.Path, Guid.NewGuid().ToString("N") + ".pub");
        File.WriteAllText(path, line + "\n");
        return path;
    }

    /// <summary>What ssh-keygen -lf says the key's SHA256 fingerprint is.</summary>
    public static string Fingerprint(string publicKeyPath) => Run(["-l", "-E", "sha256", "-f", publicKeyPath]).Split(' ')[1];

    private static string Run(string[] args)
    {
        var start = new ProcessStartInfo("ssh-keygen") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"ssh-keygen {string.Join(' ', args)} failed: {error}");
        return output;
    }

    public void Dispose() => _dir.Dispose();
}
