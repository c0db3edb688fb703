namespace OpenPool.Bench.Harness;

/// <summary>
/// CPU time spent by the engine, by PostgreSQL and by this program over a measured window, from
/// /proc. Throughput on this machine swings by a fifth from one minute to the next; the CPU time a
/// piece of work costs swings far less, so it shows whether a change made the engine cheaper even
/// when the throughput figure cannot.
/// </summary>
public sealed class CpuUse
{
    private static readonly double TicksPerSecond = 100; // USER_HZ, 100 on every Linux this runs on

    private readonly int _enginePid;
    private readonly double _engine;
    private readonly double _postgres;
    private readonly double _self;
    private readonly double _wall;

    private CpuUse(int enginePid)
    {
        _enginePid = enginePid;
        (_engine, _postgres, _self) = Sample(enginePid);
        _wall = Environment.TickCount64 / 1000.0;
    }

    /// <summary>Starts a window; <see cref="PerItem"/> ends it.</summary>
    public static CpuUse Start(int enginePid) => new(enginePid);

    /// <summary>Milliseconds of CPU per item since the start, and how busy the machine's cores were.</summary>
    public string PerItem(int items, string item)
    {
        var (engine, postgres, self) = Sample(_enginePid);
        var wall = Environment.TickCount64 / 1000.0 - _wall;
        var total = (engine - _engine) + (postgres - _postgres) + (self - _self);
        var busy = 100 * total / (wall * Environment.ProcessorCount);
        return FormattableString.Invariant(
            $"CPU per {item}: engine {Ms(engine - _engine)} ms, PostgreSQL {Ms(postgres - _postgres)} ms, load generator {Ms(self - _self)} ms ({busy:0}% of {Environment.ProcessorCount} cores over {wall:0.0} s)");

        string Ms(double seconds) => (1000 * seconds / items).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>CPU seconds (user + system) one process has used so far.</summary>
    public static double ProcessSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (double.Parse(fields[11]) + double.Parse(fields[12])) / TicksPerSecond;
    }

    private static (double Engine, double Postgres, double Self) Sample(int enginePid)
    {
        double engine = 0, postgres = 0, self = 0;
        var selfPid = Environment.ProcessId;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (IOException)
            {
                continue; // the process ended while we looked
            }
            // "pid (comm) state ppid ..." where comm may hold spaces: fields count from the last ')'.
            var close = stat.LastIndexOf(')');
            var comm = stat[(stat.IndexOf('(') + 1)..close];
            var fields = stat[(close + 2)..].Split(' ');
            var seconds = (double.Parse(fields[11]) + double.Parse(fields[12])) / TicksPerSecond; // utime, stime
            if (pid == enginePid)
                engine = seconds;
            else if (pid == selfPid)
                self = seconds;
            else if (comm == "postgres")
                postgres += seconds;
        }
        return (engine, postgres, self);
    }
}
