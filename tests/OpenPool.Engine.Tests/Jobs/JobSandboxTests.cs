using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>
/// What a tenant holding a valid key and a running cluster can make the engine do through jobs:
/// each test is an attack through the real interface (crafted uploads, hostile commands, pulls over
/// hostile trees) against a real engine whose nodes are bubblewrap sandboxes.
/// </summary>
public sealed class JobSandboxTests(JobEngineFixture fx) : IClassFixture<JobEngineFixture>, IDisposable
{
    private readonly TempDir _project = new();

    public void Dispose() => _project.Dispose();

    private async Task<(HttpClient Client, string Key, string ClusterId)> TenantAsync(string email)
    {
        var (client, key) = await fx.NewUserAsync(email);
        return (client, key, await JobEngineFixture.RunningClusterAsync(client));
    }

    private async Task<(CliJobClient.SocketResult Push, CliJobClient.SocketResult Listen)> RunAsync(string key, string clusterId, params string[] commands)
    {
        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(commands), clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        return (push, await CliJobClient.ListenAsync(fx.Url, key, push.JobId!, TimeSpan.FromSeconds(120)));
    }

    private static string Output(CliJobClient.SocketResult listen) => listen.Printed;

    /// <summary>The job's output lines as the official CLI prints them (frames may batch several lines).</summary>
    private static List<string> Lines(CliJobClient.SocketResult listen) => [.. listen.Printed.Split('\n')];

    [Fact]
    public async Task A_job_sees_its_node_and_nothing_of_the_engine()
    {
        var (_, key, clusterId) = await TenantAsync("curious@example.com");
        var dataDir = fx.DataDir;
        System.IO.File.WriteAllText(Path.Combine(_project.Path, "probe.sh"), $"""
            echo "uid=$(id -u) user=$(whoami) home=$HOME host=$(hostname)"
            test -e {dataDir} && echo "SEES-DATA-DIR"
            cat {dataDir}/admin.key 2>/dev/null && echo "READ-ADMIN-KEY"
            cat ../../../../../../../admin.key 2>/dev/null && echo "READ-ADMIN-KEY-RELATIVE"
            find / -xdev \( -name admin.key -o -name 'openpool.db*' \) 2>/dev/null | sed 's/^/FOUND /'
            kill -0 {fx.Engine.Pid} 2>/dev/null && echo "CAN-SIGNAL-ENGINE"
            ps -eo comm | grep -q dotnet && echo "SEES-ENGINE-PROCESS"
            env | grep -E '^(DOTNET|ASPNETCORE|OPENPOOL_TEST_ENGINE_SECRET)' | sed 's/^/LEAKED /'
            ( test -k /tmp && test -k /var/tmp && printf '%s' "{dataDir}" > /tmp/pattern && touch /var/tmp/probe ) || echo "TMP-NOT-WRITABLE"
            grep -l -F -f /tmp/pattern /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/PATH-IN /'
            echo done-probing
            """);
        var (_, listen) = await RunAsync(key, clusterId, "bash probe.sh");
        var output = Output(listen);

        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains("done-probing", output);
        Assert.Matches(@"uid=\d+ user=ubuntu home=/home/ubuntu host=i-", output);
        Assert.DoesNotContain("uid=0 ", output);
        foreach (var leak in new[] { "SEES-DATA-DIR", "READ-ADMIN-KEY", "FOUND ", "CAN-SIGNAL-ENGINE", "SEES-ENGINE-PROCESS", "LEAKED ", "PATH-IN ", "TMP-NOT-WRITABLE", "tpk_" })
            Assert.DoesNotContain(leak, output);
        Assert.DoesNotContain(fx.AdminKey, output);
    }

