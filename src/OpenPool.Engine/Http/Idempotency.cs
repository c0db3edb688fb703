using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using OpenPool.Engine.Accounts;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Http;

/// <summary>
/// <c>Idempotency-Key</c> on mutating calls: the first answer is stored and replayed with
/// <c>Idempotent-Replayed: true</c>; the same key with another request is a 422; the same key while
/// the first call is still being handled is a 409. The key is claimed by an insert on a primary key,
/// so concurrent duplicates race in the database and exactly one of them runs.
/// </summary>
internal sealed class Idempotency(Database db, TimeProvider clock, IOptions<RequestOptions> options)
{
    public const string Header = "Idempotency-Key";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);

    // A first call that never recorded its answer (its engine died) stops blocking retries after this.
    private TimeSpan InFlightLease => TimeSpan.FromSeconds(options.Value.IdempotencyInFlightSeconds);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var key = context.Request.Headers[Header].ToString();
        if (string.IsNullOrEmpty(key) || !IsMutation(context.Request.Method) || context.Request.Path == "/health"
            || context.GetEndpoint()?.Metadata.GetMetadata<NoIdempotencyKeys>() is not null)
        {
            await next(context);
            return;
        }
        if (key.Length > 255 || key.Any(ch => ch < 0x21 || ch > 0x7e))
            throw ApiError.Validation(["header", Header], "string_pattern_mismatch", "Idempotency-Key must be 1-255 visible ASCII characters");

        var caller = context.Caller();
        var body = await ReadBodyAsync(context.Request);
        var hash = RequestHash(context.Request, body);
        var now = clock.Now();

        var stored = await ClaimAsync(caller.UserId, key, hash, now, context.RequestAborted);
        if (stored is not null)
        {
            if (stored.StatusCode is null)
                throw ApiError.Conflict("idempotency_key_in_flight",
                    "A request with this Idempotency-Key is still being handled. Retry after it finishes.");
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(stored.RequestHash), Encoding.ASCII.GetBytes(hash)))
                throw new ApiError(StatusCodes.Status422UnprocessableEntity, "idempotency_key_mismatch",
                    "This Idempotency-Key was already used with a different request. Use a new key for a new request.");
            context.Response.StatusCode = stored.StatusCode.Value;
            context.Response.ContentType = stored.ContentType;
            context.Response.Headers["Idempotent-Replayed"] = "true";
            await context.Response.Body.WriteAsync(stored.ResponseBody ?? [], context.RequestAborted);
            return;
        }

        var original = context.Response.Body;
        using var capture = new MemoryStream();
        context.Response.Body = capture;
        try
        {
            try
            {
                using (IdempotencyScope.Enter(caller.UserId, key))
                    await next(context);
            }
            catch (ApiError error)
            {
                await ErrorHandling.WriteAsync(context, error);
            }
        }
        catch
        {
            await ForgetAsync(caller.UserId, key);
            throw;
        }
        finally
        {
            context.Response.Body = original;
        }

        var status = context.Response.StatusCode;
        if (status >= 500)
        {
            await ForgetAsync(caller.UserId, key); // a fault is worth retrying with the same key
        }
        else
        {
            var (storedStatus, contentType, responseBody) = status < 300 && context.GetEndpoint()?.Metadata.GetMetadata<SecretInAnswer>() is { } secret
                ? secret.SeeAgain is { } seeAgain ? RefetchableSecretRecord(seeAgain) : ShownOnceRecord(capture.ToArray())
                : (status, context.Response.ContentType, capture.ToArray());
            await db.WriteAsync((c, t) => c.ExecuteAsync(
                """
                UPDATE idempotency_keys SET status_code = @storedStatus, content_type = @contentType, response_body = @responseBody, locked_until = NULL
                WHERE user_id = @userId AND idem_key = @key
                """, new { storedStatus, contentType, responseBody, userId = caller.UserId, key }, t));
        }
        capture.Position = 0;
        await capture.CopyToAsync(original, context.RequestAborted);
    }

    /// <summary>
    /// What is kept instead of an answer holding a secret that its owner can read again (object
    /// storage credentials): the secret is sealed where it lives and must not sit in clear here, and
    /// a retry must not redo the work (rotate twice), so a retry gets a 409 saying where to read it.
    /// </summary>
    private static (int Status, string ContentType, byte[] Body) RefetchableSecretRecord(string seeAgain)
    {
        var error = ApiError.Conflict("secret_not_replayed",
            $"An earlier call with this Idempotency-Key already succeeded. Its answer held a secret, which is not kept with the key, so it is not replayed: {seeAgain}");
        return (error.Status, "application/json; charset=utf-8",
            JsonSerializer.SerializeToUtf8Bytes(error.ToBody(), ApiJson.Options));
    }

    /// <summary>
    /// What is kept instead of an answer holding a new API key: the key must never be stored in clear,
    /// and a retry must neither mint a second key nor get the first again. So a retry gets a 409 that
    /// says what the first call created and how to get a key now.
    /// </summary>
    private static (int Status, string ContentType, byte[] Body) ShownOnceRecord(byte[] answer)
    {
        string? userId = null, keyId = null;
        try
        {
            using var document = JsonDocument.Parse(answer);
            userId = Field(document.RootElement, "user_id");
            keyId = Field(document.RootElement, "key_id");
        }
        catch (JsonException)
        {
        }
        var created = (userId, keyId) switch
        {
            ({ } user, _) => $"user {user} and an API key for it",
            (_, { } id) => $"API key {id}",
            _ => "an API key",
        };
        var error = ApiError.Conflict("api_key_already_created",
            $"An earlier call with this Idempotency-Key already created {created}. An API key is shown only once, in that call's answer, " +
            "and is not kept, so it cannot be shown again. To get a key, create another with POST /admin/keys {\"email\": ...} " +
            $"(openpool admin keys create EMAIL){(keyId is null ? "" : $", and revoke the unseen one with DELETE /admin/keys/{keyId}")}.");
        return (error.Status, "application/json; charset=utf-8",
            JsonSerializer.SerializeToUtf8Bytes(error.ToBody(), ApiJson.Options));

        static string? Field(JsonElement root, string name) =>
            root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var value)
                && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }

    /// <summary>
    /// Claims the key for this call (returns null), or returns what an earlier call with it left.
    /// Each step is a single statement, so concurrent duplicates on any replica see one winner: the
    /// insert succeeds for exactly one, and only one can take over an expired or abandoned record.
    /// </summary>
    private Task<StoredAnswer?> ClaimAsync(string userId, string key, string hash, long now, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var lockedUntil = now + (long)InFlightLease.TotalMilliseconds;
            var inserted = await c.ExecuteAsync(
                """
                INSERT INTO idempotency_keys (user_id, idem_key, request_hash, created_at, locked_until)
                VALUES (@userId, @key, @hash, @now, @lockedUntil) ON CONFLICT (user_id, idem_key) DO NOTHING
                """, new { userId, key, hash, now, lockedUntil }, t);
            if (inserted == 1)
                return null;
            // An expired record, or an abandoned one whose call committed nothing, can be taken over.
            var takenOver = await c.ExecuteAsync(
                """
                UPDATE idempotency_keys SET request_hash = @hash, created_at = @now, locked_until = @lockedUntil,
                    status_code = NULL, content_type = NULL, response_body = NULL, committed_requests = NULL
                WHERE user_id = @userId AND idem_key = @key
                  AND (created_at < @expiredBefore OR (status_code IS NULL AND locked_until < @now AND committed_requests IS NULL))
                """, new { userId, key, hash, now, lockedUntil, expiredBefore = now - (long)Lifetime.TotalMilliseconds }, t);
            if (takenOver == 1)
                return null;
            var existing = await c.QuerySingleAsync<StoredAnswer>(
                """
                SELECT request_hash AS RequestHash, created_at AS CreatedAt, locked_until AS LockedUntil, status_code AS StatusCode,
                       content_type AS ContentType, response_body AS ResponseBody, committed_requests AS CommittedRequests
                FROM idempotency_keys WHERE user_id = @userId AND idem_key = @key
                """, new { userId, key }, t);
            if (existing is { StatusCode: null, CommittedRequests: { } committed } && existing.LockedUntil < now)
            {
                // The first call's engine died after committing its work but before storing its
                // answer: answer from what it committed rather than doing the work twice.
                existing.StatusCode = StatusCodes.Status202Accepted;
                existing.ContentType = "application/json; charset=utf-8";
                existing.ResponseBody = await RebuildAnswerAsync(c, t, committed.Split(','));
                await c.ExecuteAsync(
                    """
                    UPDATE idempotency_keys SET status_code = @StatusCode, content_type = @ContentType, response_body = @ResponseBody, locked_until = NULL
                    WHERE user_id = @userId AND idem_key = @key AND status_code IS NULL
                    """, new { existing.StatusCode, existing.ContentType, existing.ResponseBody, userId, key }, t);
            }
            return existing;
        }, ct);

    /// <summary>The 202 answer of a call from the requests it created, in the shape its endpoint answers with.</summary>
    private static async Task<byte[]> RebuildAnswerAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t, string[] requestIds)
    {
        var requests = (await c.QueryAsync<(string Id, string Type, string? ObjectId)>(
            $"SELECT id, type, object_id FROM requests WHERE {Data.Sql.In(c, "id", "@requestIds")} ORDER BY seq", new { requestIds }, t)).ToList();
        const string message = "The original call was accepted; this is its answer, rebuilt after the engine restarted.";
        object answer;
        if (requests.Count == 0)
        {
            answer = new { message };
        }
        else if (requests.Any(r => r.Type == "STORAGE_ATTACH"))
        {
            answer = new { message, request_ids = requests.Select(r => r.Id).ToList() };
        }
        else if (requests[0].Type == "CLUSTER_CLAIM")
        {
            var instanceIds = await c.QueryAsync<string>(
                "SELECT id FROM instances WHERE cluster_id = @ObjectId ORDER BY node_index", new { requests[0].ObjectId }, t);
            answer = new { cluster_id = requests[0].ObjectId, message, instance_ids = instanceIds.ToList(), request_id = requests[0].Id };
        }
        else if (requests[0].Type == "STORAGE_CREATE")
        {
            answer = new { storage_id = requests[0].ObjectId, message, request_id = requests[0].Id };
        }
        else
        {
            answer = new { message, request_id = requests[0].Id };
        }
        return JsonSerializer.SerializeToUtf8Bytes(answer, ApiJson.Options);
    }

    private Task ForgetAsync(string userId, string key) =>
        db.WriteAsync((c, t) => c.ExecuteAsync(
            "DELETE FROM idempotency_keys WHERE user_id = @userId AND idem_key = @key AND status_code IS NULL", new { userId, key }, t));

    public Task<int> SweepAsync(long createdBefore, CancellationToken ct) =>
        db.WriteAsync((c, t) => c.ExecuteAsync("DELETE FROM idempotency_keys WHERE created_at < @createdBefore", new { createdBefore }, t), ct);

    private static bool IsMutation(string method) =>
        HttpMethods.IsPost(method) || HttpMethods.IsPut(method) || HttpMethods.IsPatch(method) || HttpMethods.IsDelete(method);

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        var bytes = buffer.ToArray();
        request.Body = new MemoryStream(bytes); // the endpoint reads it again
        return bytes;
    }

    internal static string RequestHash(HttpRequest request, byte[] body)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes($"{request.Method} {request.Path}{request.QueryString}\n"));
        sha.AppendData(CanonicalJson(body) ?? body);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// The body with object keys sorted (ordinally, at every depth) and no insignificant whitespace, so
    /// a retry that re-serializes the same request differently is still recognised as the same one.
    /// Null when the body is not JSON (or holds text that cannot be re-encoded): then the bytes count.
    /// </summary>
    internal static byte[]? CanonicalJson(byte[] body)
    {
        if (body.Length == 0)
            return null;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32 });
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
                WriteCanonical(writer, document.RootElement);
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private static void WriteCanonical(Utf8JsonWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    WriteCanonical(writer, property.Value);
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                    WriteCanonical(writer, item);
                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer); // strings re-escaped one way; numbers as written
                break;
        }
    }

    private sealed class StoredAnswer
    {
        public string RequestHash { get; set; } = "";
        public long CreatedAt { get; set; }
        public long? LockedUntil { get; set; }
        public int? StatusCode { get; set; }
        public string? ContentType { get; set; }
        public byte[]? ResponseBody { get; set; }
        public string? CommittedRequests { get; set; }
    }
}

