using System.Diagnostics;
using System.Security.Cryptography;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// The S3 endpoint through the command-line clients people use: awscli, rclone and s3cmd, each
/// with keys from <c>POST /object-storage/enable</c>, against a real engine process.
/// </summary>
public sealed class S3ClientToolTests : IAsyncLifetime, IDisposable
{
    private S3Engine _engine = null!;
    private Tenant _tenant = null!;
    private readonly Infrastructure.TempDir _work = new();

    public async Task InitializeAsync()
    {
        _engine = await S3Engine.StartAsync();
        _tenant = await _engine.TenantAsync("lab-tools");
        // A tree with a file past awscli's 8 MiB multipart threshold (and rclone's and s3cmd's, set to 5 MiB).
        var tree = Path.Combine(_work.Path, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "sub", "deeper"));
        await File.WriteAllTextAsync(Path.Combine(tree, "a.txt"), "alpha");
        await File.WriteAllTextAsync(Path.Combine(tree, "sub", "b.txt"), "bravo");
        await File.WriteAllTextAsync(Path.Combine(tree, "sub", "deeper", "c d.txt"), "charlie with a space");
        await File.WriteAllBytesAsync(Path.Combine(tree, "big.bin"), RandomNumberGenerator.GetBytes(17 * 1024 * 1024 + 7));
    }

    public async Task DisposeAsync() => await _engine.DisposeAsync();

    public void Dispose() => _work.Dispose();

    private string Tree => Path.Combine(_work.Path, "tree");

    private async Task<string> RunAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _work.Path };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["AWS_ACCESS_KEY_ID"] = _tenant.AccessKeyId;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = _tenant.SecretAccessKey;
        start.Environment["AWS_DEFAULT_REGION"] = "us-east-1";
        start.Environment["AWS_CONFIG_FILE"] = Path.Combine(_work.Path, "no-aws-config");
        start.Environment["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(_work.Path, "no-aws-credentials");
        // A CA bundle from the environment makes rclone refuse its HTTP transport; nothing here is TLS.
        start.Environment.Remove("AWS_CA_BUNDLE");
        start.Environment["RCLONE_CONFIG"] = Path.Combine(_work.Path, "rclone.conf");
        start.Environment["RCLONE_CONFIG_OP_TYPE"] = "s3";
        start.Environment["RCLONE_CONFIG_OP_PROVIDER"] = "Other";
        start.Environment["RCLONE_CONFIG_OP_ACCESS_KEY_ID"] = _tenant.AccessKeyId;
        start.Environment["RCLONE_CONFIG_OP_SECRET_ACCESS_KEY"] = _tenant.SecretAccessKey;
        start.Environment["RCLONE_CONFIG_OP_ENDPOINT"] = _engine.S3Url.ToString();
        start.Environment["RCLONE_CONFIG_OP_REGION"] = "us-east-1";
        start.Environment["RCLONE_CONFIG_OP_FORCE_PATH_STYLE"] = "true";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', args)} exited {process.ExitCode}:\n{output}\nengine:\n{_engine.Engine.Output}");
        return output;
    }

    private Task<string> AwsAsync(params string[] args) => RunAsync("aws", ["--endpoint-url", _engine.S3Url.ToString(), .. args]);

    private void AssertSameTree(string copy)
    {
        var expected = Directory.EnumerateFiles(Tree, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Tree, f)).Order().ToList();
        var actual = Directory.EnumerateFiles(copy, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(copy, f)).Order().ToList();
        Assert.Equal(expected, actual);
        foreach (var file in expected)
            Assert.True(File.ReadAllBytes(Path.Combine(Tree, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(copy, file))), file);
    }

    [Fact]
    public async Task Awscli_copies_syncs_lists_and_removes()
    {
        await AwsAsync("s3", "mb", "s3://aws-tools");
        await AwsAsync("s3", "cp", Path.Combine(Tree, "big.bin"), "s3://aws-tools/single/big.bin");
        var head = await AwsAsync("s3api", "head-object", "--bucket", "aws-tools", "--key", "single/big.bin");
        Assert.Contains("-3\\\"", head); // 17 MiB in awscli's 8 MiB parts: a multipart ETag of 3 parts
        await AwsAsync("s3", "sync", Tree, "s3://aws-tools/synced");
        var listing = await AwsAsync("s3", "ls", "--recursive", "s3://aws-tools/synced/");
        foreach (var name in new[] { "synced/a.txt", "synced/sub/b.txt", "synced/sub/deeper/c d.txt", "synced/big.bin" })
            Assert.Contains(name, listing);
        // A second sync finds nothing to do.
        Assert.DoesNotContain("upload:", await AwsAsync("s3", "sync", Tree, "s3://aws-tools/synced"));
        var back = Path.Combine(_work.Path, "aws-back");
        await AwsAsync("s3", "sync", "s3://aws-tools/synced", back);
        AssertSameTree(back);
        await AwsAsync("s3", "rm", "--recursive", "s3://aws-tools/");
        Assert.Equal("", (await AwsAsync("s3", "ls", "--recursive", "s3://aws-tools/")).Trim());
        await AwsAsync("s3", "rb", "s3://aws-tools");
    }

    [Fact]
    public async Task Rclone_copies_checks_and_purges()
    {
        await RunAsync("rclone", "mkdir", "op:rclone-tools");
        await RunAsync("rclone", "copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", Tree, "op:rclone-tools/t");
        await RunAsync("rclone", "check", Tree, "op:rclone-tools/t"); // sizes and hashes, or a non-zero exit
        var back = Path.Combine(_work.Path, "rclone-back");
        await RunAsync("rclone", "copy", "op:rclone-tools/t", back);
        AssertSameTree(back);
        await RunAsync("rclone", "purge", "op:rclone-tools");
        Assert.DoesNotContain("rclone-tools", await RunAsync("rclone", "lsd", "op:"));
    }

    [Fact]
    public async Task S3cmd_puts_gets_lists_and_deletes()
    {
        var host = _engine.S3Url.Authority;
        var config = Path.Combine(_work.Path, "s3cfg");
        await File.WriteAllTextAsync(config,
            $"[default]\naccess_key = {_tenant.AccessKeyId}\nsecret_key = {_tenant.SecretAccessKey}\nhost_base = {host}\nhost_bucket = {host}\n" +
            "use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n");
        Task<string> S3cmd(params string[] args) => RunAsync("s3cmd", ["-c", config, .. args]);
        await S3cmd("mb", "s3://s3cmd-tools");
        await S3cmd("put", "--multipart-chunk-size-mb=5", Path.Combine(Tree, "big.bin"), "s3://s3cmd-tools/big.bin");
        await S3cmd("put", Path.Combine(Tree, "a.txt"), "s3://s3cmd-tools/dir/a.txt");
        var listing = await S3cmd("ls", "--recursive", "s3://s3cmd-tools");
        Assert.Contains("s3://s3cmd-tools/big.bin", listing);
        Assert.Contains("s3://s3cmd-tools/dir/a.txt", listing);
        Assert.Contains("FULL_CONTROL", await S3cmd("info", "s3://s3cmd-tools/dir/a.txt"));
        var back = Path.Combine(_work.Path, "s3cmd-big.bin");
        await S3cmd("get", "s3://s3cmd-tools/big.bin", back);
        Assert.True(File.ReadAllBytes(Path.Combine(Tree, "big.bin")).AsSpan().SequenceEqual(File.ReadAllBytes(back)));
        await S3cmd("del", "--recursive", "--force", "s3://s3cmd-tools");
        await S3cmd("rb", "s3://s3cmd-tools");
        Assert.DoesNotContain("s3cmd-tools", await S3cmd("ls"));
    }
}
