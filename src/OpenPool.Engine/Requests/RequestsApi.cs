using System.Globalization;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Requests;

internal static class RequestsApi
{
    public const int MaxWaitSeconds = 60;

    public static void MapRequests(this WebApplication app)
    {
        app.MapGet("/request/info/{request_id}", GetInfoAsync)
            .WithTags("requests").WithSummary("Get request info")
            .WithDescription("Reports an asynchronous request. Non-terminal answers carry Retry-After (seconds). " +
                             "Send 'Prefer: wait=N' (or ?wait=N, N ≤ 60) to hold the answer until the status changes.")
            .Produces<RequestInfoResponse>().Produces<ErrorResponse>(404);

        app.MapGet("/request/list", ListAsync)
            .WithTags("requests").WithSummary("List requests (OpenPool extension)")
            .WithDescription("Newest first. Filters: status, type, object_id; include_org lists the organization's requests. " +
                             "Pass next_cursor back as cursor for the next page.")
            .Produces<RequestListResponse>();
    }

    private static async Task<IResult> GetInfoAsync(
        string request_id, HttpContext context, RequestStore store, RequestSignals signals, TimeProvider clock)
    {
        var caller = context.Caller();
        var wait = RequestedWait(context.Request);
        var row = await store.GetVisibleAsync(caller, request_id, context.RequestAborted) ?? throw NotFound(request_id);

        if (wait is { } seconds)
        {
            context.Response.Headers["Preference-Applied"] = $"wait={seconds}";
            if (seconds > 0 && !row.IsFinished)
                row = await WaitForChangeAsync(row, TimeSpan.FromSeconds(seconds), store, signals, clock, context.RequestAborted);
        }

        var retryAfter = await RetryAfterAsync(row, store, clock, context.RequestAborted);
        if (retryAfter is { } after)
            context.Response.Headers.RetryAfter = after.ToString(CultureInfo.InvariantCulture);
        return Results.Json(row.ToInfo(), ApiJson.Options);
    }

    /// <summary>
    /// Holds the answer until the row's status differs from what it was on arrival, or the wait ends.
    /// Subscribing before each re-read closes the gap where a change lands between read and wait.
    /// </summary>
    private static async Task<RequestRow> WaitForChangeAsync(
        RequestRow row, TimeSpan wait, RequestStore store, RequestSignals signals, TimeProvider clock, CancellationToken ct)
    {
        var deadline = clock.GetUtcNow() + wait;
        var arrivedWith = row.Status;
        while (true)
        {
            var changed = signals.WhenChanged(row.Id);
            row = await store.GetAsync(row.Id, ct) ?? row;
            var remaining = deadline - clock.GetUtcNow();
            if (row.Status != arrivedWith || row.IsFinished || remaining <= TimeSpan.Zero)
                return row;
            try
            {
                await changed.WaitAsync(remaining, clock, ct);
            }
            catch (TimeoutException)
            {
                return await store.GetAsync(row.Id, ct) ?? row;
            }
        }
    }

    /// <summary>
    /// Seconds until the answer is expected to change: when the worker will next act on the row (a
    /// provider's estimate or a backoff), or on the request it waits behind. Clamped to 1..30; none
    /// for terminal requests.
    /// </summary>
    internal static async Task<int?> RetryAfterAsync(RequestRow row, RequestStore store, TimeProvider clock, CancellationToken ct)
    {
        if (row.IsFinished)
            return null;
        var now = clock.Now();
        if (row.LeaseOwner is not null && row.LeaseExpiresAt > now)
            return 1; // a worker is on it right now
        var dueAt = row.NextRunAt;
        var blocker = await store.BlockerAsync(row, ct);
        if (blocker is not null)
            dueAt = Math.Max(dueAt, blocker.NextRunAt);
        return RetryAfterSeconds(dueAt - now);
    }

