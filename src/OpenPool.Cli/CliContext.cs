using System.Text.Json;
using OpenPool.Client;
using OpenPool.Contracts;

namespace OpenPool.Cli;

/// <summary>What every command needs: the client, the output streams, and the global flags.</summary>
internal sealed class CliContext(OpenPoolClient client, TextWriter stdout, TextWriter stderr, TextReader stdin, bool json, bool noInput, bool interactive)
{
    private static readonly JsonSerializerOptions Pretty = new(OpenPoolJson.Options) { WriteIndented = true };

    public OpenPoolClient Client { get; } = client;
    public TextWriter Out { get; } = stdout;
    public TextWriter Err { get; } = stderr;
    public bool Json { get; } = json;

    /// <summary>Prints the engine's readable text, or with --json the structured answer and nothing else.</summary>
    public void Print<T>(T value, string? message)
    {
        if (Json)
            Out.WriteLine(JsonSerializer.Serialize(value, Pretty));
        else if (!string.IsNullOrEmpty(message))
            Out.WriteLine(message);
    }

    /// <summary>Asks before destroying anything, unless --no-input; refuses when nobody can answer.</summary>
    public bool Confirm(string question)
    {
        if (noInput)
            return true;
        if (!interactive)
            throw new CliError($"{question} Refusing without a terminal to ask on; pass --no-input to go ahead.");
        Err.Write($"{question} [y/N] ");
        var answer = stdin.ReadLine()?.Trim().ToLowerInvariant();
        return answer is "y" or "yes";
    }

    /// <summary>
    /// Waits for an operation with a live status line on stderr (a spinner on a terminal, one line
    /// per change otherwise), then prints the final state. Returns false when the request FAILED.
    /// </summary>
    public async Task<bool> WaitAsync(RequestOperation operation, CancellationToken ct)
    {
        var frames = "|/-\\";
        var tick = 0;
        string? last = null;
        var progress = new Reporter(info =>
        {
            // The final state is printed once, below, on stdout; as progress too it showed twice.
            if (info.Status.IsTerminal())
                return;
            var line = $"{WireName(info.RequestType)} {WireName(info.Status)}: {info.ExternalMessage}";
            if (interactive && !Json)
                Err.Write($"\r{frames[tick++ % frames.Length]} {line}".PadRight(100));
            else if (line != last)
                Err.WriteLine(line);
            last = line;
        });
        var final = await operation.WaitForCompletionAsync(progress, ct).ConfigureAwait(false);
        if (interactive && !Json && tick > 0)
            Err.Write("\r" + new string(' ', 100) + "\r"); // the spinner line gives way to the final state
        Print(final, $"{WireName(final.Status)}: {final.ExternalMessage}");
        return final.Status == RequestStatus.Completed;
    }

    /// <summary>An enum as the API writes it (CLUSTER_CLAIM, COMPLETED).</summary>
    public static string WireName<T>(T value) where T : struct, Enum => JsonSerializer.Serialize(value, OpenPoolJson.Options).Trim('"');

    private sealed class Reporter(Action<RequestInfoResponse> report) : IProgress<RequestInfoResponse>
    {
        public void Report(RequestInfoResponse value) => report(value);
    }
}

/// <summary>A failure to report as one line and exit 1.</summary>
internal sealed class CliError(string message) : Exception(message);

/// <summary>The JSON the CLI prints: the wire's snake_case names.</summary>
internal static class OpenPoolJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