/// <summary>
/// Marks an endpoint whose success answer holds a secret, which the idempotency store must not keep.
/// <see cref="SeeAgain"/> null: a new API key, shown once; otherwise where its owner reads the secret again.
/// </summary>
internal sealed class SecretInAnswer(string? seeAgain)
{
    public static readonly SecretInAnswer ApiKey = new(null);
    public string? SeeAgain { get; } = seeAgain;
}

/// <summary>
/// Marks endpoints outside the TensorPool API's retry contract (the S3 endpoint: its clients retry
/// by S3's rules and authenticate per request), where an <c>Idempotency-Key</c> header means nothing.
/// </summary>
internal sealed class NoIdempotencyKeys
{
    public static readonly NoIdempotencyKeys Instance = new();
}

internal static class IdempotencyPipeline
{
    /// <summary>The answer holds a new API key, shown once.</summary>
    public static TBuilder AnswerHoldsSecret<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(SecretInAnswer.ApiKey);

    /// <summary>The answer holds a secret its owner can read again; <paramref name="seeAgain"/> says how, for a retry's 409.</summary>
    public static TBuilder AnswerHoldsSecret<TBuilder>(this TBuilder builder, string seeAgain) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new SecretInAnswer(seeAgain));

    public static TBuilder WithoutIdempotencyKeys<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(NoIdempotencyKeys.Instance);

    public static void UseIdempotencyKeys(this WebApplication app)
    {
        var idempotency = app.Services.GetRequiredService<Idempotency>();
        app.Use(next => context => context.GetEndpoint() is null ? next(context) : idempotency.InvokeAsync(context, next));
    }
}
