using System.Diagnostics;

namespace OpenPool.Bench.Harness;

/// <summary>A closed-loop load generator: a fixed number of workers, each starting its next call when the last ends.</summary>
public static class Load
{
    /// <summary>Runs <paramref name="count"/> calls (numbered 0..count-1) with <paramref name="concurrency"/> in flight.</summary>
    public static async Task<TimeSpan> RunAsync(int count, int concurrency, Func<int, Task> call)
    {
        var next = -1;
        var stopwatch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
                await call(i);
        })));
        return stopwatch.Elapsed;
    }

    /// <summary>Waits until <paramref name="done"/> says so, checking every few milliseconds; false on timeout.</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> done, TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await done())
        {
            if (stopwatch.Elapsed > timeout)
                return false;
            await Task.Delay(10);
        }
        return true;
    }

    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0)
            throw new ArgumentException("no samples", nameof(values));
        var sorted = values.Order().ToArray();
        // Nearest rank: the smallest value with at least p% of the samples at or below it.
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
