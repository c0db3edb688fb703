using System.Net.WebSockets;
using System.Text.Json;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Http;
using OpenPool.Engine.Providers;

namespace OpenPool.Engine.Jobs;

/// <summary>
/// The WebSocket half of jobs, speaking the official CLI's protocol: the first frame carries the key
/// (<c>{"TENSORPOOL_KEY": …}</c>), server frames are JSON with <c>message</c>, <c>job_id</c>,
/// <c>command</c> or <c>status</c>, and anything but a 1000 close is a failure the CLI reports with
/// the close reason.
/// </summary>
internal static class JobSockets
{
    // Close codes in the private range (4000-4999), one per kind of refusal, with the reason text.
    private const WebSocketCloseStatus BadRequest = (WebSocketCloseStatus)4400;
    private const WebSocketCloseStatus Unauthorized = (WebSocketCloseStatus)4401;
    private const WebSocketCloseStatus Forbidden = (WebSocketCloseStatus)4403;
    private const WebSocketCloseStatus NotFound = (WebSocketCloseStatus)4404;
    private const WebSocketCloseStatus Conflict = (WebSocketCloseStatus)4409;
    private const WebSocketCloseStatus UploadFailed = (WebSocketCloseStatus)4500;

    public static void MapJobSockets(this WebApplication app)
    {
        app.Map("/job/push", PushAsync).NoKeyRequired().ExcludeFromDescription();
        app.Map("/job/listen/{job_id}", ListenAsync).NoKeyRequired().ExcludeFromDescription();
    }

