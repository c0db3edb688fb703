using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace OpenPool.Client;

/// <summary>What a push or a listen saw: the job id, the messages, how it ended.</summary>
public sealed record JobStreamResult(string? JobId, IReadOnlyList<string> Messages, string? FinalStatus, WebSocketCloseStatus? CloseStatus, string? CloseReason)
{
    /// <summary>True when the engine closed normally (1000).</summary>
    public bool Succeeded => CloseStatus == WebSocketCloseStatus.NormalClosure && FinalStatus is null or "success";
}

public sealed partial class OpenPoolClient
{
    /// <summary>
    /// Pushes a job: sends the .tp.toml, then uploads the project directory itself (a .tar.gz made
    /// here, honouring the job's ignore list; no tar or curl needed). Messages are reported to
    /// <paramref name="onMessage"/> as they arrive.
    /// </summary>
    public async Task<JobStreamResult> PushJobAsync(string tpConfig, string clusterId, string projectDirectory, bool teardownCluster = false,
        Action<string>? onMessage = null, CancellationToken cancellationToken = default)
    {
        using var socket = await ConnectAsync("job/push", cancellationToken).ConfigureAwait(false);
        await SendFrameAsync(socket, new { tp_config = tpConfig, system = OperatingSystem.IsMacOS() ? "Darwin" : "Linux", cluster_id = clusterId,
            teardown_cluster = teardownCluster, client_upload = true }, cancellationToken).ConfigureAwait(false);
        string? jobId = null;
        var messages = new List<string>();
        string? status = null;
        while (await ReceiveFrameAsync(socket, cancellationToken).ConfigureAwait(false) is { } frame)
        {
            if (jobId is null && frame.TryGetProperty("job_id", out var id))
                jobId = id.GetString();
            if (frame.TryGetProperty("status", out var s))
                status = s.GetString();
            if (frame.TryGetProperty("message", out var m) && m.GetString() is { } text)
            {
                messages.Add(text);
                onMessage?.Invoke(text);
            }
            if (frame.TryGetProperty("upload_url", out var url))
            {
                var ignore = frame.TryGetProperty("ignore", out var list) ? list.EnumerateArray().Select(e => e.GetString()!).ToList() : [];
                var exitCode = await UploadProjectAsync(url.GetString()!, projectDirectory, ignore, cancellationToken).ConfigureAwait(false);
                await SendFrameAsync(socket, new { type = "command_result", exit_code = exitCode, command_stdout = "", command_stderr = "" }, cancellationToken).ConfigureAwait(false);
            }
        }
        return new JobStreamResult(jobId, messages, status, socket.CloseStatus, socket.CloseStatusDescription);
    }

    /// <summary>Replays a job's output, then follows it until the job ends; each message goes to <paramref name="onMessage"/>.</summary>
    public async Task<JobStreamResult> ListenJobAsync(string jobId, Action<string>? onMessage = null, CancellationToken cancellationToken = default)
    {
        using var socket = await ConnectAsync("job/listen/" + Segment(jobId), cancellationToken).ConfigureAwait(false);
        var messages = new List<string>();
        string? status = null;
        while (await ReceiveFrameAsync(socket, cancellationToken).ConfigureAwait(false) is { } frame)
        {
            if (frame.TryGetProperty("status", out var s))
                status = s.GetString();
            if (frame.TryGetProperty("message", out var m) && m.GetString() is { } text)
            {
                messages.Add(text);
                onMessage?.Invoke(text);
            }
        }
        return new JobStreamResult(jobId, messages, status, socket.CloseStatus, socket.CloseStatusDescription);
    }

    /// <summary>
    /// Downloads the job's output files under <paramref name="destination"/>, skipping files that
    /// exist unless <paramref name="overwrite"/>; reports each file as it completes. Returns the paths written.
    /// </summary>
    public async Task<IReadOnlyList<string>> DownloadJobOutputsAsync(string jobId, string destination, bool overwrite = false,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var pull = await PullJobAsync(jobId, cancellationToken: cancellationToken).ConfigureAwait(false);
        var root = Path.GetFullPath(destination);
        var written = new List<string>();
        foreach (var (relative, url) in pull.DownloadMap)
        {
            if (url is null)
                continue;
            var target = Path.GetFullPath(Path.Combine(root, relative));
            if (!target.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal))
                throw new OpenPoolException($"Refusing to write {relative} outside {root}.");
            if (File.Exists(target) && !overwrite)
                continue;
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            // Signed links need no key; the request carries none.
            using var response = await _http.GetAsync(new Uri(url), HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            await using (var file = File.Create(target))
                await response.Content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
            written.Add(target);
            progress?.Report(relative);
        }
        return written;
    }

    private async Task<int> UploadProjectAsync(string url, string directory, IReadOnlyList<string> ignore, CancellationToken ct)
    {
        var archive = Path.GetTempFileName();
        try
        {
            await using (var file = File.Create(archive))
                await ProjectArchive.WriteAsync(directory, ignore, file, ct).ConfigureAwait(false);
            await using var content = File.OpenRead(archive);
            using var request = new HttpRequestMessage(HttpMethod.Put, new Uri(url)) { Content = new StreamContent(content) };
            request.Content.Headers.ContentType = new("application/gzip");
            using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode ? 0 : (int)response.StatusCode;
        }
        finally
        {
            File.Delete(archive);
        }
    }

    private async Task<ClientWebSocket> ConnectAsync(string path, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        var uri = new UriBuilder(new Uri(_endpoint, path)) { Scheme = _endpoint.Scheme == "https" ? "wss" : "ws" }.Uri;
        try
        {
            await socket.ConnectAsync(uri, ct).ConfigureAwait(false);
            await SendFrameAsync(socket, new Dictionary<string, string?> { ["TENSORPOOL_KEY"] = Options.ResolveApiKey() }, ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return socket;
    }

    private static Task SendFrameAsync(ClientWebSocket socket, object frame, CancellationToken ct) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(frame, Json), WebSocketMessageType.Text, true, ct);

    private static async Task<JsonElement?> ReceiveFrameAsync(ClientWebSocket socket, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(chunk, ct).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct).ConfigureAwait(false);
                return null;
            }
            buffer.Write(chunk, 0, result.Count);
            if (result.EndOfMessage)
                return JsonDocument.Parse(Encoding.UTF8.GetString(buffer.ToArray())).RootElement.Clone();
        }
    }
}
