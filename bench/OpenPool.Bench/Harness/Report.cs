using System.Globalization;
using System.Text;

namespace OpenPool.Bench.Harness;

/// <summary>A figure's mark from the issue: at least, at most or exactly a number.</summary>
public sealed record Mark(char Relation, double Bound)
{
    public bool IsMet(double value) => Relation switch
    {
        '≥' => value >= Bound,
        '≤' => value <= Bound,
        _ => value == Bound,
    };

    public override string ToString() => $"{Relation} {Report.Format(Bound)}";
}

public sealed record Figure(string Name, double Value, Mark? Mark, string Detail);

/// <summary>Collects the run's figures, prints each as <c>RESULT name number</c>, and writes the markdown table.</summary>
public sealed class Report
{
    private static readonly Dictionary<string, Mark> Marks = new()
    {
        ["poll_vs_healthz_rps_ratio"] = new('≥', 0.5),
        ["sqlite_ops_per_s"] = new('≥', 1000),
        ["postgres_ops_per_s"] = new('≥', 500),
        ["poll_p50_1m_vs_empty_ratio"] = new('≤', 1.3),
        ["longpoll_wake_p99_ms"] = new('≤', 50),
        ["polls_per_60s_claim"] = new('≤', 5),
        ["retry_after_lag_s"] = new('≤', 2),
        ["engine_rss_mb_10k_clusters"] = new('≤', 300),
        ["chaos_lost_requests"] = new('≤', 0),
        ["chaos_duplicate_provisions"] = new('≤', 0),
        ["fuzz_5xx"] = new('≤', 0),
        ["idempotency_race_clusters"] = new('=', 1),
        ["tenant_leaks"] = new('≤', 0),
        ["job_start_sandbox_ratio"] = new('≤', 1.5),
        ["s3_put_vs_disk_ratio"] = new('≥', 0.5),
        ["s3_get_vs_disk_ratio"] = new('≥', 0.5),
        ["s3_list_1m_vs_empty_ratio"] = new('≤', 1.5),
        ["s3_list_1m_vs_page_only_ratio"] = new('≤', 1.5),
        ["s3_rss_growth_mb_2gib"] = new('≤', 64),
        ["ssh_exec_vs_loopback_ratio"] = new('≤', 1.5),
        ["engine_rss_mb_10k_ssh_clusters"] = new('≤', 200),
        ["engine_processes_10k_idle"] = new('≤', 0),
        ["engine_ssh_listeners_10k_idle"] = new('=', 10_000),
    };

    private readonly List<Figure> _figures = [];
    private readonly List<string> _failures = [];

    public IReadOnlyList<Figure> Figures => _figures;

    public IReadOnlyList<string> Failures => _failures;

    public void Add(string name, double value, string detail)
    {
        Marks.TryGetValue(name, out var mark);
        lock (_figures)
            _figures.Add(new Figure(name, value, mark, detail));
        Console.WriteLine($"RESULT {name} {Format(value)}");
        Console.Error.WriteLine($"       {detail}");
        if (mark is not null && !mark.IsMet(value))
            lock (_failures)
                _failures.Add($"{name} = {Format(value)} misses its mark {mark}");
    }

    /// <summary>A figure that could not be measured at all is a failure of the run, not a silent gap.</summary>
    public void Broken(string name, Exception error)
    {
        Console.WriteLine($"RESULT {name} NaN");
        Console.Error.WriteLine($"       {name} failed: {error}");
        lock (_failures)
            _failures.Add($"{name} could not be measured: {error.GetType().Name}: {error.Message}");
    }

    public static string Format(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e12
            ? value.ToString("0", CultureInfo.InvariantCulture)
            : value.ToString(Math.Abs(value) >= 100 ? "0" : Math.Abs(value) >= 1 ? "0.00" : "0.000", CultureInfo.InvariantCulture);

    public string Markdown(string title, string machine, TimeSpan took)
    {
        var text = new StringBuilder();
        text.AppendLine($"# {title}").AppendLine();
        text.AppendLine(machine).AppendLine();
        text.AppendLine($"Whole run: {took.TotalMinutes:0.0} min.").AppendLine();
        text.AppendLine("| figure | value | mark | met | how this run got it |");
        text.AppendLine("|---|---:|---|---|---|");
        foreach (var f in _figures)
        {
            var mark = f.Mark?.ToString() ?? "—";
            var met = f.Mark is null ? "" : f.Mark.IsMet(f.Value) ? "yes" : "**no**";
            text.AppendLine($"| `{f.Name}` | {Format(f.Value)} | {mark} | {met} | {f.Detail.Replace("|", "\\|", StringComparison.Ordinal)} |");
        }
        if (_failures.Count > 0)
        {
            text.AppendLine().AppendLine("Missed or broken:").AppendLine();
            foreach (var failure in _failures)
                text.AppendLine("- " + failure);
        }
        return text.ToString();
    }
}
