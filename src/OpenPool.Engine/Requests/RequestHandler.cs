using OpenPool.Contracts;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Requests;

/// <summary>
/// Writes to resource rows that must commit atomically with the request's own update. It adds them
/// to <paramref name="write"/>, which sends them with that update (one round trip on PostgreSQL).
/// </summary>
internal delegate void ResourceUpdate(SqlBatch write, long now);

/// <summary>What one step of a request handler decided.</summary>
internal abstract record StepOutcome(string? Message, ResourceUpdate? Update)
{
    /// <summary>Checkpoint: the step is done; persist <paramref name="NextStep"/> and go on.</summary>
    public sealed record Advance(string NextStep, string? Message = null, ResourceUpdate? Update = null) : StepOutcome(Message, Update);

    /// <summary>Nothing to do until <paramref name="Delay"/> has passed (a provider is working); the lease is let go.</summary>
    public sealed record Wait(TimeSpan Delay, string Message, ResourceUpdate? Update = null) : StepOutcome(Message, Update);

    /// <summary>A transient fault: try again after a backoff, until attempts run out.</summary>
    public sealed record Retry(string Message, ResourceUpdate? Update = null) : StepOutcome(Message, Update);

    public sealed record Complete(string Message, ResourceUpdate? Update = null) : StepOutcome(Message, Update);

    public sealed record Fail(string Message, ResourceUpdate? Update = null) : StepOutcome(Message, Update);
}

/// <summary>
/// Carries out one request type as a small state machine. Each call runs the row's current step
/// and must be safe to repeat: after a crash the same step runs again, so effects it causes go
/// through the provider keyed by the request id.
/// </summary>
internal interface IRequestHandler
{
    RequestType Type { get; }

    Task<StepOutcome> RunStepAsync(RequestRow request, CancellationToken ct);

    /// <summary>Resource changes when the request ends FAILED for a reason outside the handler (attempts exhausted).</summary>
    ResourceUpdate? OnGaveUp(RequestRow request);
}
