namespace OpenPool.Client;

/// <summary>Where the engine is and which key to use.</summary>
public sealed class OpenPoolClientOptions
{
    /// <summary>The default engine, as the official CLI's.</summary>
    public static readonly Uri DefaultEndpoint = new("https://engine.tensorpool.dev");

    /// <summary>The engine's base URL; falls back to <c>TENSORPOOL_ENGINE</c>, then <see cref="DefaultEndpoint"/>.</summary>
    public Uri? Endpoint { get; set; }

    /// <summary>The API key; falls back to <c>TENSORPOOL_KEY</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>How long one long-poll may hold while waiting for an operation (the engine caps it at 60 s).</summary>
    public TimeSpan LongPollWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries of transient faults (idempotent calls, and mutations carrying an Idempotency-Key).</summary>
    public int MaxRetries { get; set; } = 3;

    internal Uri ResolveEndpoint() =>
        Endpoint ?? (Environment.GetEnvironmentVariable("TENSORPOOL_ENGINE") is { Length: > 0 } env ? new Uri(env) : DefaultEndpoint);

    internal string? ResolveApiKey() =>
        ApiKey ?? (Environment.GetEnvironmentVariable("TENSORPOOL_KEY") is { Length: > 0 } key ? key : null);
}
