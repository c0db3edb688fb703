using System.Net.Http.Json;
using OpenPool.Client;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Cli.Tests;

/// <summary><c>openpool object-storage …</c> in process against the in-process engine.</summary>
public sealed class CliObjectStorageTests : IDisposable
{
    private readonly EngineFactory _engine = new();
    private readonly TempDir _dir = new();

    public void Dispose()
    {
        _engine.Dispose();
        _dir.Dispose();
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(string key, params string[] args)
    {
        var client = new OpenPoolClient(_engine.CreateClient(), new OpenPoolClientOptions { Endpoint = new Uri("http://localhost/"), ApiKey = key });
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, stdout, stderr, new StringReader(""), client, interactive: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private async Task<string> KeyAsync(string email, string role)
    {
        var response = await _engine.Admin().PostAsJsonAsync("/admin/users", new { email, org_name = "lab", role });
        response.EnsureSuccessStatusCode();
        return (await response.Json()).GetProperty("api_key").GetString()!;
    }

    [Fact]
    public async Task The_object_storage_commands_mirror_tp()
    {
        var admin = await KeyAsync("admin@lab.example", "admin");
        var member = await KeyAsync("member@lab.example", "member");

        var before = await RunAsync(admin, "object-storage", "credentials");
        Assert.Equal(1, before.Code);
        Assert.Contains("tp object-storage enable", before.Err);

        var denied = await RunAsync(member, "object-storage", "enable");
        Assert.Equal(1, denied.Code);
        Assert.Contains("admin", denied.Err);

        var enabled = await RunAsync(admin, "object-storage", "enable");
        Assert.Equal(0, enabled.Code);
        Assert.Matches(@"Access Key ID:\s+OPKI[A-Z0-9]{16}", enabled.Out);
        Assert.Contains("Secret Access Key:", enabled.Out);
        var json = await RunAsync(member, "--json", "object-storage", "credentials");
        Assert.Equal(0, json.Code);
        var keyId = System.Text.Json.JsonDocument.Parse(json.Out).RootElement.GetProperty("access_key_id").GetString()!;
        Assert.Contains(keyId, enabled.Out);

        // rotate-keys asks first; --no-input goes ahead.
        Assert.Equal(1, (await RunAsync(admin, "object-storage", "rotate-keys")).Code);
        var rotated = await RunAsync(admin, "--no-input", "object-storage", "rotate-keys");
        Assert.Equal(0, rotated.Code);
        Assert.DoesNotContain(keyId, rotated.Out);

        // configure writes (upserts) the sections, keeping what else the files hold.
        var credentials = Path.Combine(_dir.Path, "aws", "credentials");
        var config = Path.Combine(_dir.Path, "aws", "config");
        Directory.CreateDirectory(Path.GetDirectoryName(credentials)!);
        await File.WriteAllTextAsync(credentials, "[default]\naws_access_key_id = KEEP\n\n[tp]\naws_access_key_id = OLD\n");
        var aws = await RunAsync(member, "object-storage", "configure", "aws", "--credentials-file", credentials, "--config-file", config);
        Assert.True(aws.Code == 0, aws.Err);
        var written = await File.ReadAllTextAsync(credentials);
        Assert.Contains("aws_access_key_id = KEEP", written);
        Assert.DoesNotContain("= OLD", written);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(written, @"^\[tp\]", System.Text.RegularExpressions.RegexOptions.Multiline));
        Assert.Contains("[profile tp]", await File.ReadAllTextAsync(config));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(credentials));
        var rcloneConf = Path.Combine(_dir.Path, "rclone.conf");
        var rclone = await RunAsync(member, "object-storage", "configure", "rclone", "--config", rcloneConf);
        Assert.True(rclone.Code == 0, rclone.Err);
        Assert.Contains("provider = Other", await File.ReadAllTextAsync(rcloneConf));
        var again = await RunAsync(member, "object-storage", "configure", "rclone", "--config", rcloneConf);
        Assert.Equal(0, again.Code);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(await File.ReadAllTextAsync(rcloneConf), @"^\[tp\]", System.Text.RegularExpressions.RegexOptions.Multiline));
        // Plain UTF-8 without a byte-order mark, which the tools refuse, and the real awscli reads the profile back.
        foreach (var file in new[] { credentials, config, rcloneConf })
            Assert.False((await File.ReadAllBytesAsync(file)).AsSpan().StartsWith((byte[])[0xEF, 0xBB, 0xBF]), $"{file} starts with a byte-order mark");
        var rotatedKeyId = System.Text.Json.JsonDocument.Parse((await RunAsync(member, "--json", "object-storage", "credentials")).Out).RootElement.GetProperty("access_key_id").GetString();
        Assert.Equal(rotatedKeyId, await AwsConfigureGetAsync(credentials, config, "aws_access_key_id"));
        Assert.Equal("s3v4", await AwsConfigureGetAsync(credentials, config, "s3.signature_version"));

        Assert.Equal(0, (await RunAsync(member, "object-storage", "bucket", "create", "cli-bucket")).Code);
        var ls = await RunAsync(member, "object-storage", "bucket", "ls");
        Assert.Contains("cli-bucket", ls.Out);
        var busy = await RunAsync(admin, "--no-input", "object-storage", "disable");
        Assert.Equal(1, busy.Code);
        Assert.Contains("cli-bucket", busy.Err);
        var rm = await RunAsync(member, "object-storage", "bucket", "rm", "cli-bucket");
        Assert.Equal(0, rm.Code);
        Assert.Contains("deleted", rm.Out);
        var disabled = await RunAsync(admin, "--no-input", "object-storage", "disable");
        Assert.Equal(0, disabled.Code);
        Assert.Contains("disabled", disabled.Out);
    }

    /// <summary>What the real awscli reads for profile tp from these files (<c>aws configure get</c>: no network).</summary>
    private static async Task<string> AwsConfigureGetAsync(string credentials, string config, string name)
    {
        var start = new System.Diagnostics.ProcessStartInfo("aws", ["configure", "get", name, "--profile", "tp"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
            Environment = { ["AWS_SHARED_CREDENTIALS_FILE"] = credentials, ["AWS_CONFIG_FILE"] = config },
        };
        using var aws = System.Diagnostics.Process.Start(start)!;
        var output = aws.StandardOutput.ReadToEndAsync();
        var error = aws.StandardError.ReadToEndAsync();
        await aws.WaitForExitAsync();
        Assert.True(aws.ExitCode == 0, $"aws configure get {name}: exit {aws.ExitCode}: {await error}");
        return (await output).Trim();
    }

    [Theory]
    [InlineData("", "[tp]\na = 1\n")]
    [InlineData("[other]\nx = 1\n", "[other]\nx = 1\n\n[tp]\na = 1\n")]
    [InlineData("[tp]\na = 0\n\n[other]\nx = 1\n", "[tp]\na = 1\n\n[other]\nx = 1\n")]
    [InlineData("[other]\nx = 1\n[tp]\nold = 2\n", "[other]\nx = 1\n[tp]\na = 1\n")]
    public void A_section_is_replaced_in_place_or_appended(string existing, string expected) =>
        Assert.Equal(expected, IniFile.Upsert(existing, "[tp]\na = 1\n"));
}
