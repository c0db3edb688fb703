using System.Globalization;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>The host's processes as /proc shows them to the tests (which run as root, so every one is readable).</summary>
internal static class HostProcesses
{
    /// <summary>The pids whose command line (arguments joined by spaces) holds <paramref name="text"/>.</summary>
    public static List<int> WithCommandLine(string text) =>
        [.. All().Where(pid => CommandLine(pid)?.Contains(text, StringComparison.Ordinal) == true)];

    /// <summary>The one process whose command line is exactly <paramref name="commandLine"/>, once it appears (a shell may still be about to exec it).</summary>
    public static async Task<int> WaitForOneAsync(string commandLine, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var found = WithCommandLine(commandLine).Where(pid => CommandLine(pid) == commandLine).ToList();
            if (found.Count == 1)
                return found[0];
            Assert.True(found.Count == 0, $"{found.Count} processes run {commandLine}");
            Assert.True(DateTime.UtcNow < deadline, $"no process ran {commandLine}");
            await Task.Delay(50);
        }
    }

    /// <summary>The pids in the PID namespace <paramref name="pid"/> is in (as the host numbers them).</summary>
    public static List<int> InPidNamespaceOf(int pid)
    {
        var ns = PidNamespace(pid) ?? throw new InvalidOperationException($"process {pid} is gone");
        return [.. All().Where(other => PidNamespace(other) == ns)];
    }

    public static string? PidNamespace(int pid) => Try(() => new FileInfo($"/proc/{pid}/ns/pid").LinkTarget);

    /// <summary>The program's name as the kernel keeps it (/proc/PID/comm).</summary>
    public static string? Name(int pid) => Try(() => File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'));

    public static string? CommandLine(int pid) => Try(() => File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').TrimEnd());

    /// <summary>The real, effective, saved and file-system uids (the status file's Uid line), or null when the process is gone.</summary>
    public static int[]? Uids(int pid) => Try(() => File.ReadLines($"/proc/{pid}/status")
        .First(line => line.StartsWith("Uid:", StringComparison.Ordinal))["Uid:".Length..]
        .Split('\t', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(field => int.Parse(field, CultureInfo.InvariantCulture)).ToArray());

    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>
    /// SIGKILL, for what a test left running on a node: a login's processes outlive the client (and
    /// the engine), so a test that keeps one open ends it itself, passed or failed.
    /// </summary>
    public static void Kill(int pid) => _ = SendSignal(pid, 9);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int SendSignal(int pid, int signal);

    private static IEnumerable<int> All() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Select(name => int.TryParse(name, out var pid) ? pid : -1).Where(pid => pid > 0);

    private static T? Try<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return default; // ended while looked at
        }
    }
}
