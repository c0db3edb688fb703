using System.Runtime.InteropServices;

namespace OpenPool.Bench.Harness;

public static class Machine
{
    /// <summary>One line naming the machine the figures came from.</summary>
    public static string Describe()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var memory = File.Exists("/proc/meminfo")
            ? long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024 / 1024
            : 0;
        return $"Machine: {Environment.ProcessorCount} cores ({cpu ?? "unknown CPU"}), {memory} GiB, {RuntimeInformation.OSDescription}, " +
               $".NET {Environment.Version}, engine built in Release.";
    }
}
