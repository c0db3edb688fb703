using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Http;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

/// <summary>
/// What endpoint metadata changes in the shared pipeline: an error format of the endpoint's own, and
/// its request body limit. The engine runs on Kestrel (body limits are the server's), with a few
/// test-only endpoints added to its own route builder, so they pass through exactly the middlewares
/// (errors, routing, authentication, authorization, idempotency) the engine's endpoints do.
/// </summary>
public sealed class EndpointMetadataTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly ErrorLog _log = new();
    private readonly EngineFactory _engine;

    public EndpointMetadataTests()
    {
        _engine = new EngineFactory(settings: new() { ["urls"] = "http://127.0.0.1:0", ["ObjectStorage:Url"] = "http://127.0.0.1:0" })
        {
            WebHost = host => host.ConfigureTestServices(services =>
            {
                services.AddSingleton<IStartupFilter, TestEndpoints>();
                services.AddSingleton<ILoggerProvider>(_log);
            }),
        };
        _engine.UseKestrel();
    }

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task An_exception_the_format_expects_is_answered_in_it_and_not_logged_as_a_fault()
    {
        var response = await _engine.Admin().GetAsync("/test/text-errors/teapot");
        Assert.Equal((HttpStatusCode)418, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("418 http_418 TeapotException: short and stout", await response.Content.ReadAsStringAsync());
        Assert.Empty(_log.Errors);
    }

    [Fact]
    public async Task Api_errors_faults_and_bodiless_answers_use_the_format_too()
    {
        var admin = _engine.Admin();
        var apiError = await admin.GetAsync("/test/text-errors/api-error");
        Assert.Equal(HttpStatusCode.NotFound, apiError.StatusCode);
        Assert.Equal("404 thing_not_found ApiError: No such thing.", await apiError.Content.ReadAsStringAsync());

        var fault = await admin.GetAsync("/test/text-errors/fault");
        Assert.Equal(HttpStatusCode.InternalServerError, fault.StatusCode);
        var text = await fault.Content.ReadAsStringAsync();
        Assert.StartsWith("500 internal_error InvalidOperationException: The engine hit an unexpected fault.", text);
        Assert.DoesNotContain("secret detail", text);
        Assert.Contains(_log.Errors, e => e.Contains("secret detail", StringComparison.Ordinal)); // faults are still logged

        var bodiless = await admin.GetAsync("/test/text-errors/bodiless");
        Assert.Equal(HttpStatusCode.Conflict, bodiless.StatusCode);
        Assert.Equal("409 http_409 -: The request failed with status 409.", await bodiless.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_bearer_challenge_and_forbid_use_the_format()
    {
        var missing = await _engine.ClientWithKey(null).GetAsync("/test/text-errors/caller");
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("401 unauthorized -: " + BearerAuthenticationHandler.MissingKey, await missing.Content.ReadAsStringAsync());

        var invalid = await _engine.ClientWithKey("tpk_not-a-real-key").GetAsync("/test/text-errors/caller");
        Assert.Equal(HttpStatusCode.Unauthorized, invalid.StatusCode);
        Assert.Equal("401 unauthorized -: " + BearerAuthenticationHandler.InvalidKey, await invalid.Content.ReadAsStringAsync());

        var user = await _engine.NewUserAsync("format@example.com");
        Assert.Equal("format@example.com", await user.GetStringAsync("/test/text-errors/caller"));
        var forbidden = await user.GetAsync("/test/text-errors/operator");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Equal("403 forbidden -: " + BearerAuthenticationHandler.NotOperator, await forbidden.Content.ReadAsStringAsync());
        Assert.Equal("operator", await _engine.Admin().GetStringAsync("/test/text-errors/operator"));
    }

    [Fact]
    public async Task A_body_beyond_the_limit_is_a_413_in_the_format()
    {
        var response = await PostBytesAsync(_engine.Admin(), "/test/text-errors/body", 2 * MiB);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.StartsWith("413 bad_request BadHttpRequestException: ", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Endpoints_without_a_format_still_answer_json()
    {
        var response = await _engine.ClientWithKey(null).GetAsync("/test/limits/default");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("{\"message\":\"Missing API key. Send it as 'Authorization: Bearer <TENSORPOOL_KEY>'.\",\"error\":\"unauthorized\"}",
            await response.Content.ReadAsStringAsync());
        // An unknown route under the format's prefix matched no endpoint: the API's JSON 404.
        var unknown = await _engine.Admin().GetAsync("/test/text-errors/no-such-thing");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("not_found", (await unknown.Json()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Without_a_limit_of_its_own_an_endpoint_takes_at_most_one_MiB_and_answers_413_json_beyond()
    {
        var admin = _engine.Admin();
        var small = await PostBytesAsync(admin, "/test/limits/default", MiB);
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        Assert.Equal($"{MiB}", await small.Content.ReadAsStringAsync());

        var large = await PostBytesAsync(admin, "/test/limits/default", MiB + 1);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
        var body = await large.Json();
        Assert.Equal("bad_request", body.GetProperty("error").GetString());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task An_endpoint_limit_from_metadata_replaces_the_global_one()
    {
        var admin = _engine.Admin();
        var within = await PostBytesAsync(admin, "/test/limits/three-mib", 3 * MiB);
        Assert.Equal(HttpStatusCode.OK, within.StatusCode);
        Assert.Equal($"{3 * MiB}", await within.Content.ReadAsStringAsync());

        var beyond = await PostBytesAsync(admin, "/test/limits/three-mib", 3 * MiB + 1);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, beyond.StatusCode);
        Assert.Equal("bad_request", (await beyond.Json()).GetProperty("error").GetString());


        var unlimited = await PostBytesAsync(admin, "/test/limits/unlimited", 5 * MiB);
        Assert.Equal(HttpStatusCode.OK, unlimited.StatusCode);
        Assert.Equal($"{5 * MiB}", await unlimited.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Anonymous_endpoints_answer_with_no_key_or_a_bad_one()
    {
        foreach (var key in new string?[] { null, "garbage", "tpk_not-a-real-key" })
        {
            var response = await _engine.ClientWithKey(key).GetAsync("/test/anonymous");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("no caller", await response.Content.ReadAsStringAsync());
        }
    }

    /// <summary>
    /// Posts <paramref name="count"/> zero bytes with <c>Expect: 100-continue</c>: a body the server
    /// refuses up front is then never sent, so the 413 is read rather than lost to a reset connection.
    /// </summary>
    private static Task<HttpResponseMessage> PostBytesAsync(HttpClient client, string path, int count)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(new byte[count]) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Headers.ExpectContinue = true;
        return client.SendAsync(request);
    }

    private static async Task<string> CountAsync(HttpRequest request)
    {
        var buffer = new byte[64 * 1024];
        long total = 0;
        int read;
        while ((read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0)
            total += read;
        return total.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Adds the test endpoints to the engine's own route builder once its pipeline is built.</summary>
    private sealed class TestEndpoints : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            next(app);
            // The WebApplication, as the minimal host hands it on to the outer pipeline (an internal key
            // of ASP.NET Core's); its endpoints are built on the first request, so these join them.
            var routes = app.Properties.TryGetValue("__EndpointRouteBuilder", out var found) && found is IEndpointRouteBuilder builder
                ? builder
                : throw new InvalidOperationException("The host no longer hands on the application's route builder as __EndpointRouteBuilder; keys: " +
                    string.Join(", ", app.Properties.Keys));

            var text = routes.MapGroup("/test/text-errors").WithErrorFormat(new TextErrors());
            text.MapGet("/teapot", string () => throw new TeapotException());
            text.MapGet("/api-error", string () => throw ApiError.NotFound("thing_not_found", "No such thing."));
            text.MapGet("/fault", string () => throw new InvalidOperationException("secret detail"));
            text.MapGet("/bodiless", () => Results.StatusCode(StatusCodes.Status409Conflict));
            text.MapGet("/caller", (HttpContext context) => context.Caller().Email);
            text.MapGet("/operator", () => "operator").RequireOperator();
            text.MapPost("/body", CountAsync);

            var limits = routes.MapGroup("/test/limits");
            limits.MapPost("/default", CountAsync);
            limits.MapPost("/three-mib", CountAsync).WithRequestSizeLimit(3 * MiB);
            limits.MapPost("/unlimited", CountAsync).DisableRequestSizeLimit();

            routes.MapGet("/test/anonymous", (HttpContext context) => context.User.Identity?.IsAuthenticated == true ? "caller" : "no caller").NoKeyRequired();
        };
    }

    private sealed class TeapotException() : Exception("short and stout");

    /// <summary>A format as simple as can be read back: "status code exception-type: message".</summary>
    private sealed class TextErrors : IEndpointErrorFormat
    {
        public int? ExpectedStatus(Exception exception) => exception is TeapotException ? 418 : null;

        public Task WriteAsync(HttpContext context, EndpointError error)
        {
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync($"{error.Status} {error.Code} {error.Exception?.GetType().Name ?? "-"}: {error.Message}");
        }
    }

    /// <summary>Collects what the engine logs at Error or above.</summary>
    private sealed class ErrorLog : ILoggerProvider, ILogger
    {
        private readonly List<string> _errors = [];

        public IReadOnlyList<string> Errors
        {
            get
            {
                lock (_errors)
                    return [.. _errors];
            }
        }

        public ILogger CreateLogger(string categoryName) => this;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
                return;
            lock (_errors)
                _errors.Add(formatter(state, exception) + " " + exception);
        }

        public void Dispose()
        {
        }
    }
}
