using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// <c>tp object-storage configure aws|rclone</c> end to end: a real engine process, the requests the
/// official CLI sends, its upsert of the returned section into the tool's file, and then the real
/// awscli and rclone with nothing else set. The official CLI (a Python package) cannot be installed
/// here, so <see cref="TpCli"/> emulates its calls (headers, paths) and its <c>_upsert_ini_section</c>.
/// </summary>
public sealed class ConfigureToolsTests : IAsyncLifetime, IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TempDir _home = new();
    private EngineProcess _engine = null!;
    private TpCli _tp = null!;

    public async Task InitializeAsync()
    {
        _engine = await EngineProcess.StartAsync(_dir.Path, "--ObjectStorage:Url", "http://127.0.0.1:0");
        var admin = _engine.Client(File.ReadAllText(Path.Combine(_dir.Path, "admin.key")).Trim());
        var created = await admin.PostAsJsonAsync("/admin/users", new { email = "admin@lab.example", org_name = "lab", role = "admin" });
        created.EnsureSuccessStatusCode();
        _tp = new TpCli(_engine.Url, (await created.Json()).GetProperty("api_key").GetString()!, _home.Path);
        Assert.Equal(HttpStatusCode.OK, (await _tp.SendAsync(HttpMethod.Post, "/object-storage/enable")).StatusCode);
    }

    public async Task DisposeAsync()
    {
        _tp.Dispose();
        await _engine.DisposeAsync();
    }

    public void Dispose()
    {
        _dir.Dispose();
        _home.Dispose();
    }

    [Fact]
    public async Task Aws_profile_tp_lists_copies_and_removes_with_nothing_else_set()
    {
        Assert.Equal(HttpStatusCode.Created, (await _tp.SendAsync(HttpMethod.Put, "/object-storage/bucket/create/aws-proof")).StatusCode);
        // Files that already hold other profiles, and a stale tp one, as a user's would.
        Directory.CreateDirectory(Path.Combine(_home.Path, ".aws"));
        await File.WriteAllTextAsync(Path.Combine(_home.Path, ".aws", "credentials"),
            "[default]\naws_access_key_id = AKIAEXAMPLEDEFAULT00\naws_secret_access_key = other\n\n[tp]\naws_access_key_id = OPKISTALESTALESTALE0\naws_secret_access_key = stale\n");
        await File.WriteAllTextAsync(Path.Combine(_home.Path, ".aws", "config"), "[default]\nregion = eu-west-1\n");

        await _tp.ConfigureAwsAsync();
        var credentials = await File.ReadAllTextAsync(Path.Combine(_home.Path, ".aws", "credentials"));
        Assert.Contains("AKIAEXAMPLEDEFAULT00", credentials);
        Assert.DoesNotContain("stale", credentials);

        var ls = await RunAsync("aws", "--profile", "tp", "s3", "ls");
        Assert.True(ls.Code == 0, ls.Output);
        Assert.Contains("aws-proof", ls.Output);

        var file = Path.Combine(_home.Path, "hello.txt");
        await File.WriteAllTextAsync(file, "hello from awscli\n");
        var cp = await RunAsync("aws", "--profile", "tp", "s3", "cp", file, "s3://aws-proof/dir/hello.txt");
        Assert.True(cp.Code == 0, cp.Output);
        var list = await RunAsync("aws", "--profile", "tp", "s3", "ls", "s3://aws-proof/dir/");
        Assert.True(list.Code == 0, list.Output);
        Assert.Contains("hello.txt", list.Output);
        // A presigned URL from the same profile is SigV4 (the section says so) and fetches the object.
        var presign = await RunAsync("aws", "--profile", "tp", "s3", "presign", "s3://aws-proof/dir/hello.txt");
        Assert.True(presign.Code == 0, presign.Output);
        using (var plain = new HttpClient())
        {
            var fetched = await plain.GetAsync(presign.Output.Trim().Split('\n')[^1].Trim());
            Assert.True(fetched.IsSuccessStatusCode, await fetched.Content.ReadAsStringAsync());
            Assert.Equal("hello from awscli\n", await fetched.Content.ReadAsStringAsync());
        }
        var rm = await RunAsync("aws", "--profile", "tp", "s3", "rm", "s3://aws-proof/dir/hello.txt");
        Assert.True(rm.Code == 0, rm.Output);
        Assert.Equal(HttpStatusCode.NoContent, (await _tp.SendAsync(HttpMethod.Delete, "/object-storage/bucket/delete/aws-proof")).StatusCode);
    }

    [Fact]
    public async Task Rclone_remote_tp_lists_copies_and_checks_without_ignore_checksum()
    {
        Assert.Equal(HttpStatusCode.Created, (await _tp.SendAsync(HttpMethod.Put, "/object-storage/bucket/create/rclone-proof")).StatusCode);
        var conf = Path.Combine(_home.Path, ".config", "rclone", "rclone.conf");
        Directory.CreateDirectory(Path.GetDirectoryName(conf)!);
        await File.WriteAllTextAsync(conf, "[tp]\ntype = s3\nprovider = Other\naccess_key_id = stale\n\n[local]\ntype = local\n");

        await _tp.ConfigureRcloneAsync();
        var written = await File.ReadAllTextAsync(conf);
        Assert.Contains("[local]", written);
        Assert.DoesNotContain("stale", written);

        var lsd = await RunAsync("rclone", "lsd", "tp:");
        Assert.True(lsd.Code == 0, lsd.Output);
        Assert.Contains("rclone-proof", lsd.Output);

        var source = Path.Combine(_home.Path, "data");
        Directory.CreateDirectory(Path.Combine(source, "sub"));
        await File.WriteAllTextAsync(Path.Combine(source, "a.txt"), "alpha\n");
        await File.WriteAllBytesAsync(Path.Combine(source, "sub", "b.bin"), Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray());
        var copy = await RunAsync("rclone", "copy", source, "tp:rclone-proof/data");
        Assert.True(copy.Code == 0, copy.Output);
        var check = await RunAsync("rclone", "check", source, "tp:rclone-proof/data");
        Assert.True(check.Code == 0, check.Output);
    }

    private async Task<(int Code, string Output)> RunAsync(string tool, params string[] args)
    {
        // Nothing but the files the upsert wrote: a clean environment with HOME pointing at them.
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment.Clear();
        start.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH");
        start.Environment["HOME"] = _home.Path;
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>
/// What the official <c>tp</c> CLI (v0.0.8, helpers.py) does for object storage: its headers, its
/// calls, and its section upsert (replace the block from the section's header to the next header in
/// place, or append it after a blank line), writing under <c>~</c>.
/// </summary>
internal sealed class TpCli(Uri engine, string key, string home) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = engine };

    public void Dispose() => _http.Dispose();

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.Add("X-Client-Type", "cli");
        if (method != HttpMethod.Get)
            request.Content = new StringContent("", Encoding.UTF8, "application/json");
        return _http.SendAsync(request);
    }

    public async Task ConfigureAwsAsync()
    {
        var answer = await OkJsonAsync("/object-storage/configure/aws");
        var profile = answer.GetProperty("profile_name").GetString() ?? "tp";
        Upsert(Path.Combine(home, ".aws", "credentials"), profile, answer.GetProperty("credentials_file").GetString()!);
        Upsert(Path.Combine(home, ".aws", "config"), $"profile {profile}", answer.GetProperty("config_file").GetString()!);
    }

    public async Task ConfigureRcloneAsync()
    {
        var answer = await OkJsonAsync("/object-storage/configure/rclone");
        Upsert(Path.Combine(home, ".config", "rclone", "rclone.conf"), answer.GetProperty("remote_name").GetString() ?? "tp",
            answer.GetProperty("rclone_config").GetString()!);
    }

    private async Task<JsonElement> OkJsonAsync(string path)
    {
        var response = await SendAsync(HttpMethod.Get, path);
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    public static void Upsert(string path, string sectionName, string sectionText)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        sectionText = sectionText.TrimEnd('\n') + "\n";
        var existing = File.Exists(path) ? File.ReadAllText(path) : "";
        var block = new Regex(@"^\[" + Regex.Escape(sectionName) + @"\].*?(?=\n\[|\z)", RegexOptions.Multiline | RegexOptions.Singleline);
        string updated;
        if (block.IsMatch(existing))
        {
            updated = block.Replace(existing, sectionText.TrimEnd('\n'));
        }
        else
        {
            var separator = existing.Length > 0 && !existing.EndsWith('\n') ? "\n" : "";
            var gap = existing.Trim().Length > 0 ? "\n" : "";
            updated = existing + separator + gap + sectionText;
        }
        File.WriteAllText(path, updated);
    }
}
