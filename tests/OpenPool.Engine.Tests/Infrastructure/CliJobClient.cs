using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// Talks to /job/push and /job/listen exactly as the official CLI does: the key frame, the payload,
/// then every <c>command</c> frame is run with <c>sh -c</c> in the project directory (stdin closed,
/// PYTHONUNBUFFERED=1) and answered with a <c>command_result</c> frame.
/// </summary>
internal static class CliJobClient
{
    public sealed record SocketResult(string? JobId, List<JsonElement> Frames, WebSocketCloseStatus? CloseStatus, string? CloseReason)
    {
        public IEnumerable<string> Messages => Frames.Where(f => f.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String)
            .Select(f => f.GetProperty("message").GetString()!);

        /// <summary>The size of each frame as received (the raw WebSocket message), in order.</summary>
        public IReadOnlyList<int> FrameBytes { get; init; } = [];

        /// <summary>What the official CLI prints: <c>if msg: print(msg)</c> for every frame, so each non-empty message and a newline.</summary>
        public string Printed => string.Concat(Messages.Where(m => m.Length > 0).Select(m => m + "\n"));

        public string? FinalStatus => Frames.LastOrDefault(f => f.TryGetProperty("status", out _)) is { ValueKind: JsonValueKind.Object } last
            ? last.GetProperty("status").GetString() : null;
    }

    public static async Task<SocketResult> PushAsync(Uri engine, string key, string projectDir, string tpConfig, string clusterId,
        bool teardown = false, string system = "Linux")
    {
        using var socket = await ConnectAsync(engine, "/job/push");
        await SendAsync(socket, new Dictionary<string, object> { ["TENSORPOOL_KEY"] = key });
        await SendAsync(socket, new { tp_config = tpConfig, system, cluster_id = clusterId, teardown_cluster = teardown });
        string? jobId = null;
        var frames = new List<JsonElement>();
        while (await ReceiveAsync(socket) is { } frame)
        {
            frames.Add(frame);
            if (jobId is null && frame.TryGetProperty("job_id", out var id))
                jobId = id.GetString();
            if (frame.TryGetProperty("command", out var command) && command.GetString() is { Length: > 0 } text)
            {
                var (exitCode, stdout, stderr) = await RunShellAsync(text, projectDir);
                await SendAsync(socket, new { type = "command_result", command = text, exit_code = exitCode, command_stdout = stdout, command_stderr = stderr });
            }
        }
        return new SocketResult(jobId, frames, socket.CloseStatus, socket.CloseStatusDescription);
    }

    /// <summary>
    /// Pushes a job whose upload is exactly <paramref name="archive"/> (bytes an attacker crafted), through
    /// the native-upload variant of the protocol our SDK speaks: the engine sends the signed link, the
    /// client PUTs the bytes and answers with a result frame.
    /// </summary>
    public static async Task<SocketResult> PushArchiveAsync(Uri engine, string key, string tpConfig, string clusterId, byte[] archive)
    {
        using var socket = await ConnectAsync(engine, "/job/push");
        await SendAsync(socket, new Dictionary<string, object> { ["TENSORPOOL_KEY"] = key });
        await SendAsync(socket, new { tp_config = tpConfig, system = "Linux", cluster_id = clusterId, teardown_cluster = false, client_upload = true });
        string? jobId = null;
        var frames = new List<JsonElement>();
        using var http = new HttpClient();
        while (await ReceiveAsync(socket) is { } frame)
        {
            frames.Add(frame);
            if (jobId is null && frame.TryGetProperty("job_id", out var id))
                jobId = id.GetString();
            if (frame.TryGetProperty("upload_url", out var url))
            {
                var put = await http.PutAsync(url.GetString(), new ByteArrayContent(archive));
                await SendAsync(socket, new { type = "command_result", exit_code = put.IsSuccessStatusCode ? 0 : 1 });
            }
        }
        return new SocketResult(jobId, frames, socket.CloseStatus, socket.CloseStatusDescription);
    }

    /// <param name="onFrame">Called as each frame arrives, before the next is read (to observe what happened meanwhile).</param>
    public static async Task<SocketResult> ListenAsync(Uri engine, string key, string jobId, TimeSpan? timeout = null, Func<JsonElement, Task>? onFrame = null)
    {
        using var socket = await ConnectAsync(engine, $"/job/listen/{jobId}");
        await SendAsync(socket, new Dictionary<string, object> { ["TENSORPOOL_KEY"] = key });
        var frames = new List<JsonElement>();
        var sizes = new List<int>();
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        while (await ReceiveFrameAsync(socket, deadline.Token) is { } received)
        {
            frames.Add(received.Frame);
            sizes.Add(received.Bytes);
            if (onFrame is not null)
                await onFrame(received.Frame);
        }
        return new SocketResult(jobId, frames, socket.CloseStatus, socket.CloseStatusDescription) { FrameBytes = sizes };
    }

    /// <summary>Opens a listen socket and returns when the first output message arrives (for timing).</summary>
    public static async Task<string> FirstOutputAsync(Uri engine, string key, string jobId)
    {
        using var socket = await ConnectAsync(engine, $"/job/listen/{jobId}");
        await SendAsync(socket, new Dictionary<string, object> { ["TENSORPOOL_KEY"] = key });
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await ReceiveAsync(socket, deadline.Token) is { } frame)
            if (frame.TryGetProperty("message", out var message) && !frame.TryGetProperty("status", out _))
                return message.GetString()!;
        throw new InvalidOperationException("the listen socket closed without output");
    }

    private static async Task<ClientWebSocket> ConnectAsync(Uri engine, string path)
    {
        var socket = new ClientWebSocket();
        var builder = new UriBuilder(engine) { Scheme = engine.Scheme == "https" ? "wss" : "ws", Path = path };
        await socket.ConnectAsync(builder.Uri, CancellationToken.None);
        return socket;
    }

    private static Task SendAsync(ClientWebSocket socket, object frame) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(frame), WebSocketMessageType.Text, true, CancellationToken.None);

    private static async Task<JsonElement?> ReceiveAsync(ClientWebSocket socket, CancellationToken ct = default) =>
        (await ReceiveFrameAsync(socket, ct))?.Frame;

    private static async Task<(JsonElement Frame, int Bytes)?> ReceiveFrameAsync(ClientWebSocket socket, CancellationToken ct = default)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(chunk, ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                return null;
            }
            buffer.Write(chunk, 0, result.Count);
            if (result.EndOfMessage)
                return (JsonDocument.Parse(buffer.ToArray()).RootElement.Clone(), (int)buffer.Length);
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunShellAsync(string command, string workingDirectory)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        start.Environment["PYTHONUNBUFFERED"] = "1";
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A .tp.toml with the given commands, outputs and ignore lists.</summary>
    public static string Toml(IEnumerable<string> commands, IEnumerable<string>? outputs = null, IEnumerable<string>? ignore = null)
    {
        static string List(IEnumerable<string>? items) => "[" + string.Join(", ", (items ?? []).Select(i => JsonSerializer.Serialize(i))) + "]";
        return $"commands = {List(commands)}\noutputs = {List(outputs)}\nignore = {List(ignore)}\n";
    }
}
