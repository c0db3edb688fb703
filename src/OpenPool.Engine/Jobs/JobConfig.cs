using Tomlyn;
using Tomlyn.Model;

namespace OpenPool.Engine.Jobs;

/// <summary>A parsed <c>.tp.toml</c>: the commands to run, what to keep, what not to upload.</summary>
internal sealed record JobConfig(IReadOnlyList<string> Commands, IReadOnlyList<string> Outputs, IReadOnlyList<string> Ignore)
{
    public const string Template = """
        # OpenPool / TensorPool job configuration.
        # Push it with: tp job push <this file> <cluster_id>

        # Shell commands run in order in your project directory, in a fresh Python virtual
        # environment; the job stops at the first command that fails.
        commands = [
            "pip install -r requirements.txt",
            "python train.py",
        ]

        # Files, directories or globs that `tp job pull` downloads when the job is done.
        outputs = [
            "checkpoints/",
            "results/*.json",
        ]

        # What is not uploaded, with .gitignore rules: "name" at any depth, "/name" at the root only,
        # "dir/" directories only, "!pattern" keeps what an earlier pattern left out.
        ignore = [
            ".venv",
            "__pycache__/",
            ".git",
        ]
        """;

    public static bool TryParse(string text, out JobConfig? config, out string error)
    {
        config = null;
        // Configs written on Windows (or by editors set to CRLF) arrive with CR LF; left in, the CR
        // ends up inside multi-line commands ("cd: can't cd to src^M") and ignore patterns.
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        TomlTable table;
        try
        {
            table = TomlSerializer.Deserialize<TomlTable>(text) ?? new TomlTable();
        }
        catch (Exception ex) when (ex is TomlException or InvalidOperationException or FormatException)
        {
            error = "The job configuration is not valid TOML: " + FirstLine(ex.Message);
            return false;
        }
        if (!TryReadList(table, "commands", out var commands, out error) ||
            !TryReadList(table, "outputs", out var outputs, out error) ||
            !TryReadList(table, "ignore", out var ignore, out error))
            return false;
        if (commands.Count == 0)
        {
            error = "The job configuration needs a non-empty 'commands' list, e.g. commands = [\"python train.py\"]";
            return false;
        }
        if (commands.Any(string.IsNullOrWhiteSpace))
        {
            error = "Every entry of 'commands' must be a non-empty command";
            return false;
        }
        foreach (var path in outputs)
        {
            if (path.StartsWith('/') || path.Split('/').Contains(".."))
            {
                error = $"'{path}': outputs are paths inside the project (no leading '/', no '..')";
                return false;
            }
        }
        // In ignore, a leading '/' anchors a pattern to the project root, as in .gitignore.
        if (ignore.FirstOrDefault(p => p.Split('/').Contains("..")) is { } outside)
        {
            error = $"'{outside}': ignore patterns are paths inside the project (no '..')";
            return false;
        }
        try
        {
            IgnoreRules.Parse(ignore);
        }
        catch (ArgumentException ex)
        {
            error = ex.Message;
            return false;
        }
        config = new JobConfig(commands, outputs, ignore);
        return true;
    }

    private static bool TryReadList(TomlTable table, string key, out List<string> values, out string error)
    {
        values = [];
        error = "";
        if (!table.TryGetValue(key, out var value))
            return true;
        if (value is not TomlArray array)
        {
            error = $"'{key}' must be a list of strings, e.g. {key} = [\"...\"]";
            return false;
        }
        foreach (var item in array)
        {
            if (item is not string text)
            {
                error = $"Every entry of '{key}' must be a string";
                return false;
            }
            values.Add(text);
        }
        return true;
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();
}
