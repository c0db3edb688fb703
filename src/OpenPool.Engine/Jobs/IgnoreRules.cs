using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

// This file is also compiled into OpenPool.Client (linked from its project file), so that the SDK's
// own upload and the engine's unpacking leave out exactly the same paths. It must depend on nothing
// but the base class library.
namespace OpenPool.Engine.Jobs;

/// <summary>
/// A job's <c>ignore</c> list with <c>.gitignore</c> semantics. Paths are relative to the project
/// root and '/'-separated; a leading <c>./</c> and a trailing '/' are tolerated; the root itself
/// (<c>""</c> or <c>"."</c>) is never ignored.
/// </summary>
/// <remarks>
/// As in git, a path inside an ignored directory is ignored whatever later patterns say: nothing can
/// be re-included below an excluded directory. <see cref="IsIgnored"/> judges one entry on the
/// assumption that its parent directories have already been judged and kept (a walker that does not
/// descend into ignored directories); <see cref="IsIgnoredWithParents"/> judges a path on its own,
/// for entries that arrive in any order, such as those of an archive. Symbolic links are not
/// directories here (git records them as links), so a directory-only pattern never matches one.
/// </remarks>
internal sealed class IgnoreRules
{
    private const RegexOptions MatcherOptions = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant | RegexOptions.Singleline;

    private readonly IgnorePattern[] _patterns;

    private IgnoreRules(IgnorePattern[] patterns) => _patterns = patterns;

    public static IgnoreRules None { get; } = new([]);

    /// <summary>The patterns that take part in matching, in their original order (blank lines and comments dropped).</summary>
    public IReadOnlyList<IgnorePattern> Patterns => _patterns;

    /// <summary>True when some pattern re-includes (<c>!…</c>): then what is kept cannot be told from the positive patterns alone.</summary>
    public bool HasNegation => _patterns.Any(p => p.Negated);

    /// <summary>Compiles the lines of an ignore list.</summary>
    /// <exception cref="ArgumentException">A pattern is too large to compile into a matcher.</exception>
    public static IgnoreRules Parse(IReadOnlyList<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var patterns = new List<IgnorePattern>(lines.Count);
        foreach (var line in lines)
        {
            if (IgnorePattern.TryParse(line, out var pattern))
                patterns.Add(pattern);
        }
        return new IgnoreRules([.. patterns]);
    }

    /// <summary>
    /// Whether this entry is left out, given that every parent directory of it is kept (the last
    /// matching pattern decides; a negated one keeps). Callers that walk a tree check a directory
    /// before its contents and do not descend into an ignored one.
    /// </summary>
    public bool IsIgnored(string relativePath, bool isDirectory)
    {
        var path = Normalise(relativePath);
        if (path.Length == 0)
            return false;
        var name = path[(path.LastIndexOf('/') + 1)..];
        for (var i = _patterns.Length - 1; i >= 0; i--)
        {
            var pattern = _patterns[i];
            if (pattern.Matches(path, name, isDirectory))
                return !pattern.Negated;
        }
        return false;
    }

    /// <summary>Whether this entry is left out, itself or because one of its parent directories is.</summary>
    public bool IsIgnoredWithParents(string relativePath, bool isDirectory)
    {
        var path = Normalise(relativePath);
        if (_patterns.Length == 0 || path.Length == 0)
            return false;
        for (var slash = path.IndexOf('/'); slash >= 0; slash = path.IndexOf('/', slash + 1))
        {
            if (IsIgnored(path[..slash], isDirectory: true))
                return true;
        }
        return IsIgnored(path, isDirectory);
    }

    private static string Normalise(string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        var path = relativePath;
        while (path.StartsWith("./", StringComparison.Ordinal))
            path = path[2..];
        path = path.TrimEnd('/');
        return path == "." ? "" : path;
    }

    /// <summary>One compiled line of the list.</summary>
    /// <param name="Glob">The pattern without its '!', trailing '/' and leading '/'; escapes kept.</param>
    /// <param name="Negated">It began with '!': a match keeps the path.</param>
    /// <param name="DirectoryOnly">It ended with '/': it matches directories only.</param>
    /// <param name="Anchored">It held a '/' before its end: it matches the whole path from the root, else a name at any depth.</param>
    internal sealed record IgnorePattern(string Glob, bool Negated, bool DirectoryOnly, bool Anchored)
    {
        /// <summary>Null for a pattern git would never match (an unclosed '[', a trailing '\', an unknown [:class:]).</summary>
        private Regex? Matcher { get; init; }

        /// <summary>True when the pattern can match something (see <see cref="Matcher"/>).</summary>
        public bool CanMatch => Matcher is not null;

        public bool Matches(string path, string name, bool isDirectory) =>
            Matcher is { } matcher && (isDirectory || !DirectoryOnly) && matcher.IsMatch(Anchored ? path : name);

