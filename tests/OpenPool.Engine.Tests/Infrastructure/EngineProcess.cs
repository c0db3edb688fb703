using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// A real engine process (OpenPool.Engine.dll on Kestrel, loopback, a free port), for tests that
/// must kill it the hard way or see it as a user does.
/// </summary>
internal sealed partial class EngineProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output;
    private bool _disposed;

    private EngineProcess(Process process, Uri url, List<string> output)
    {
        _process = process;
        Url = url;
        _output = output;
    }

    public Uri Url { get; }

    /// <summary>The S3 endpoint's bound URL, from the line the engine prints before the API's.</summary>
    public Uri S3Url => new(S3Line().Match(Output).Groups[1].Value);

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
                return string.Join('\n', _output);
        }
    }

    public static Task<EngineProcess> StartAsync(string dataDir, params string[] extraArgs) => StartAsync(dataDir, asUid: null, extraArgs);

    /// <param name="asUid">Run the engine as this unprivileged uid (through setpriv; the caller must be root and own nothing the engine needs).</param>
    public static async Task<EngineProcess> StartAsync(string dataDir, int? asUid, params string[] extraArgs)
    {
        var start = StartInfo(dataDir, "http://127.0.0.1:0", extraArgs);
        if (asUid is { } uid)
        {
            start.ArgumentList.Insert(0, start.FileName);
            foreach (var arg in new[] { "--", "--clear-groups", $"--regid={uid}", $"--reuid={uid}" })
                start.ArgumentList.Insert(0, arg);
            start.FileName = "setpriv";
            start.Environment["DOTNET_CLI_HOME"] = dataDir; // dotnet wants a writable home
            start.Environment["HOME"] = dataDir;
        }
        var process = Process.Start(start)!;
        var lines = new List<string>();
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Collect(string? line)
        {
            if (line is null)
                return;
            lock (lines)
                lines.Add(line);
            var match = ListeningLine().Match(line);
            if (match.Success)
                listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
        process.OutputDataReceived += (_, e) => Collect(e.Data);
        process.ErrorDataReceived += (_, e) => Collect(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (first != listening.Task)
        {
            process.Kill(entireProcessTree: true);
            lock (lines)
                throw new InvalidOperationException("The engine did not start:\n" + string.Join('\n', lines));
        }
        // The same list keeps collecting: lines printed right after the listening line are not lost.
        return new EngineProcess(process, await listening.Task, lines);
    }

    /// <summary>Runs an engine that is expected to fail to start; returns its exit code and everything it printed.</summary>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(string dataDir, string urls)
    {
        using var process = Process.Start(StartInfo(dataDir, urls, []))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException("The engine did not exit:\n" + await stdout + await stderr);
        }
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }

    private static ProcessStartInfo StartInfo(string dataDir, string urls, IEnumerable<string> extraArgs)
    {
        var engineDll = Path.Combine(AppContext.BaseDirectory, "OpenPool.Engine.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dataDir,
        };
        // The S3 endpoint gets a free port too (its default, 8001, would be shared by every test engine);
        // a test's own ObjectStorage:Url comes later and wins.
        foreach (var arg in new[] { engineDll, "--data-dir", dataDir, "--urls", urls, "--ObjectStorage:Url", "http://127.0.0.1:0" }.Concat(extraArgs))
            start.ArgumentList.Add(arg);
        start.Environment.Remove("ASPNETCORE_URLS");
        return start;
    }

    public HttpClient Client(string key) => new()
    {
        BaseAddress = Url,
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", key) },
        Timeout = TimeSpan.FromSeconds(90),
    };

    /// <summary>
    /// SIGKILL to the engine alone: no shutdown hooks, no flushing, exactly like a crash. Jobs it
    /// started keep running, as they would on real nodes.
    /// </summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, as an operator or a service manager stops the engine; true when it exited within <paramref name="patience"/>.</summary>
    public async Task<bool> TerminateAsync(TimeSpan patience)
    {
        _ = SendSignal(_process.Id, 15);
        using var wait = new CancellationTokenSource(patience);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int SendSignal(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true); // the test is over: take its jobs' processes along
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    [GeneratedRegex(@"OpenPool engine listening on (http://\S+)")]
    private static partial Regex ListeningLine();

    [GeneratedRegex(@"OpenPool S3 endpoint listening on (http://\S+)")]
    private static partial Regex S3Line();
}
