using System.Net;
using OpenPool.Contracts;

namespace OpenPool.Client;

/// <summary>The engine answered with an error: its HTTP status, stable code, message and (422) validation details.</summary>
public sealed class OpenPoolException : Exception
{
    /// <summary>Creates the exception from an engine error answer.</summary>
    public OpenPoolException(HttpStatusCode status, string? errorCode, string message, IReadOnlyList<ValidationError>? detail = null)
        : base(message)
    {
        Status = status;
        ErrorCode = errorCode;
        Detail = detail ?? [];
    }

    /// <summary>Creates an exception with a message only.</summary>
    public OpenPoolException() : this(0, null, "The engine returned an error.")
    {
    }

    /// <summary>Creates an exception with a message only.</summary>
    public OpenPoolException(string message) : this(0, null, message)
    {
    }

    /// <summary>Creates an exception wrapping another.</summary>
    public OpenPoolException(string message, Exception innerException) : base(message, innerException)
    {
        Detail = [];
    }

    /// <summary>The HTTP status the engine answered with.</summary>
    public HttpStatusCode Status { get; }

    /// <summary>The engine's stable error code, e.g. <c>cluster_not_found</c>.</summary>
    public string? ErrorCode { get; }

    /// <summary>Validation failures of a 422, one per bad field.</summary>
    public IReadOnlyList<ValidationError> Detail { get; }
}