    /// <summary>
    /// Whole seconds, rounded up so a client that sleeps them arrives after the due time. (Adding an
    /// allowance for the worker's own latency was measured: it turned the common 3 s, 2-poll claim
    /// into 4 s, because the first poll usually lands within milliseconds of the step starting.)
    /// </summary>
    internal static int RetryAfterSeconds(long millisecondsLeft) =>
        (int)Math.Clamp(Math.Ceiling(millisecondsLeft / 1000.0), 1, 30);

    /// <summary><c>Prefer: wait=N</c> (RFC 7240) or <c>?wait=N</c>; null when the client did not ask to wait.</summary>
    private static int? RequestedWait(HttpRequest request)
    {
        if (request.Query.ContainsKey("wait"))
            return Math.Min(Query.Int(request, "wait", 0, 0, int.MaxValue), MaxWaitSeconds);
        foreach (var header in request.Headers["Prefer"])
        {
            foreach (var preference in (header ?? "").Split(',', StringSplitOptions.TrimEntries))
            {
                var parts = preference.Split('=', 2, StringSplitOptions.TrimEntries);
                if (parts.Length == 2 && parts[0].Equals("wait", StringComparison.OrdinalIgnoreCase) &&
                    int.TryParse(parts[1].Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                    return Math.Min(seconds, MaxWaitSeconds);
            }
        }
        return null; // RFC 7240: preferences that cannot be honoured are ignored
    }

    private static async Task<IResult> ListAsync(HttpContext context, RequestStore store)
    {
        var (rows, next) = await ListPageAsync(context, store, objectId: Query.String(context.Request, "object_id"));
        return Results.Json(new RequestListResponse
        {
            Requests = rows.Select(r => r.ToInfo()).ToList(),
            NextCursor = next,
            Message = RequestText.Table(rows),
        }, ApiJson.Options);
    }

    /// <summary>Reads the shared filters and paging of request listings; used by /request/list and /cluster/operations.</summary>
    internal static async Task<(IReadOnlyList<RequestRow> Rows, string? NextCursor)> ListPageAsync(
        HttpContext context, RequestStore store, string? objectId, bool? includeOrg = null)
    {
        var request = context.Request;
        var status = Query.String(request, "status")?.ToUpperInvariant();
        if (status is not null && !Wire.TryParseStatus(status, out _))
            throw ApiError.Validation(["query", "status"], "enum", "Input should be " + string.Join(", ", Wire.StatusNamesAll.Select(n => $"'{n}'")));
        var type = Query.String(request, "type")?.ToUpperInvariant();
        if (type is not null && !Wire.TryParseType(type, out _))
            throw ApiError.Validation(["query", "type"], "enum", "Input should be " + string.Join(", ", Wire.TypeNamesAll.Select(n => $"'{n}'")));
        var limit = Query.Int(request, "limit", 50, 1, 200);
        long? before = null;
        if (Query.String(request, "cursor") is { } cursor)
        {
            if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
                throw ApiError.Validation(["query", "cursor"], "value_error", "Invalid cursor; pass back next_cursor from a previous page");
            before = seq;
        }
        // One row more than the page tells whether another page exists, so the last page has no cursor.
        var rows = await store.ListAsync(context.Caller(), includeOrg ?? Query.Bool(request, "include_org"), status, type, objectId, before, limit + 1, context.RequestAborted);
        if (rows.Count <= limit)
            return (rows, null);
        var page = rows.Take(limit).ToList();
        return (page, page[^1].Seq.ToString(CultureInfo.InvariantCulture));
    }

    public static ApiError NotFound(string requestId) =>
        ApiError.NotFound("request_not_found", $"Request {requestId} not found.");
}

internal static class RequestText
{
    public static string Table(IReadOnlyList<RequestRow> rows)
    {
        if (rows.Count == 0)
            return "No requests found.";
        var table = new TextTable("REQUEST ID", "TYPE", "STATUS", "OBJECT", "CREATED", "MESSAGE");
        foreach (var r in rows)
            table.Add(r.Id, r.Type, r.Status, r.ObjectId ?? "-", TextTable.When(r.CreatedAt), r.ExternalMessage ?? "");
        return table.ToString();
    }
}
