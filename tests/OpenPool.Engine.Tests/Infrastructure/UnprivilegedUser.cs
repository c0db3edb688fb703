using System.Diagnostics;
using System.Globalization;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// A host account of its own for engines the tests run without root (<c>openpool-test</c>, a system
/// user without a home or a login shell), made with useradd the first time. Its own uid: no other
/// program's processes share it, as none share the uid a real operator gives the engine.
/// </summary>
internal static class UnprivilegedUser
{
    public const string Name = "openpool-test";
    private static readonly Lazy<int> Account = new(Ensure);

    public static int Uid => Account.Value;

    private static int Ensure()
    {
        if (Lookup() is { } uid)
            return uid;
        Assert.True(File.Exists("/usr/sbin/useradd"), "the unprivileged-engine tests make a user with useradd (Debian's passwd package)");
        var start = new ProcessStartInfo("/usr/sbin/useradd", ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group", Name])
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        // 9: made meanwhile by another test run.
        return Lookup() ?? throw new InvalidOperationException($"useradd {Name} failed ({process.ExitCode}): {errors}");
    }

    private static int? Lookup() => File.ReadLines("/etc/passwd").Select(line => line.Split(':'))
        .Where(fields => fields.Length > 2 && fields[0] == Name)
        .Select(fields => (int?)int.Parse(fields[2], CultureInfo.InvariantCulture)).FirstOrDefault();
}
