using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using OpenPool.Contracts;

namespace OpenPool.Client;

/// <summary>
/// Typed access to every endpoint of an OpenPool engine (or TensorPool itself). Calls that start an
/// asynchronous request return an operation to wait on. Every mutation carries an Idempotency-Key
/// the client makes itself, so a transient fault can be retried without doing anything twice.
/// </summary>
public sealed partial class OpenPoolClient
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly HttpClient _http;
    private readonly Uri _endpoint;

    /// <summary>Uses <paramref name="httpClient"/> as it is (for example one from <c>IHttpClientFactory</c>).</summary>
    public OpenPoolClient(HttpClient httpClient, OpenPoolClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        _http = httpClient;
        Options = options ?? new OpenPoolClientOptions();
        var endpoint = Options.Endpoint ?? httpClient.BaseAddress ?? Options.ResolveEndpoint();
        _endpoint = new Uri(endpoint.ToString().TrimEnd('/') + "/");
    }

    /// <summary>Creates its own <see cref="HttpClient"/> with the retry rules of <see cref="OpenPoolResilience"/>.</summary>
    public OpenPoolClient(OpenPoolClientOptions options)
        : this(OpenPoolResilience.CreateHttpClient(options), options)
    {
    }

    /// <summary>Reads <c>TENSORPOOL_ENGINE</c> and <c>TENSORPOOL_KEY</c>, like the official CLI.</summary>
    public OpenPoolClient()
        : this(new OpenPoolClientOptions())
    {
    }

    /// <summary>The options in use.</summary>
    public OpenPoolClientOptions Options { get; }

    /// <summary>The engine this client talks to.</summary>
    public Uri Endpoint => _endpoint;

    /// <summary>Checks the key (what the official CLI does before every command); throws when it is refused.</summary>
    public Task<HealthResponse> CheckHealthAsync(CancellationToken cancellationToken = default) =>
        SendAsync<HealthResponse>(HttpMethod.Post, "health", new { package_version = "openpool-dotnet" }, cancellationToken, idempotent: false);

    /// <summary>An operation for an existing request id: waits on a request started elsewhere or earlier.</summary>
    public RequestOperation GetOperation(string requestId)
    {
        ArgumentException.ThrowIfNullOrEmpty(requestId);
        return new RequestOperation(this, requestId);
    }

    /// <summary>One look at a request.</summary>
    public async Task<RequestInfoResponse> GetRequestAsync(string requestId, CancellationToken cancellationToken = default) =>
        (await GetRequestInfoCoreAsync(requestId, null, cancellationToken).ConfigureAwait(false)).Info;

    /// <summary>Requests, newest first (OpenPool extension); pass <see cref="RequestListResponse.NextCursor"/> back for the next page.</summary>
    public Task<RequestListResponse> ListRequestsAsync(RequestStatus? status = null, RequestType? type = null, string? objectId = null,
        string? cursor = null, int? limit = null, bool includeOrg = false, CancellationToken cancellationToken = default) =>
        GetAsync<RequestListResponse>("request/list" + QueryString(
            ("status", status is null ? null : EnumName(status.Value)), ("type", type is null ? null : EnumName(type.Value)),
            ("object_id", objectId), ("cursor", cursor), ("limit", limit?.ToString(CultureInfo.InvariantCulture)), ("include_org", Flag(includeOrg))), cancellationToken);

    internal async Task<(RequestInfoResponse Info, int? RetryAfter, bool WaitApplied)> GetRequestInfoCoreAsync(string requestId, int? wait, CancellationToken ct)
    {
        using var request = NewRequest(HttpMethod.Get, "request/info/" + Uri.EscapeDataString(requestId), null, idempotent: false);
        if (wait is { } seconds)
            request.Headers.Add("Prefer", $"wait={seconds}");
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        await EnsureSuccessAsync(response, ct).ConfigureAwait(false);
        var info = await response.Content.ReadFromJsonAsync<RequestInfoResponse>(Json, ct).ConfigureAwait(false)
            ?? throw new OpenPoolException("The engine answered with an empty body.");
        int? retryAfter = response.Headers.RetryAfter?.Delta is { } delta ? (int)delta.TotalSeconds : null;
        return (info, retryAfter, response.Headers.Contains("Preference-Applied"));
    }

    internal Task<T> GetAsync<T>(string path, CancellationToken ct) => SendAsync<T>(HttpMethod.Get, path, null, ct, idempotent: false);

    internal async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken ct, bool idempotent = true)
    {
        using var request = NewRequest(method, path, body, idempotent && method != HttpMethod.Get);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        await EnsureSuccessAsync(response, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NoContent)
            return default!;
        return await response.Content.ReadFromJsonAsync<T>(Json, ct).ConfigureAwait(false)
            ?? throw new OpenPoolException("The engine answered with an empty body.");
    }

    private HttpRequestMessage NewRequest(HttpMethod method, string path, object? body, bool idempotent)
    {
        var request = new HttpRequestMessage(method, new Uri(_endpoint, path));
        if (Options.ResolveApiKey() is { } key)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.Add("X-Client-Type", "openpool-dotnet");
        if (body is not null)
            request.Content = JsonContent.Create(body, body.GetType(), options: Json);
        if (idempotent)
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        return request;
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
            return;
        ErrorResponse? error = null;
        try
        {
            error = await response.Content.ReadFromJsonAsync<ErrorResponse>(Json, ct).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            // Not the engine's JSON (a proxy's page, say): fall back to the status line.
        }
        throw new OpenPoolException(response.StatusCode, error?.Error,
            error?.Message ?? $"The engine answered {(int)response.StatusCode} {response.ReasonPhrase}.", error?.Detail);
    }

    internal static string QueryString(params (string Name, string? Value)[] parameters)
    {
        var parts = parameters.Where(p => p.Value is not null).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);
    }

    internal static string? Flag(bool value) => value ? "true" : null;

    internal static string Segment(string value) => Uri.EscapeDataString(value);

    private static string EnumName<T>(T value) where T : struct, Enum =>
        JsonSerializer.Serialize(value, Json).Trim('"');
}
