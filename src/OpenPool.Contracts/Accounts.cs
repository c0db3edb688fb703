namespace OpenPool.Contracts;

/// <summary>Request body for POST /admin/users.</summary>
public sealed record CreateUserRequest
{
    /// <summary>The user's email; unique.</summary>
    public required string Email { get; init; }
    /// <summary>Organization to join; created when it does not exist.</summary>
    public string? OrgName { get; init; }
    /// <summary><c>member</c> (default) or <c>admin</c> of the organization.</summary>
    public string? Role { get; init; }
}

/// <summary>Answer to POST /admin/users. The key is shown only here.</summary>
public sealed record CreateUserResponse
{
    /// <summary>The new user's id.</summary>
    public required string UserId { get; init; }
    /// <summary>The user's API key (tpk_…); stored only as a hash.</summary>
    public required string ApiKey { get; init; }
    /// <summary>Readable text.</summary>
    public string? Message { get; init; }
}

/// <summary>Answer to POST /health.</summary>
public sealed record HealthResponse
{
    /// <summary>Text the CLI prints when present; null when there is nothing to say.</summary>
    public string? Message { get; init; }
}

/// <summary>One side effect the simulated cloud carried out.</summary>
public sealed record SimulatedEffect
{
    /// <summary><c>provision</c>, <c>release</c>, …</summary>
    public required string Kind { get; init; }
    /// <summary>The cluster or volume affected.</summary>
    public required string ObjectId { get; init; }
    /// <summary>The request that caused it.</summary>
    public required string RequestId { get; init; }
    /// <summary>When it took effect (ISO 8601).</summary>
    public required string At { get; init; }
}

/// <summary>Answer to GET /admin/simulated/effects.</summary>
public sealed record SimulatedEffectsResponse
{
    /// <summary>The effects, oldest first.</summary>
    public required IReadOnlyList<SimulatedEffect> Effects { get; init; }
}
