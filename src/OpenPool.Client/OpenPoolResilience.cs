using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace OpenPool.Client;

/// <summary>
/// The client's retry rules, built with Polly (Microsoft.Extensions.Http.Resilience): transient
/// faults (connection errors, timeouts, 408, 429, 502, 503, 504) are retried with exponential
/// backoff and jitter, honouring Retry-After, but only for calls that are safe to repeat: reads, and
/// mutations carrying an Idempotency-Key (which this client always sets).
/// </summary>
public static class OpenPoolResilience
{
    /// <summary>Adds the retry rules to a pipeline (used by <see cref="ServiceCollectionExtensions.AddOpenPoolClient"/>).</summary>
    public static void Configure(ResiliencePipelineBuilder<HttpResponseMessage> builder, OpenPoolClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        builder.AddRetry(new HttpRetryStrategyOptions
        {
            MaxRetryAttempts = Math.Max(0, options.MaxRetries),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            ShouldRetryAfterHeader = true,
            ShouldHandle = args => ValueTask.FromResult(IsRepeatable(args.Context.GetRequestMessage()) && IsTransient(args.Outcome)),
        });
    }

    /// <summary>An <see cref="HttpClient"/> with the retry rules, for use without dependency injection.</summary>
    public static HttpClient CreateHttpClient(OpenPoolClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        Configure(builder, options);
#pragma warning disable CA2000 // the HttpClient owns and disposes its handlers
        var handler = new ResilienceHandler(builder.Build()) { InnerHandler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) } };
#pragma warning restore CA2000
        return new HttpClient(handler) { BaseAddress = options.ResolveEndpoint(), Timeout = TimeSpan.FromSeconds(100) };
    }

    internal static bool IsRepeatable(HttpRequestMessage? request) =>
        request is not null && (request.Method == HttpMethod.Get || request.Method == HttpMethod.Head || request.Headers.Contains("Idempotency-Key"));

    private static bool IsTransient(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or TimeoutException or Polly.Timeout.TimeoutRejectedException ||
        (outcome.Exception is TaskCanceledException && outcome.Result is null && outcome.Exception.InnerException is TimeoutException) ||
        outcome.Result?.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway
            or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
}

/// <summary>Registration with <c>IHttpClientFactory</c>.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>Registers <see cref="OpenPoolClient"/> as a typed HTTP client with the retry rules.</summary>
    public static IHttpClientBuilder AddOpenPoolClient(this IServiceCollection services, Action<OpenPoolClientOptions>? configure = null)
    {
        var options = new OpenPoolClientOptions();
        configure?.Invoke(options);
        services.AddSingleton(options);
        var builder = services.AddHttpClient<OpenPoolClient>(http => http.BaseAddress = options.ResolveEndpoint());
        builder.AddResilienceHandler("openpool", pipeline => OpenPoolResilience.Configure(pipeline, options));
        return builder;
    }
}
