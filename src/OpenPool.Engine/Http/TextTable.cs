using System.Globalization;
using System.Text;

namespace OpenPool.Engine.Http;

/// <summary>Plain aligned text tables: the <c>message</c> the official CLI prints as it is.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    /// <summary>
    /// Control characters become '?': the official CLI prints the table as it is, so an escape
    /// sequence in a stored name (from before names were checked) must not reach a terminal.
    /// </summary>
    public void Add(params string[] cells) =>
        _rows.Add([.. cells.Select(cell => cell.Any(char.IsControl) ? new string([.. cell.Select(ch => char.IsControl(ch) ? '?' : ch)]) : cell)]);

    public static string When(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    public override string ToString()
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        AppendLine(text, headers, widths);
        foreach (var row in _rows)
            AppendLine(text, row, widths);
        return text.ToString().TrimEnd('\n');
    }

    private static void AppendLine(StringBuilder text, string[] cells, int[] widths)
    {
        for (var i = 0; i < cells.Length; i++)
        {
            if (i == cells.Length - 1)
                text.Append(cells[i]);
            else
                text.Append(cells[i].PadRight(widths[i] + 2));
        }
        text.Append('\n');
    }
}
