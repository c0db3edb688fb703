using System.Globalization;
using System.Text;

namespace OpenPool.Engine.Http;

/// <summary>Plain aligned text tables: the <c>message</c> the official CLI prints as it is.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Add(params string[] cells) => _rows.Add(cells);

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