        public static bool TryParse(string line, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IgnorePattern? pattern)
        {
            pattern = null;
            var text = TrimTrailingSpaces(line);
            if (text.Length == 0 || text[0] == '#')
                return false;
            var negated = text[0] == '!';
            if (negated)
                text = text[1..];
            var directoryOnly = text.EndsWith('/');
            if (directoryOnly)
                text = text[..^1];
            var anchored = text.Contains('/', StringComparison.Ordinal);
            if (text.StartsWith('/'))
                text = text[1..];
            if (text.Length == 0)
                return false;
            var source = GlobToRegex(text);
            Regex? matcher;
            try
            {
                matcher = source is null ? null : new Regex(source, MatcherOptions);
            }
            catch (NotSupportedException ex)
            {
                throw new ArgumentException($"The ignore pattern '{line}' is too complex to match.", ex);
            }
            pattern = new IgnorePattern(text, negated, directoryOnly, anchored) { Matcher = matcher };
            return true;
        }

        // git drops trailing spaces unless a backslash quotes them.
        private static string TrimTrailingSpaces(string line)
        {
            var end = 0;
            for (var i = 0; i < line.Length; i++)
            {
                if (line[i] == '\\' && i + 1 < line.Length)
                {
                    i++;
                    end = i + 1;
                }
                else if (line[i] != ' ')
                {
                    end = i + 1;
                }
            }
            return line[..end];
        }

        /// <summary>The anchored regex for a glob, or null when git's matcher would give up on it.</summary>
        private static string? GlobToRegex(string glob)
        {
            var regex = new StringBuilder(@"\A");
            var i = 0;
            while (i < glob.Length)
            {
                var c = glob[i];
                switch (c)
                {
                    case '*':
                        var run = i;
                        while (i < glob.Length && glob[i] == '*')
                            i++;
                        var startsSegment = run == 0 || glob[run - 1] == '/';
                        var endsSegment = i == glob.Length || glob[i] == '/';
                        if (i - run >= 2 && startsSegment && endsSegment)
                        {
                            if (i == glob.Length)
                            {
                                regex.Append(".*");
                            }
                            else
                            {
                                // "**/" is zero or more whole directories, so "a/**/b" also matches "a/b".
                                regex.Append("(?:.*/)?");
                                i++;
                            }
                        }
                        else
                        {
                            regex.Append("[^/]*");
                        }
                        continue;
                    case '?':
                        regex.Append("[^/]");
                        break;
                    case '[':
                        var end = AppendClass(glob, i, regex);
                        if (end < 0)
                            return null;
                        i = end;
                        break;
                    case '\\':
                        if (i + 1 == glob.Length)
                            return null;
                        i++;
                        AppendLiteral(regex, glob[i]);
                        break;
                    default:
                        AppendLiteral(regex, c);
                        break;
                }
                i++;
            }
            return regex.Append(@"\z").ToString();
        }

        private static void AppendLiteral(StringBuilder regex, char c) => regex.Append(Regex.Escape(c.ToString()));

        /// <summary>Appends the class opened at <paramref name="open"/>; returns the index of its ']', or -1 when it never closes or is malformed.</summary>
        private static int AppendClass(string glob, int open, StringBuilder regex)
        {
            var members = new StringBuilder();
            var i = open + 1;
            var negated = i < glob.Length && glob[i] is '!' or '^';
            if (negated)
                i++;
            var first = true;
            while (i < glob.Length && (glob[i] != ']' || first))
            {
                first = false;
                if (glob[i] == '[' && i + 1 < glob.Length && glob[i + 1] == ':')
                {
                    var close = glob.IndexOf(":]", i + 2, StringComparison.Ordinal);
                    if (close < 0 || PosixClass(glob[(i + 2)..close]) is not { } ranges)
                        return -1;
                    members.Append(ranges);
                    i = close + 2;
                    continue;
                }
                if (!TryClassChar(glob, ref i, out var low))
                    return -1;
                if (i + 1 < glob.Length && glob[i] == '-' && glob[i + 1] != ']')
                {
                    i++;
                    if (!TryClassChar(glob, ref i, out var high))
                        return -1;
                    // A reversed range matches nothing in git, and .NET refuses it.
                    if (low <= high)
                        members.Append(Escaped(low)).Append('-').Append(Escaped(high));
                    continue;
                }
                members.Append(Escaped(low));
            }
            if (i >= glob.Length)
                return -1;
            if (members.Length == 0)
            {
                // Only reversed ranges: the class matches nothing, or with '!' anything but '/'.
                if (!negated)
                    return -1;
                regex.Append("[^/]");
                return i;
            }
            // git's matcher never lets a class match '/' in a path.
            regex.Append('[');
            if (negated)
                regex.Append('^');
            regex.Append(members).Append("-[/]]");
            return i;
        }

        private static bool TryClassChar(string glob, ref int i, out char c)
        {
            if (glob[i] == '\\')
            {
                if (i + 1 >= glob.Length)
                {
                    c = '\0';
                    return false;
                }
                i++;
            }
            c = glob[i];
            i++;
            return true;
        }

        private static string Escaped(char c) => @"\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture);

        // git's classes are ASCII-only (it ignores the locale).
        private static string? PosixClass(string name) => name switch
        {
            "alnum" => "a-zA-Z0-9",
            "alpha" => "a-zA-Z",
            "blank" => @" \t",
            "cntrl" => @"\u0000-\u001F\u007F",
            "digit" => "0-9",
            "graph" => @"\u0021-\u007E",
            "lower" => "a-z",
            "print" => @"\u0020-\u007E",
            "punct" => @"\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E",
            "space" => @" \t\n\r\f\v",
            "upper" => "A-Z",
            "xdigit" => "0-9A-Fa-f",
            _ => null,
        };
    }
}
