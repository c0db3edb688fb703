using OpenPool.Engine.Jobs;

namespace OpenPool.Engine.Tests.Jobs;

public sealed class IgnoreRulesTests
{
    // Patterns are one per line; "/" in a path ends a directory name, "d" marks the path itself as a directory.
    [Theory]
    // ".*": dotfiles at any depth, never the root.
    [InlineData(".*", ".env", "f", true)]
    [InlineData(".*", ".git", "d", true)]
    [InlineData(".*", ".git/config", "f", true)]
    [InlineData(".*", "src/.x.pyc", "f", true)]
    [InlineData(".*", "", "d", false)]
    [InlineData(".*", ".", "d", false)]
    [InlineData(".*", "./", "d", false)]
    [InlineData(".*", "src", "d", false)]
    [InlineData(".*", "src/a.env", "f", false)]
    [InlineData(".*", "./.env", "f", true)]
    // Negation, last match wins.
    [InlineData("*.pyc\n!keep.pyc", "a.pyc", "f", true)]
    [InlineData("*.pyc\n!keep.pyc", "src/b.pyc", "f", true)]
    [InlineData("*.pyc\n!keep.pyc", ".hidden.pyc", "f", true)]
    [InlineData("*.pyc\n!keep.pyc", "keep.pyc", "f", false)]
    [InlineData("*.pyc\n!keep.pyc", "src/keep.pyc", "f", false)]
    [InlineData("!keep.pyc\n*.pyc", "keep.pyc", "f", true)]
    [InlineData("logs/\n!logs/", "logs", "d", false)]
    [InlineData("*.PYC", "a.pyc", "f", false)]
    // Nothing is re-included below an excluded directory; excluding its contents instead allows it.
    [InlineData("dir/\n!dir/keep", "dir/keep", "f", true)]
    [InlineData("dir\n!dir/keep", "dir/keep", "f", true)]
    [InlineData("dir/*\n!dir/keep", "dir/keep", "f", false)]
    [InlineData("dir/*\n!dir/keep", "dir/other", "f", true)]
    [InlineData("dir/*\n!dir/keep", "dir", "d", false)]
    // A trailing '/' means directories only.
    [InlineData("build/", "build", "d", true)]
    [InlineData("build/", "build/out.o", "f", true)]
    [InlineData("build/", "build", "f", false)]
    [InlineData("build/", "sub/build", "f", false)]
    [InlineData("build/", "sub/build", "d", true)]
    [InlineData("build", "sub/build", "f", true)]
    // A slash at the start or in the middle anchors to the root; otherwise a name at any depth.
    [InlineData("/data", "data", "d", true)]
    [InlineData("/data", "data/d.csv", "f", true)]
    [InlineData("/data", "x/data", "d", false)]
    [InlineData("data", "data", "d", true)]
    [InlineData("data", "x/data", "d", true)]
    [InlineData("data", "x/data/d.csv", "f", true)]
    [InlineData("data", "xdata", "f", false)]
    [InlineData("data", "data.csv", "f", false)]
    [InlineData("doc/frotz/", "doc/frotz", "d", true)]
    [InlineData("doc/frotz/", "a/doc/frotz", "d", false)]
    [InlineData("a/*.txt", "a/b.txt", "f", true)]
    [InlineData("a/*.txt", "a/c/d.txt", "f", false)]
    [InlineData("a/*.txt", "b.txt", "f", false)]
    // '*' and '?' stop at '/'.
    [InlineData("a*b", "a/b", "f", false)]
    [InlineData("x/a*b", "x/a/b", "f", false)]
    [InlineData("x/a?b", "x/a/b", "f", false)]
    [InlineData("x/a?b", "x/acb", "f", true)]
    [InlineData("?.txt", "a.txt", "f", true)]
    [InlineData("?.txt", "ab.txt", "f", false)]
    [InlineData("*", "anything/at/all", "f", true)]
    [InlineData("*.pyc", "a\nb.pyc", "f", true)]
    // "**": leading, trailing, middle, and elsewhere an ordinary '*'.
    [InlineData("**/logs", "logs", "d", true)]
    [InlineData("**/logs", "a/b/logs", "f", true)]
    [InlineData("**/logs", "a/logs/x.log", "f", true)]
    [InlineData("**/logs", "logsx", "f", false)]
    [InlineData("**/logs/debug.log", "x/logs/debug.log", "f", true)]
    [InlineData("**/logs/debug.log", "x/logs/y/debug.log", "f", false)]
    [InlineData("logs/**", "logs", "d", false)]
    [InlineData("logs/**", "logs/a", "f", true)]
    [InlineData("logs/**", "logs/a/b", "f", true)]
    [InlineData("logs/**", "x/logs/a", "f", false)]
    [InlineData("a/**/b", "a/b", "f", true)]
    [InlineData("a/**/b", "a/x/b", "f", true)]
    [InlineData("a/**/b", "a/x/y/b", "f", true)]
    [InlineData("a/**/b", "x/a/b", "f", false)]
    [InlineData("a/**/b", "a/xb", "f", false)]
    [InlineData("a/**/", "a/x", "f", false)]
    [InlineData("a/**/", "a/x/y", "d", true)]
    [InlineData("**", "deep/file", "f", true)]
    [InlineData("a**b", "axxb", "f", true)]
    [InlineData("x/a**b", "x/a/b", "f", false)]
    // Character classes.
    [InlineData("[abc].txt", "b.txt", "f", true)]
    [InlineData("[abc].txt", "d.txt", "f", false)]
    [InlineData("[!abc].txt", "d.txt", "f", true)]
    [InlineData("[!abc].txt", "a.txt", "f", false)]
    [InlineData("[^abc].txt", "a.txt", "f", false)]
    [InlineData("[a-c]x", "bx", "f", true)]
    [InlineData("[a-c]x", "dx", "f", false)]
    [InlineData("[z-a]x", "mx", "f", false)]
    [InlineData("[]]x", "]x", "f", true)]
    [InlineData("[[:digit:]]*.log", "1.log", "f", true)]
    [InlineData("[[:digit:]]*.log", "a.log", "f", false)]
    [InlineData("[[:nosuch:]]", "a", "f", false)]
    [InlineData("[abc", "[abc", "f", false)]
    [InlineData("[abc", "a", "f", false)]
    [InlineData("a[/]b", "a/b", "f", false)]
    [InlineData("x/a[!c]b", "x/a/b", "f", false)]
    [InlineData("[\\]]", "]", "f", true)]
    // Escapes, comments, blanks and trailing spaces.
    [InlineData("\\!important", "!important", "f", true)]
    [InlineData("\\#notes", "#notes", "f", true)]
    [InlineData("\\*", "*", "f", true)]
    [InlineData("\\*", "a", "f", false)]
    [InlineData("\\?", "a", "f", false)]
    [InlineData("a\\ ", "a ", "f", true)]
    [InlineData("a  ", "a", "f", true)]
    [InlineData("a  ", "a ", "f", false)]
    [InlineData("trailing\\", "trailing", "f", false)]
    [InlineData("# notes", "# notes", "f", false)]
    [InlineData("\n   \n# *", "anything", "f", false)]
    [InlineData("!", "!", "f", false)]
    [InlineData("/", "x", "d", false)]
    public void Paths_are_judged_like_gitignore(string lines, string path, string kind, bool ignored)
    {
        var rules = IgnoreRules.Parse(lines.Split('\n'));
        Assert.Equal(ignored, rules.IsIgnoredWithParents(path, kind == "d"));
    }

