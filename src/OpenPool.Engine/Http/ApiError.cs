using OpenPool.Contracts;

namespace OpenPool.Engine.Http;

/// <summary>
/// An answer that is not a success: a status, a stable <c>error</c> code and the <c>message</c> the
/// official CLI prints. Thrown from anywhere in a handler and written by <see cref="ErrorHandling"/>.
/// </summary>
internal sealed class ApiError(int status, string error, string message, IReadOnlyList<ValidationError>? detail = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Error { get; } = error;
    public IReadOnlyList<ValidationError>? Detail { get; } = detail;

    public ErrorResponse ToBody() => new() { Message = Message, Error = Error, Detail = Detail };

    public static ApiError NotFound(string error, string message) => new(StatusCodes.Status404NotFound, error, message);
    public static ApiError Conflict(string error, string message) => new(StatusCodes.Status409Conflict, error, message);
    public static ApiError BadRequest(string error, string message) => new(StatusCodes.Status400BadRequest, error, message);
    public static ApiError Unauthorized(string message) => new(StatusCodes.Status401Unauthorized, "unauthorized", message);
    public static ApiError Forbidden(string message) => new(StatusCodes.Status403Forbidden, "forbidden", message);

    public static ApiError Validation(IReadOnlyList<ValidationError> detail)
    {
        var summary = string.Join("; ", detail.Select(d => $"{string.Join('.', d.Loc)}: {d.Msg}"));
        return new(StatusCodes.Status422UnprocessableEntity, "validation_error", "Invalid request: " + summary, detail);
    }

    public static ApiError Validation(object[] loc, string type, string msg) =>
        Validation([new ValidationError { Loc = loc, Type = type, Msg = msg }]);
}