    [Fact]
    public async Task Another_tenants_jobs_files_and_uid_do_not_exist_for_a_job()
    {
        var (_, keyA, clusterA) = await TenantAsync("owner-a@example.com");
        var (_, keyB, clusterB) = await TenantAsync("prober-b@example.com");
        var secret = "secret-" + Guid.NewGuid().ToString("N");
        var (pushA, listenA) = await RunAsync(keyA, clusterA, $"echo {secret} > ~/secret.txt", "echo a-uid=$(id -u)", "pwd");
        Assert.Equal("success", listenA.FinalStatus);
        var workA = Lines(listenA).Single(m => m.StartsWith("/home/", StringComparison.Ordinal)).Trim();

        // B's commands hold the secret in two halves, so its own scripts never match the search.
        var (first, second) = (secret[..10], secret[10..]);
        var (_, listenB) = await RunAsync(keyB, clusterB,
            $"s={first}; cat {workA}/../../secret.txt ~/secret.txt 2>&1 | grep -c \"${{s}}{second}\" || true",
            $"s={first}; grep -rs \"${{s}}{second}\" /home /tmp /mnt /opt /run /var 2>/dev/null | wc -l",
            "ls /home",
            "echo b-uid=$(id -u)");
        var output = Output(listenB);
        Assert.Equal("success", listenB.FinalStatus);
        Assert.DoesNotContain(secret, output);
        Assert.Equal(["0", "0", "ubuntu"], Lines(listenB).Take(3).Select(m => m.Trim()));
        var uidA = Lines(listenA).Single(m => m.StartsWith("a-uid=", StringComparison.Ordinal))[6..];
        var uidB = Lines(listenB).Single(m => m.StartsWith("b-uid=", StringComparison.Ordinal))[6..];
        Assert.NotEqual(uidA, uidB);
        Assert.NotNull(pushA.JobId);
    }

