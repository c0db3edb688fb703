using System.Text.Json.Serialization;

namespace OpenPool.Contracts;

/// <summary>The body of every error answer.</summary>
public sealed record ErrorResponse
{
    /// <summary>Human-readable text; what the official CLI prints.</summary>
    public required string Message { get; init; }
    /// <summary>A stable machine-readable code, e.g. <c>cluster_not_found</c>.</summary>
    public required string Error { get; init; }
    /// <summary>Validation errors (422 only), in FastAPI's shape.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ValidationError>? Detail { get; init; }
}

/// <summary>One validation failure, in FastAPI's shape.</summary>
public sealed record ValidationError
{
    /// <summary>Where the bad value is, e.g. <c>["body", "num_nodes"]</c>.</summary>
    public required IReadOnlyList<object> Loc { get; init; }
    /// <summary>What is wrong.</summary>
    public required string Msg { get; init; }
    /// <summary>The kind of failure, e.g. <c>missing</c>, <c>int_parsing</c>.</summary>
    public required string Type { get; init; }
}