    private static async Task PushAsync(HttpContext context, AccountStore accounts, JobStore jobs, JobRunner runner, SignedUrls urls, ILoggerFactory logs)
    {
        var (socket, caller) = await AcceptAsync(context, accounts, runner);
        using var _ = socket;
        if (socket is null || caller is null)
            return;
        var ct = context.RequestAborted;

        var timeout = TimeSpan.FromSeconds(runner.Options.KeyFrameTimeoutSeconds);
        var (arrived, payload) = await ReceiveWithinAsync(socket, timeout, context.RequestServices.GetRequiredService<TimeProvider>(), BadRequest,
            $"No job payload within {timeout.TotalSeconds:0.#} s after the key; send {{\"tp_config\": ..., \"cluster_id\": ...}}.", ct);
        if (!arrived)
            return;
        var tpConfig = Field(payload, "tp_config");
        var clusterId = Field(payload, "cluster_id");
        var system = Field(payload, "system") ?? "Linux";
        var teardown = payload is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty("teardown_cluster", out var td) && td.ValueKind == JsonValueKind.True;
        if (tpConfig is null || clusterId is null)
        {
            await RefuseAsync(socket, BadRequest, "Send {\"tp_config\": <TOML text>, \"system\": ..., \"cluster_id\": \"c-...\", \"teardown_cluster\": false}.", ct);
            return;
        }
        if (!JobConfig.TryParse(tpConfig, out var config, out var configError))
        {
            await RefuseAsync(socket, BadRequest, configError, ct);
            return;
        }
        if (!system.Equals("Linux", StringComparison.OrdinalIgnoreCase) && !system.Equals("Darwin", StringComparison.OrdinalIgnoreCase))
        {
            await RefuseAsync(socket, BadRequest, $"Pushing from {system} is not supported yet; push from Linux, macOS or WSL.", ct);
            return;
        }

        if (runner.Provider.JobConfinementProblem is { } problem && !caller.IsOperator)
        {
            await RefuseAsync(socket, Forbidden, $"This engine cannot run jobs in a sandbox ({problem}); until its operator fixes that, only the operator can push jobs.", ct);
            return;
        }

        JobRecord job;
        try
        {
            job = await jobs.CreateAsync(caller, clusterId, tpConfig, config!, teardown, system, runner.Options.MaxActivePerCluster, ct);
        }
        catch (ApiError error)
        {
            await RefuseAsync(socket, error.Status == StatusCodes.Status404NotFound ? NotFound : Conflict, error.Message, ct);
            return;
        }
        await SendAsync(socket, new { job_id = job.Id, message = $"Job {job.Id} created on {job.ClusterId}. Uploading your project..." }, ct);

        var upload = $"{JobsApi.PublicBase(context.Request, runner.Options)}/job/upload/{job.Id}?" +
                     await urls.SignAsync("upload", job.Id, TimeSpan.FromMinutes(runner.Options.UploadUrlMinutes));
        // The official CLI runs a shell command (tar | curl); clients that say they upload natively
        // (OpenPool's SDK and CLI) get the signed link and the ignore list instead. Both answer
        // with a result frame carrying exit_code.
        var nativeUpload = payload is { ValueKind: JsonValueKind.Object } np && np.TryGetProperty("client_upload", out var cu) && cu.ValueKind == JsonValueKind.True;
        if (nativeUpload)
            await SendAsync(socket, new { upload_url = upload, ignore = job.IgnoreList }, ct);
        else
            await SendAsync(socket, new { command = JobRunner.UploadCommand(job, upload), command_show_stdout = false }, ct);
        var result = await ReceiveJsonAsync(socket, ct);
        var exitCode = result is { ValueKind: JsonValueKind.Object } r && r.TryGetProperty("exit_code", out var code) && code.TryGetInt32(out var n) ? n : -1;
        var uploaded = await jobs.GetAsync(job.Id, ct);
        if (exitCode != 0 || uploaded?.UploadReceivedAt is null)
        {
            var stderr = Field(result, "command_stderr")?.Trim();
            var reason = $"The project upload failed (exit code {exitCode}){(string.IsNullOrEmpty(stderr) ? "" : ": " + stderr)}";
            await runner.FinishAsync(job, JobStatuses.Failed, null, reason, CancellationToken.None);
            await RefuseAsync(socket, UploadFailed, reason, ct);
            return;
        }

        try
        {
            await runner.StartAsync(uploaded, ct);
        }
        catch (JobStartException ex)
        {
            logs.CreateLogger("OpenPool.Engine.Jobs").LogWarning(ex, "Could not start job {JobId}", job.Id);
            var reason = ex.Message;
            await runner.FinishAsync(job, JobStatuses.Failed, null, reason, CancellationToken.None);
            await RefuseAsync(socket, UploadFailed, reason, ct);
            return;
        }
        await SendAsync(socket, new { message = $"Job {job.Id} is running on {job.ClusterId}. Follow it with: tp job listen {job.Id}" }, ct);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "job started", ct);
    }

    /// <summary>Replays the output so far, then follows it until the job ends; any number of listeners.</summary>
    private static async Task ListenAsync(string job_id, HttpContext context, AccountStore accounts, JobStore jobs, JobRunner runner)
    {
        var (socket, caller) = await AcceptAsync(context, accounts, runner);
        using var _ = socket;
        if (socket is null || caller is null)
            return;
        var ct = context.RequestAborted;
        var job = await jobs.GetVisibleAsync(caller, job_id, ct);
        if (job is null)
        {
            await RefuseAsync(socket, NotFound, $"Job {job_id} not found.", ct);
            return;
        }

        // A listener that closes its end (Ctrl-C in tp, or a script that got what it wanted) is
        // noticed at once by reading the socket alongside, and its close is answered.
        using var listening = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var closedByClient = WatchForCloseAsync(socket, listening);
        try
        {
            await FollowOutputAsync(socket, jobs, runner, job, listening.Token);
        }
        catch (OperationCanceledException) when (closedByClient.IsCompleted)
        {
            if (socket.State == WebSocketState.CloseReceived)
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        }
    }

    private static async Task WatchForCloseAsync(WebSocket socket, CancellationTokenSource listening)
    {
        var buffer = new byte[1024];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var result = await socket.ReceiveAsync(buffer, listening.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                    break;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            return; // the listener vanished, or we are finishing anyway
        }
        await listening.CancelAsync();
    }

    private static async Task FollowOutputAsync(WebSocket socket, JobStore jobs, JobRunner runner, JobRecord job, CancellationToken ct)
    {
        var framer = new JobOutputFramer();
        while (!ct.IsCancellationRequested)
        {
            // Read the status before the output, so output written just before the end is never missed.
            var current = await jobs.GetAsync(job.Id, ct) ?? job;
            await SendNewOutputAsync(socket, runner.Provider, job.Node, framer, runner.Options.MaxOutputBytes, ct);
            if (current.IsTerminal)
            {
                var (last, statusPrefix) = framer.Finish();
                foreach (var message in last)
                    await SendAsync(socket, new { message }, ct);
                var success = current.Status == JobStatuses.Completed;
                await SendAsync(socket, new
                {
                    status = success ? "success" : "error",
                    message = statusPrefix + $"Job {current.Id} {JobRunner.Describe(current.Status, current.ExitCode)}." +
                              (current.PublicMessage is { } why ? " " + why : ""),
                }, ct);
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "job ended", ct);
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
        }
    }

    private const int OutputReadBytes = 256 * 1024;

    /// <summary>
    /// Reads everything written so far, up to the output limit, and sends the messages it completes.
    /// The job holds its output file open and can make it any size (a sparse 100 GB truncate); no
    /// listener is sent more than the limit that stops the job anyway.
    /// </summary>
    private static async Task SendNewOutputAsync(WebSocket socket, ICloudProvider provider, JobRef node, JobOutputFramer framer, long limit, CancellationToken ct)
    {
        while (framer.Offset < limit)
        {
            // The breaks come from the offset asked for on, so one sealed exactly where the last read
            // ended still cuts there.
            var want = (int)Math.Min(OutputReadBytes, limit - framer.Offset);
            var output = await provider.ReadOutputAsync(node, framer.Offset, want, ct);
            framer.Append(output.Bytes.Span, output.Breaks);
            foreach (var message in framer.TakeMessages())
                await SendAsync(socket, new { message }, ct);
            if (output.Bytes.Length < want)
                return;
        }
    }

    /// <summary>Accepts the socket and reads the key frame; a plain HTTP call gets a JSON 400, a bad key a refusal.</summary>
    private static async Task<(WebSocket? Socket, Principal? Caller)> AcceptAsync(HttpContext context, AccountStore accounts, JobRunner runner)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await ErrorHandling.WriteAsync(context, ApiError.BadRequest("websocket_required", $"{context.Request.Path} is a WebSocket endpoint."));
            return (null, null);
        }
        var socket = await context.WebSockets.AcceptWebSocketAsync();
        var clock = context.RequestServices.GetRequiredService<TimeProvider>();
        return (socket, await AuthenticateAsync(socket, accounts, TimeSpan.FromSeconds(runner.Options.KeyFrameTimeoutSeconds), clock, context.RequestAborted));
    }

    private static async Task<Principal?> AuthenticateAsync(WebSocket socket, AccountStore accounts, TimeSpan timeout, TimeProvider clock, CancellationToken ct)
    {
        var (arrived, first) = await ReceiveWithinAsync(socket, timeout, clock, Unauthorized,
            $"No key frame within {timeout.TotalSeconds:0.#} s; send {{\"TENSORPOOL_KEY\": \"<your key>\"}} first.", ct);
        if (!arrived)
            return null;
        var key = Field(first, "TENSORPOOL_KEY");
        var principal = key is null ? null : await accounts.AuthenticateAsync(key, ct);
        if (principal is null)
            await RefuseAsync(socket, Unauthorized,
                key is null ? "The first message must be {\"TENSORPOOL_KEY\": \"<your key>\"}." : "Invalid API key. Check TENSORPOOL_KEY.", ct);
        return principal;
    }

    /// <summary>
    /// The next frame, or a refusal with <paramref name="code"/> when none arrives in time: a socket
    /// that stays silent would otherwise hold a connection open forever. The receive is not cancelled
    /// on timeout (cancelling a WebSocket receive aborts the socket, and the client would see 1006
    /// instead of a reason); the close is sent alongside it instead.
    /// </summary>
    private static async Task<(bool Arrived, JsonElement? Frame)> ReceiveWithinAsync(WebSocket socket, TimeSpan timeout, TimeProvider clock,
        WebSocketCloseStatus code, string refusal, CancellationToken ct)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var receive = ReceiveJsonAsync(socket, ct);
        var expired = Task.Delay(timeout, clock, timer.Token);
        if (await Task.WhenAny(receive, expired) != receive)
        {
            await RefuseWithoutReplyAsync(socket, code, refusal, receive);
            return (false, null);
        }
        await timer.CancelAsync();
        return (true, await receive);
    }

    /// <summary>
    /// Closes while a receive is still pending: only the close frame is sent, then the client's close
    /// (which completes the pending receive) is awaited briefly; a silent client is then dropped.
    /// </summary>
    private static async Task RefuseWithoutReplyAsync(WebSocket socket, WebSocketCloseStatus code, string message, Task pendingReceive)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await SendAsync(socket, new { message, status = "error" }, bound.Token);
            await socket.CloseOutputAsync(code, message.Length > 120 ? message[..117] + "..." : message, bound.Token);
            await pendingReceive.WaitAsync(bound.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException)
        {
            // The client is gone or does not answer; disposing the socket ends the connection.
        }
    }

    private static async Task RefuseAsync(WebSocket socket, WebSocketCloseStatus code, string message, CancellationToken ct)
    {
        if (socket.State != WebSocketState.Open)
            return;
        await SendAsync(socket, new { message, status = "error" }, ct);
        // Close reasons are limited to 123 bytes; the full text went in the message frame.
        var reason = message.Length > 120 ? message[..117] + "..." : message;
        await socket.CloseAsync(code, reason, ct);
    }

    private static Task SendAsync(WebSocket socket, object frame, CancellationToken ct) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(frame, ApiJson.Options), WebSocketMessageType.Text, endOfMessage: true, ct);

    private static async Task<JsonElement?> ReceiveJsonAsync(WebSocket socket, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        while (true)
        {
            WebSocketReceiveResult result;
            try
            {
                result = await socket.ReceiveAsync(chunk, ct);
            }
            catch (WebSocketException)
            {
                return null;
            }
            if (result.MessageType == WebSocketMessageType.Close)
                return null;
            buffer.Write(chunk, 0, result.Count);
            if (buffer.Length > 4 * 1024 * 1024)
                return null;
            if (result.EndOfMessage)
                break;
        }
        try
        {
            return JsonDocument.Parse(buffer.ToArray()).RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // A string that is no valid text (an escaped lone surrogate) reads as absent.
    private static string? Field(JsonElement? element, string name) =>
        element is { ValueKind: JsonValueKind.Object } e && e.TryGetProperty(name, out var value) &&
        value.ValueKind == JsonValueKind.String && JsonBody.TryText(value, out var text)
            ? text
            : null;
}

internal static class JobsServices
{
    public static void AddJobs(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<JobsOptions>(configuration.GetSection("Jobs"));
        services.AddSingleton<JobStore>();
        services.AddSingleton<JobRunner>();
        services.AddSingleton<SignedUrls>();
        services.AddSingleton<JobMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<JobMonitor>());
    }
}
