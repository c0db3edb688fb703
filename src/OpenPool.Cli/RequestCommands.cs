using System.CommandLine;
using OpenPool.Contracts;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

internal static class RequestCommands
{
    public static Command Build(Runner run)
    {
        var id = new Argument<string>("request_id");
        var info = new Command("info", "Show a request") { id };
        info.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.GetRequestAsync(p.GetValue(id)!, ct);
            c.Print(result, $"{result.RequestId}  {CliContext.WireName(result.RequestType)}  {CliContext.WireName(result.Status)}  {result.ObjectId}\n{result.ExternalMessage}");
            return 0;
        }));

        var status = new Option<string?>("--status") { Description = "PENDING, PROCESSING, COMPLETED, FAILED or RETRYING" };
        var type = new Option<string?>("--type") { Description = "e.g. CLUSTER_CLAIM, STORAGE_ATTACH" };
        var objectId = new Option<string?>("--object") { Description = "A cluster or volume id" };
        var limit = new Option<int?>("--limit") { Description = "Page size (1-200)" };
        var cursor = new Option<string?>("--cursor") { Description = "next_cursor of the previous page" };
        var list = new Command("list", "List requests, newest first") { status, type, objectId, limit, cursor };
        list.Aliases.Add("ls");
        list.SetAction(run(async (c, p, ct) =>
        {
            var result = await c.Client.ListRequestsAsync(Parse<RequestStatus>(p.GetValue(status)), Parse<RequestType>(p.GetValue(type)),
                p.GetValue(objectId), p.GetValue(cursor), p.GetValue(limit), cancellationToken: ct);
            c.Print(result, result.Message + (result.NextCursor is null ? "" : $"\nMore: --cursor {result.NextCursor}"));
            return 0;
        }));

        var wait = new Command("wait", "Wait for a request to finish") { id };
        wait.SetAction(run(async (c, p, ct) => await c.WaitAsync(c.Client.GetOperation(p.GetValue(id)!), ct) ? 0 : 1));

        return Group("request", "Follow asynchronous requests", info, list, wait);
    }

    /// <summary>A wire name (CLUSTER_CLAIM) to its enum; unknown names are a one-line error.</summary>
    private static T? Parse<T>(string? wire) where T : struct, Enum
    {
        if (wire is null)
            return null;
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<T>($"\"{wire.ToUpperInvariant()}\"", OpenPoolJson.Options);
        }
        catch (System.Text.Json.JsonException)
        {
            throw new CliError($"Unknown value '{wire}'.");
        }
    }
}
