using System.Diagnostics;
using System.Text.Json;
using OpenPool.Engine.Jobs;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>
/// Runs the upload command the official CLI gets, with /bin/sh in a real project directory and curl
/// writing to a file:// URL, and compares the archive with what the ignore rules keep: tar may leave
/// out less than the rules (the engine filters again when it unpacks) but never a path they keep.
/// </summary>
public sealed class UploadCommandTests : IDisposable
{
    private readonly TempDir _project = new();
    private readonly TempDir _out = new();

    public void Dispose()
    {
        _project.Dispose();
        _out.Dispose();
    }

    private static readonly string[] Files =
    [
        ".env", ".git/config", ".venv/bin/python", "keep.pyc", "a.pyc", "src/train.py", "src/__pycache__/m.pyc", "src/keep.pyc",
        "src/.hidden", "build/out.o", "build/.stamp", "sub/build", "data/d.csv", "x/data/d.csv", "logs/l.txt", "x/logs/l.txt",
        "-C", "--exclude=src", "it's", "two words.txt",
    ];

    public static TheoryData<string[], string[]> Cases => new()
    {
        { [".*"], [".env", ".git", ".venv", "src/.hidden", "build/.stamp"] },
        // A negation: tar cannot express it, so everything goes up and the engine filters.
        { ["*.pyc", "!keep.pyc"], [] },
        { ["build/"], ["build/out.o", "build/.stamp"] },
        { ["/data"], ["data"] },
        { ["data"], ["data", "x/data"] },
        { ["**/logs"], ["logs", "x/logs"] },
        { ["logs/**"], ["logs/l.txt"] },
        { [], [] },
        { [".venv", ".git", "__pycache__/", "*.pyc"], [".venv", ".git", "src/__pycache__/m.pyc", "a.pyc", "keep.pyc", "src/keep.pyc"] },
        { ["it's", "-C", "two words.txt"], ["it's", "-C", "two words.txt"] },
        // Classes, escapes and a middle "**" are left to the engine.
        { ["[ab].pyc", "src/**/m.pyc", "\\#x"], [] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_archive_keeps_everything_the_rules_keep(string[] ignore, string[] leftOutByTar)
    {
        foreach (var file in Files)
            Write(file);
        Directory.CreateDirectory(Path.Combine(_project.Path, "empty"));
        var rules = IgnoreRules.Parse(ignore);

        var archived = await UploadAsync(ignore);

        var (all, kept) = Walk(rules);
        Assert.Subset(archived, kept);
        Assert.Subset(all, archived);
        foreach (var path in leftOutByTar)
        {
            Assert.True(rules.IsIgnoredWithParents(path, Directory.Exists(Path.Combine(_project.Path, path))), path);
            Assert.DoesNotContain(path, archived);
        }
        if (leftOutByTar.Length == 0)
            Assert.Equal(all, archived);
        Assert.DoesNotContain(archived, name => name is "" or "." || name.StartsWith('/') || name.StartsWith("./", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(".*")]
    [InlineData("*")]
    [InlineData("")]
    public async Task An_empty_project_uploads_an_empty_archive(string pattern)
    {
        var archived = await UploadAsync(pattern.Length == 0 ? [] : [pattern]);
        Assert.Empty(archived);
    }

    [Fact]
    public async Task Everything_ignored_still_uploads_a_valid_archive()
    {
        Write("a.txt");
        Write(".b");
        var archived = await UploadAsync(["*"]);
        Assert.Empty(archived);
    }

    private void Write(string relative)
    {
        var path = Path.Combine(_project.Path, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, relative);
    }

    /// <summary>Runs the command as the official CLI does and lists the archive it uploaded (names without "./" or a trailing '/').</summary>
    private async Task<HashSet<string>> UploadAsync(string[] ignore)
    {
        var target = Path.Combine(_out.Path, "upload.tgz");
        var job = new JobRecord { IgnorePatterns = JsonSerializer.Serialize(ignore), System = "Linux" };
        var (exitCode, _, stderr) = await RunAsync("/bin/sh", _project.Path, "-c", JobRunner.UploadCommand(job, new Uri(target).AbsoluteUri));
        Assert.True(exitCode == 0, stderr);
        var (listCode, listing, listErr) = await RunAsync("tar", _out.Path, "-tzf", target);
        Assert.True(listCode == 0, listErr);
        return listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(n => n.TrimEnd('/')).ToHashSet();
    }

    /// <summary>Every path of the project, and those the rules keep (walking parents first, as the contract asks).</summary>
    private (HashSet<string> All, HashSet<string> Kept) Walk(IgnoreRules rules)
    {
        var all = new HashSet<string>();
        var kept = new HashSet<string>();
        void Visit(string directory, bool parentKept)
        {
            foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
            {
                var relative = Path.GetRelativePath(_project.Path, entry.FullName);
                var isDirectory = entry is DirectoryInfo;
                all.Add(relative);
                var keep = parentKept && !rules.IsIgnored(relative, isDirectory);
                if (keep)
                    kept.Add(relative);
                if (isDirectory)
                    Visit(entry.FullName, keep);
            }
        }
        Visit(_project.Path, parentKept: true);
        return (all, kept);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string program, string directory, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }
}
