using System.CommandLine;
using OpenPool.Client;
using OpenPool.Contracts;

namespace OpenPool.Cli;

/// <summary>
/// The <c>openpool</c> command tree: tp's commands (cluster, storage, job, ssh, me) with the same
/// arguments and flags, plus <c>request</c> and the operator's <c>admin</c>. Human output is the
/// engine's own text; <c>--json</c> prints the structured answer and nothing else on stdout.
/// </summary>
internal static class CliApp
{
    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print the structured answer as JSON (for --wait, the final state)", Recursive = true };
    private static readonly Option<bool> NoInputOption = new("--no-input") { Description = "Never prompt; go ahead with destructive commands", Recursive = true };

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, TextReader stdin, OpenPoolClient? client,
        bool? interactive = null, CancellationToken ct = default)
    {
        var root = new RootCommand("openpool: clusters, storage and jobs on OpenPool (or TensorPool), from the command line.");
        root.Options.Add(JsonOption);
        root.Options.Add(NoInputOption);
        var isTerminal = interactive ?? (!Console.IsInputRedirected && !Console.IsErrorRedirected);

        Func<ParseResult, CancellationToken, Task<int>> Run(Func<CliContext, ParseResult, CancellationToken, Task<int>> body) => async (parse, token) =>
        {
            try
            {
                var context = new CliContext(client ?? CreateClient(), stdout, stderr, stdin, parse.GetValue(JsonOption), parse.GetValue(NoInputOption), isTerminal);
                return await body(context, parse, token).ConfigureAwait(false);
            }
            catch (OpenPoolException ex)
            {
                await stderr.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 1;
            }
            catch (Exception ex) when (ex is CliError or HttpRequestException or IOException or UriFormatException or System.Net.WebSockets.WebSocketException)
            {
                await stderr.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 1;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Never a stack trace: a user gets one line, whatever went wrong.
                await stderr.WriteLineAsync($"error: {ex.GetType().Name}: {ex.Message}").ConfigureAwait(false);
                return 1;
            }
        };

        root.Subcommands.Add(ClusterCommands.Build(Run));
        root.Subcommands.Add(StorageCommands.Build(Run));
        root.Subcommands.Add(JobCommands.Build(Run));
        root.Subcommands.Add(ObjectStorageCommands.Build(Run));
        root.Subcommands.Add(AccountCommands.BuildSsh(Run));
        root.Subcommands.Add(AccountCommands.BuildMe(Run));
        root.Subcommands.Add(RequestCommands.Build(Run));
        root.Subcommands.Add(AdminCommands.Build(Run));

        var parse = root.Parse(args);
        return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, ct).ConfigureAwait(false);
    }

    /// <summary>Reads TENSORPOOL_ENGINE and TENSORPOOL_KEY from the environment, then ./.env, as tp does.</summary>
    internal static OpenPoolClient CreateClient()
    {
        var engine = Environment.GetEnvironmentVariable("TENSORPOOL_ENGINE") ?? DotEnv("TENSORPOOL_ENGINE");
        var key = Environment.GetEnvironmentVariable("TENSORPOOL_KEY") ?? DotEnv("TENSORPOOL_KEY")
            ?? throw new CliError("No API key: set TENSORPOOL_KEY, or add a line TENSORPOOL_KEY=<key> to .env in this directory.");
        return new OpenPoolClient(new OpenPoolClientOptions { Endpoint = engine is null ? null : new Uri(engine), ApiKey = key });
    }

    private static string? DotEnv(string name)
    {
        if (!File.Exists(".env"))
            return null;
        foreach (var line in File.ReadLines(".env"))
        {
            var trimmed = line.Trim();
            if (!trimmed.StartsWith(name, StringComparison.Ordinal) || !trimmed[name.Length..].TrimStart().StartsWith('='))
                continue;
            return trimmed[(trimmed.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim().Trim('"', '\'');
        }
        return null;
    }

    internal static Command Group(string name, string description, params Command[] children)
    {
        var command = new Command(name, description);
        foreach (var child in children)
            command.Subcommands.Add(child);
        return command;
    }

    /// <summary>A command that fetches one thing and prints the engine's text for it (or --json).</summary>
    internal static Command Show<T>(Runner run, string name, string description, Func<CliContext, ParseResult, CancellationToken, Task<T>> fetch,
        Func<T, string?> message, params Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            if (symbol is Argument argument)
                command.Arguments.Add(argument);
            else if (symbol is Option option)
                command.Options.Add(option);
        }
        command.SetAction(run(async (c, p, ct) =>
        {
            var result = await fetch(c, p, ct).ConfigureAwait(false);
            c.Print(result, message(result));
            return 0;
        }));
        return command;
    }

    internal static Command WithAlias(this Command command, string alias)
    {
        command.Aliases.Add(alias);
        return command;
    }

    /// <summary>Parses tp's boolean flag values ("true", "1", "yes" are true).</summary>
    internal static bool? ParseBool(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "true" or "1" or "yes" or "y" or "on" => true,
        "false" or "0" or "no" or "n" or "off" => false,
        _ => throw new CliError($"'{value}' is not true or false."),
    };

    internal static async Task<int> FinishAsync(CliContext context, RequestOperation operation, bool wait, object accepted, string message, CancellationToken ct)
    {
        if (!wait)
        {
            context.Print(accepted, message);
            return 0;
        }
        if (!context.Json)
            await context.Err.WriteLineAsync(message).ConfigureAwait(false);
        return await context.WaitAsync(operation, ct).ConfigureAwait(false) ? 0 : 1;
    }
}

/// <summary>The request ids of 202 answers, for --json without --wait.</summary>
internal sealed record Accepted(string RequestId, string Message);
