using OpenPool.Client;
using OpenPool.Contracts;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Client.Tests;

public sealed class JobClientTests
{
    [Theory]
    [InlineData("src/__pycache__/x.pyc", true)]
    [InlineData("model.pyc", true)]
    [InlineData("keep.pyc", false)]
    [InlineData(".venv/bin/python", true)]
    [InlineData("data/raw/a.csv", true)]
    [InlineData("dataset/a.csv", false)]
    [InlineData("src/train.py", false)]
    [InlineData("notes/data/raw.txt", false)]
    public void Ignore_patterns_match_like_gitignore(string path, bool ignored) =>
        Assert.Equal(ignored, ProjectArchive.IsIgnored(path, isDirectory: false, ["__pycache__/", "*.pyc", "!keep.pyc", ".venv", "data/raw/"]));

    [Fact]
    public async Task The_native_archive_honours_negation_and_dotfiles_and_skips_ignored_directories()
    {
        using var project = new TempDir();
        foreach (var file in new[] { "train.py", "a.pyc", "keep.pyc", "src/b.pyc", "src/keep.pyc", ".env", ".git/config", "src/.hidden",
                     "build/keep.pyc", "sub/build" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(project.Path, file))!);
            await File.WriteAllTextAsync(Path.Combine(project.Path, file), file);
        }

        using var archive = new MemoryStream();
        await ProjectArchive.WriteAsync(project.Path, ["*.pyc", "!keep.pyc", ".*", "build/", "!build/keep.pyc"], archive);

        archive.Position = 0;
        var names = new List<string>();
        await using (var gzip = new System.IO.Compression.GZipStream(archive, System.IO.Compression.CompressionMode.Decompress))
        await using (var tar = new System.Formats.Tar.TarReader(gzip))
        {
            while (await tar.GetNextEntryAsync() is { } entry)
                names.Add(entry.Name);
        }
        // The root is kept despite ".*"; "build/keep.pyc" cannot be re-included below the ignored directory build/.
        Assert.Equal(["./keep.pyc", "./src/", "./src/keep.pyc", "./sub/", "./sub/build", "./train.py"], names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Push_uploads_only_what_the_rules_keep()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        await using var engine = await EngineProcess.StartAsync(data.Path, "--Simulated:ProvisionSeconds=0", "--Jobs:PythonVenv=false");
        var key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var client = new OpenPoolClient(new OpenPoolClientOptions { Endpoint = engine.Url, ApiKey = key });
        var cluster = await client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100" });
        await cluster.WaitForSuccessAsync();
        foreach (var file in new[] { "train.py", "a.pyc", "keep.pyc", "src/b.pyc", "src/keep.pyc", ".env", ".git/config" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(project.Path, file))!);
            await File.WriteAllTextAsync(Path.Combine(project.Path, file), file);
        }
        // CR LF as a Windows editor writes it; the SDK sends the text as is and the engine normalises it.
        const string toml = "commands = [\"find . -type f | sort | sed 's/^/seen: /'\"]\r\nignore = [\"*.pyc\", \"!keep.pyc\", \".*\"]\r\n";

        var push = await client.PushJobAsync(toml, cluster.Accepted.ClusterId, project.Path);
        Assert.True(push.Succeeded, string.Join("\n", push.Messages) + push.CloseReason);
        var listen = await client.ListenJobAsync(push.JobId!);

        Assert.Equal("success", listen.FinalStatus);
        var seen = string.Join("\n", listen.Messages).Split('\n').Where(l => l.StartsWith("seen: ", StringComparison.Ordinal)).Select(l => l[6..]);
        Assert.Equal(["./keep.pyc", "./src/keep.pyc", "./train.py"], seen);
    }

    [Fact]
    public async Task Push_uploads_natively_then_listen_and_download_work()
    {
        using var data = new TempDir();
        using var project = new TempDir();
        using var downloads = new TempDir();
        await using var engine = await EngineProcess.StartAsync(data.Path, "--Simulated:ProvisionSeconds=0", "--Jobs:PythonVenv=false");
        var key = (await File.ReadAllTextAsync(Path.Combine(data.Path, "admin.key"))).Trim();
        var client = new OpenPoolClient(new OpenPoolClientOptions { Endpoint = engine.Url, ApiKey = key });
        var cluster = await client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100" });
        await cluster.WaitForSuccessAsync();

        Directory.CreateDirectory(Path.Combine(project.Path, "data", "raw"));
        await File.WriteAllTextAsync(Path.Combine(project.Path, "data", "raw", "big.bin"), "left out");
        await File.WriteAllTextAsync(Path.Combine(project.Path, "train.sh"), "mkdir -p out && echo trained > out/model.txt && echo done-training\n");
        const string toml = """
            commands = ["test ! -e data/raw && echo raw-data-not-uploaded", "sh train.sh"]
            outputs = ["out/"]
            ignore = ["data/raw/"]
            """;
        var pushMessages = new List<string>();
        var push = await client.PushJobAsync(toml, cluster.Accepted.ClusterId, project.Path, onMessage: pushMessages.Add);
        Assert.True(push.Succeeded, string.Join("\n", push.Messages) + push.CloseReason);
        Assert.StartsWith("j-", push.JobId);
        Assert.NotEmpty(pushMessages);

        var listen = await client.ListenJobAsync(push.JobId!);
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains(listen.Messages, m => m.Contains("raw-data-not-uploaded", StringComparison.Ordinal));
        Assert.Contains(listen.Messages, m => m.Contains("done-training", StringComparison.Ordinal));

        var written = await client.DownloadJobOutputsAsync(push.JobId!, downloads.Path);
        Assert.Single(written);
        Assert.Equal("trained\n", await File.ReadAllTextAsync(Path.Combine(downloads.Path, "out", "model.txt")));
        Assert.Equal("completed", (await client.GetJobAsync(push.JobId!)).JobInfo.Status);

        var refused = await client.PushJobAsync("commands = [", cluster.Accepted.ClusterId, project.Path);
        Assert.False(refused.Succeeded);
        Assert.Contains(refused.Messages, m => m.Contains("TOML", StringComparison.Ordinal));
    }
}