    [Fact]
    public void IsIgnored_judges_one_entry_and_leaves_the_parents_to_the_walker()
    {
        var rules = IgnoreRules.Parse(["dir/", "!dir/keep"]);
        Assert.True(rules.IsIgnored("dir", isDirectory: true));
        // On its own the entry is re-included; a walker never gets here because it skipped "dir".
        Assert.False(rules.IsIgnored("dir/keep", isDirectory: false));
        Assert.True(rules.IsIgnoredWithParents("dir/keep", isDirectory: false));
    }

    [Fact]
    public void No_patterns_ignore_nothing()
    {
        Assert.False(IgnoreRules.Parse([]).IsIgnoredWithParents("a/b/c", isDirectory: false));
        Assert.False(IgnoreRules.None.IsIgnored(".git", isDirectory: true));
    }

    [Fact]
    public void Parsing_reports_what_each_line_means()
    {
        var rules = IgnoreRules.Parse(["# comment", "", "!/build/", "**/logs", "name"]);
        Assert.True(rules.HasNegation);
        Assert.Collection(rules.Patterns,
            p => Assert.Equal(("build", true, true, true), (p.Glob, p.Negated, p.DirectoryOnly, p.Anchored)),
            p => Assert.Equal(("**/logs", false, false, true), (p.Glob, p.Negated, p.DirectoryOnly, p.Anchored)),
            p => Assert.Equal(("name", false, false, false), (p.Glob, p.Negated, p.DirectoryOnly, p.Anchored)));
        Assert.False(IgnoreRules.Parse(["*.pyc"]).HasNegation);
    }

    [Fact]
    public void Pathological_patterns_are_answered_without_backtracking()
    {
        // With a backtracking matcher each of these takes exponential time on a path that almost matches.
        var rules = IgnoreRules.Parse([string.Concat(Enumerable.Repeat("*a", 40)) + "*b", string.Concat(Enumerable.Repeat("**/a", 30)) + "/b"]);
        var name = new string('a', 20_000);
        Assert.False(rules.IsIgnoredWithParents(name, isDirectory: false));
        Assert.False(rules.IsIgnoredWithParents(string.Join('/', Enumerable.Repeat("a", 200)), isDirectory: false));
        Assert.True(rules.IsIgnoredWithParents(name + "b", isDirectory: false));
    }
}
