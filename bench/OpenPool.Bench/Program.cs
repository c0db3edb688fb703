using System.Diagnostics;
using OpenPool.Bench.Figures;
using OpenPool.Bench.Harness;
using OpenPool.Bench.Scenarios;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Bench;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var quick = args.Contains("--quick");
        var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault()?.Split(',') ?? [];
        var resultsDir = args.SkipWhile(a => a != "--results").Skip(1).FirstOrDefault();
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine("usage: OpenPool.Bench [--quick] [--only group,group] [--results DIR]\ngroups: " + string.Join(", ", Groups.Keys));
            return 0;
        }
        var unknown = only.Where(o => !Groups.ContainsKey(o)).ToList();
        if (unknown.Count > 0)
        {
            Console.Error.WriteLine($"unknown group(s): {string.Join(", ", unknown)}; groups: {string.Join(", ", Groups.Keys)}");
            return 2;
        }

        var report = new Report();
        var stopwatch = Stopwatch.StartNew();
        Lazy<PostgresServer> postgres = new(() => PostgresServer.Start(durable: true));
        foreach (var (name, run) in Groups)
        {
            if (only.Length > 0 && !only.Contains(name))
                continue;
            Console.Error.WriteLine($"== {name} ({stopwatch.Elapsed.TotalSeconds:0} s into the run)");
            try
            {
                await run(report, quick, postgres);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                report.Broken(name, ex);
            }
        }

        var took = stopwatch.Elapsed;
        if (resultsDir is not null)
        {
            Directory.CreateDirectory(resultsDir);
            var stamp = DateTime.UtcNow.ToString("yyyy-MM-dd-HHmm");
            var file = Path.Combine(resultsDir, $"{stamp}{(quick ? "-quick" : "")}.md");
            await File.WriteAllTextAsync(file, report.Markdown(
                $"OpenPool benchmark, {(quick ? "quick" : "full")} run, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC", Machine.Describe(), took));
            Console.Error.WriteLine($"table written to {file}");
        }
        foreach (var failure in report.Failures)
            Console.Error.WriteLine("MISSED " + failure);
        Console.Error.WriteLine($"{report.Figures.Count} figures in {took.TotalMinutes:0.0} min, {report.Failures.Count} missed or broken");
        return report.Failures.Count == 0 ? 0 : 1;
    }

    private delegate Task Group(Report report, bool quick, Lazy<PostgresServer> postgres);

    private static readonly Dictionary<string, Group> Groups = new()
    {
        ["poll-vs-healthz"] = (r, q, _) => PollVsHealthz.RunAsync(r, q),
        ["claims-sqlite"] = (r, q, _) => ClaimThroughput.SqliteAsync(r, q),
        ["claims-postgres"] = (r, q, pg) => ClaimThroughput.PostgresAsync(r, q, pg.Value),
        ["poll-at-scale"] = (r, q, _) => PollAtScale.RunAsync(r, q),
        ["longpoll"] = (r, q, _) => Waiting.LongPollAsync(r, q),
        ["retry-after"] = (r, _, _) => Waiting.RetryAfterAsync(r),
        ["memory"] = (r, q, _) => Memory.RunAsync(r, q),
        ["chaos"] = (r, _, _) => Chaos.RunAsync(r),
        ["fuzz"] = (r, q, _) => Robustness.FuzzAsync(r, q),
        ["idempotency-race"] = (r, _, _) => Robustness.IdempotencyRaceAsync(r),
        ["tenants"] = (r, _, _) => Robustness.TenantsAsync(r),
        ["jobs"] = (r, q, _) => JobStart.SandboxRatioAsync(r, q),
        ["s3"] = (r, q, _) => S3Figures.RunAsync(r, q),
        ["ssh"] = (r, _, _) => SshLogins.RunAsync(r),
    };
}