    [Fact]
    public async Task A_crafted_archive_writes_nothing_outside_the_job_and_only_safe_entries_arrive()
    {
        var (client, key, clusterId) = await TenantAsync("crafter@example.com");
        var marker = "escaped-" + Guid.NewGuid().ToString("N")[..8];
        var archive = TarGz(writer =>
        {
            // The chain from the report: each link lexically inside, the second resolving through the first.
            var chain = "a/b/c/d/e/f/h/i";
            var path = "";
            foreach (var part in chain.Split('/'))
            {
                path = path.Length == 0 ? part : path + "/" + part;
                writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, path));
            }
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, chain + "/g") { LinkName = "../../../../../../.." });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "L") { LinkName = chain + "/g/../../../../../../.." });
            writer.WriteEntry(File("L/" + marker + "-1.txt", "through the chain"));
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "etc-link") { LinkName = "/tmp" });
            writer.WriteEntry(File("etc-link/" + marker + "-2.txt", "through an absolute link"));
            writer.WriteEntry(File("../" + marker + "-3.txt", "dot-dot"));
            writer.WriteEntry(File("/tmp/" + marker + "-4.txt", "absolute name"));
            writer.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "passwd-copy") { LinkName = "/etc/passwd" });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, "a-pipe"));
            writer.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "a-null") { DeviceMajor = 1, DeviceMinor = 3 });
            var setuid = File("suid.sh", "#!/bin/sh\necho hi\n");
            setuid.Mode = (UnixFileMode)0xDED; // 06755: setuid, setgid, rwxr-xr-x
            writer.WriteEntry(setuid);
            writer.WriteEntry(File("ok.txt", "fine"));
            writer.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "ok-link.txt") { LinkName = "ok.txt" });
        });
        var toml = CliJobClient.Toml(["ls -A | sort | tr '\\n' ' '; echo", "stat -c 'mode=%a' suid.sh", "cat ok-link.txt; echo"]);
        var push = await CliJobClient.PushArchiveAsync(fx.Url, key, toml, clusterId, archive);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!, TimeSpan.FromSeconds(120));
        var output = Output(listen);

        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains("mode=755", output);
        Assert.Contains("fine", output);
        Assert.Contains("[openpool] skipped a-pipe: named pipe entries are not unpacked", output);
        Assert.Contains("[openpool] skipped a-null: character device entries are not unpacked", output);
        Assert.Contains("[openpool] skipped passwd-copy: a hard link to a file that is not in the project", output);
        Assert.Contains($"[openpool] skipped L/{marker}-1.txt: its path goes through a symbolic link in the archive", output);
        Assert.Contains($"[openpool] skipped etc-link/{marker}-2.txt: its path goes through a symbolic link in the archive", output);
        var listing = Lines(listen).Single(m => m.Contains("ok.txt", StringComparison.Ordinal) && m.Contains("suid.sh", StringComparison.Ordinal));
        Assert.Equal("L a etc-link ok-link.txt ok.txt suid.sh", listing.Trim());

        // Nowhere on this machine where the engine or a node could have put it. The archive's own links
        // point out of the job when read on the host, so this search must not follow them.
        var noLinks = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        var escaped = Directory.EnumerateFiles(fx.DataDir, marker + "*", noLinks)
            .Concat(Directory.EnumerateFiles("/tmp", marker + "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 3, AttributesToSkip = FileAttributes.ReparsePoint }))
            .ToList();
        Assert.Empty(escaped);
        Assert.Equal("completed", (await (await client.GetAsync($"/job/info/{push.JobId}")).Json()).GetProperty("job_info").GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_projects_own_links_absolute_ones_included_arrive_as_links_and_the_job_runs()
    {
        var (_, key, clusterId) = await TenantAsync("linker@example.com");
        System.IO.File.WriteAllText(Path.Combine(_project.Path, "run.sh"), "echo from-run\n");
        System.IO.File.CreateSymbolicLink(Path.Combine(_project.Path, "sh"), "/bin/sh");
        System.IO.File.CreateSymbolicLink(Path.Combine(_project.Path, "again.sh"), "run.sh");
        var (_, listen) = await RunAsync(key, clusterId, "readlink sh", "./sh again.sh");
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains("/bin/sh", Lines(listen));
        Assert.Contains("from-run", Lines(listen));
    }

    [Fact]
    public async Task A_small_upload_that_unpacks_beyond_the_limit_fails_with_a_clear_message_and_leaves_nothing()
    {
        var (client, key, clusterId) = await TenantAsync("bomber@example.com");
        var zeros = new byte[9 * 1024 * 1024]; // beyond the fixture's 8 MB Jobs:MaxUnpackedBytes
        var archive = TarGz(writer => writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "zeros.bin") { DataStream = new MemoryStream(zeros) }));
        Assert.True(archive.Length < 100_000, $"the archive is {archive.Length} bytes");

        var push = await CliJobClient.PushArchiveAsync(fx.Url, key, CliJobClient.Toml(["echo never"]), clusterId, archive);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        Assert.Contains(push.Messages, m => m.Contains("Jobs:MaxUnpackedBytes", StringComparison.Ordinal));
        Assert.DoesNotContain(push.Messages, m => m.Contains(fx.DataDir, StringComparison.Ordinal));
        var job = (await (await client.GetAsync($"/job/info/{push.JobId}")).Json()).GetProperty("job_info");
        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.DoesNotContain(Directory.EnumerateDirectories(fx.DataDir, push.JobId!, SearchOption.AllDirectories),
            d => d.Contains("/home/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pull_over_looping_and_escaping_links_ends_with_only_the_jobs_own_files()
    {
        var (client, key, clusterId) = await TenantAsync("looper@example.com");
        var toml = CliJobClient.Toml(
            ["ln -s . a; ln -s . b; mkdir -p out/deep; echo x > out/f; echo y > out/deep/g; ln -s /etc/passwd out/passwd; ln -s ../../../.. out/up; ln -s f out/f-link; mkfifo out/pipe"],
            outputs: ["a/", "b/", "out/", "up/**"]);
        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, toml, clusterId);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!, TimeSpan.FromSeconds(120));
        Assert.Equal("success", listen.FinalStatus);

        var pull = await (await client.GetAsync($"/job/pull/{push.JobId}?dry_run=False&system=linux")).Json();
        var map = pull.GetProperty("download_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(["out/deep/g", "out/f", "out/f-link"], map.Keys.Order(StringComparer.Ordinal));
        using var anonymous = new HttpClient();
        Assert.Equal("x\n", await anonymous.GetStringAsync(map["out/f-link"]));

        // A signed link for a listed name still cannot be bent to another file.
        var bent = map["out/f"].Replace("path=out%2Ff", "path=out%2Fpasswd", StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await anonymous.GetAsync(bent)).StatusCode);
    }

    [Fact]
    public async Task A_job_that_makes_its_output_file_huge_and_sparse_sends_no_listener_more_than_the_limit()
    {
        var (_, key, clusterId) = await TenantAsync("sparse@example.com");
        // The job holds its output open and can set its size at will: 50 MB of nothing, at once,
        // beyond the fixture's 200 KB Jobs:MaxOutputBytes.
        var (_, listen) = await RunAsync(key, clusterId, "echo before", "python3 -c 'import os; os.ftruncate(1, 50 * 1024 * 1024)'", "sleep 30");
        Assert.Equal("error", listen.FinalStatus);
        Assert.True(listen.Printed.Length <= 300_000, $"a listener was sent {listen.Printed.Length} characters");
        Assert.Contains("Jobs:MaxOutputBytes", listen.Messages.Last(), StringComparison.Ordinal); // the final frame says why
    }

    [Fact]
    public async Task An_upload_that_cannot_unpack_fails_with_its_reason_even_when_the_monitor_starts_it_first()
    {
        var (client, key, clusterId) = await TenantAsync("slow-answer@example.com");
        var zeros = new byte[9 * 1024 * 1024];
        var archive = TarGz(writer => writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "zeros.bin") { DataStream = new MemoryStream(zeros) }));
        var (socket, jobId, uploadUrl) = await OpenNativePushAsync(key, clusterId, CliJobClient.Toml(["echo never"]));
        using var _ = socket;
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.PutAsync(uploadUrl, new ByteArrayContent(archive))).StatusCode);

        // The client is slow to report its upload: the monitor starts the job meanwhile, and fails it.
        JsonElement job;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        do
        {
            Assert.True(DateTime.UtcNow < deadline, "the monitor never started the uploaded job");
            await Task.Delay(100);
            job = (await (await client.GetAsync($"/job/info/{jobId}")).Json()).GetProperty("job_info");
        }
        while (job.GetProperty("status").GetString() == "pending");
        Assert.Equal("failed", job.GetProperty("status").GetString());

        await Send(socket, new { type = "command_result", exit_code = 0 });
        var messages = new List<string>();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close)
                break;
            messages.Add(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        Assert.Contains(messages, m => m.Contains("Jobs:MaxUnpackedBytes", StringComparison.Ordinal));
        var info = (await (await client.GetAsync($"/job/info/{jobId}")).Json()).GetProperty("message").GetString();
        Assert.Contains("Jobs:MaxUnpackedBytes", info, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commands_run_under_bash_and_see_the_process_limits()
    {
        var (_, key, clusterId) = await TenantAsync("basher@example.com");
        var (_, listen) = await RunAsync(key, clusterId,
            "printf 'export LR=0.1\\n' > env.sh",
            "source env.sh && echo LR=$LR",
            "echo nproc=$(ulimit -u) nofile=$(ulimit -n)",
            "set -o pipefail && false | true && echo pipefail-ignored");
        Assert.Equal("error", listen.FinalStatus);
        Assert.Contains("LR=0.1", Lines(listen));
        // Open files: 65536, or the hard limit the engine inherited (from this process) where it may not raise it.
        var hardLimit = System.IO.File.ReadAllLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[4];
        var openFiles = hardLimit == "unlimited" ? 65536 : Math.Min(65536, int.Parse(hardLimit, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains($"nproc=4096 nofile={openFiles}", Lines(listen));
        Assert.DoesNotContain("pipefail-ignored", Output(listen));
    }

    [Fact]
    public async Task A_second_upload_on_the_same_link_while_the_first_streams_is_a_409_not_a_500()
    {
        var (client, key, clusterId) = await TenantAsync("racer@example.com");
        var archive = TarGz(writer => writer.WriteEntry(File("f.txt", "one")));
        var (socket, jobId, uploadUrl) = await OpenNativePushAsync(key, clusterId, CliJobClient.Toml(["cat f.txt"]));
        using var _ = socket;

        // The first upload: headers and half the body by hand, so it is surely in progress.
        var url = new Uri(uploadUrl);
        using var raw = new System.Net.Sockets.TcpClient();
        await raw.ConnectAsync(url.Host, url.Port);
        var stream = raw.GetStream();
        var head = $"PUT {url.PathAndQuery} HTTP/1.1\r\nHost: {url.Authority}\r\nContent-Type: application/gzip\r\nContent-Length: {archive.Length}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(archive.AsMemory(0, archive.Length / 2));
        await stream.FlushAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!Directory.EnumerateDirectories(Path.Combine(fx.DataDir, "sim", "nodes"))
                   .Any(node => System.IO.File.Exists(Path.Combine(node, "jobs", jobId, "project.tar.gz.part"))))
        {
            Assert.True(DateTime.UtcNow < deadline, "the first upload never reached the node");
            await Task.Delay(20);
        }
        using var http = new HttpClient();
        var second = await http.PutAsync(uploadUrl, new ByteArrayContent(archive));
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Contains("already used", (await second.Json()).GetProperty("message").GetString());
        await stream.WriteAsync(archive.AsMemory(archive.Length / 2));
        var reply = new byte[4096];
        var read = await stream.ReadAsync(reply);
        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(reply, 0, read), StringComparison.Ordinal);
        await Send(socket, new { type = "command_result", exit_code = 0 });
        var listen = await CliJobClient.ListenAsync(fx.Url, key, jobId, TimeSpan.FromSeconds(120));
        Assert.Contains("one", Lines(listen));
        Assert.NotNull(client);
    }

    [Fact]
    public void A_descriptor_the_engine_inherited_is_closed_in_every_process_it_starts()
    {
        // As a service manager leaves a pipe or a log file open in the engine without close-on-exec.
        var fd = OpenInheritable("/etc/hostname");
        Assert.True(fd > 2);
        try
        {
            Assert.Equal(0, Fcntl(fd, 1, 0) & 1);
            OpenPool.Engine.Providers.Simulated.NodeSandbox.CloseInheritedDescriptorsOnExec();
            Assert.Equal(1, Fcntl(fd, 1, 0) & 1);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "open")]
    private static extern int OpenInheritable([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int flags = 0);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fcntl")]
    private static extern int Fcntl(int fd, int command, int argument);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    /// <summary>Starts a push as the SDK does (native upload) and stops where the client would upload: at the signed link.</summary>
    private async Task<(ClientWebSocket Socket, string JobId, string UploadUrl)> OpenNativePushAsync(string key, string clusterId, string toml)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(new UriBuilder(fx.Url) { Scheme = "ws", Path = "/job/push" }.Uri, CancellationToken.None);
        await Send(socket, new Dictionary<string, object> { ["TENSORPOOL_KEY"] = key });
        await Send(socket, new { tp_config = toml, system = "Linux", cluster_id = clusterId, client_upload = true });
        string? uploadUrl = null;
        string? jobId = null;
        while (uploadUrl is null)
        {
            var frame = await Receive(socket);
            if (frame.TryGetProperty("job_id", out var id))
                jobId = id.GetString();
            if (frame.TryGetProperty("upload_url", out var link))
                uploadUrl = link.GetString();
        }
        return (socket, jobId!, uploadUrl);
    }

    private static PaxTarEntry File(string name, string content) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)), Mode = (UnixFileMode)0x1A4 };

    private static byte[] TarGz(Action<TarWriter> write)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var writer = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true))
            write(writer);
        return output.ToArray();
    }

    private static Task Send(ClientWebSocket socket, object frame) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(frame), WebSocketMessageType.Text, true, CancellationToken.None);

    private static async Task<JsonElement> Receive(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
        return JsonDocument.Parse(buffer.AsMemory(0, result.Count)).RootElement.Clone();
    }
}
