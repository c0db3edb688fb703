using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using OpenPool.Contracts;

namespace OpenPool.Engine.Http;

/// <summary>
/// Makes every non-success answer JSON with <c>message</c> and <c>error</c>: thrown <see cref="ApiError"/>s,
/// framework rejections (bad request line, body too large, wrong method, unknown route), and
/// unexpected faults, which are logged in full but answered with nothing an attacker could use.
/// An endpoint with an <see cref="IEndpointErrorFormat"/> gets the same answers in its own format.
/// </summary>
internal static class ErrorHandling
{
    public static void UseJsonErrors(this WebApplication app)
    {
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = async context =>
            {
                var feature = context.Features.Get<IExceptionHandlerFeature>();
                var exception = feature?.Error;
                // The handler runs with the endpoint cleared; the feature keeps the one that failed.
                var endpoint = feature?.Endpoint;
                if (exception is not null && EndpointErrorFormats.Of(endpoint) is { } format && format.ExpectedStatus(exception) is { } expected)
                {
                    await WriteExpectedAsync(context, format, expected, exception);
                    return;
                }
                var error = exception switch
                {
                    ApiError api => api,
                    BadHttpRequestException bad => new ApiError(bad.StatusCode, "bad_request", "The request could not be read: " + bad.Message),
                    JsonException => ApiError.Validation(["body", 0], "json_invalid", "JSON decode error"),
                    OperationCanceledException when context.RequestAborted.IsCancellationRequested =>
                        new ApiError(499, "client_closed_request", "The client closed the request."),
                    _ => null,
                };
                if (error is null)
                {
                    context.RequestServices.GetRequiredService<ILoggerFactory>()
                        .CreateLogger("OpenPool.Engine.Errors")
                        .LogError(exception, "Unhandled fault on {Method} {Path}", context.Request.Method, context.Request.Path);
                    error = new ApiError(StatusCodes.Status500InternalServerError, "internal_error",
                        "The engine hit an unexpected fault. It has been logged; please try again.");
                }
                await WriteAsync(context, error, exception, endpoint);
            },
        });

        // Expected failures (ApiError and unreadable input) are answered here, before the exception
        // handler, which would log each one as an unhandled fault.
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (Exception ex) when (EndpointErrorFormats.Of(context.GetEndpoint()) is { } format && format.ExpectedStatus(ex) is { } status)
            {
                await WriteExpectedAsync(context, format, status, ex);
            }
            catch (ApiError error)
            {
                await WriteAsync(context, error, error);
            }
            catch (BadHttpRequestException bad)
            {
                await WriteAsync(context, new ApiError(bad.StatusCode, "bad_request", "The request could not be read: " + bad.Message), bad);
            }
            catch (Exception ex) when (Data.Database.IsUniqueViolation(ex))
            {
                // Two requests raced past a uniqueness check (names, ids) and the database kept one.
                await WriteAsync(context, ApiError.Conflict("conflict", "A conflicting change was made at the same time. Retry the request."), ex);
            }
        });

        // Answers the framework produced without a body (404 for an unknown route, 405, 415…) get one.
        app.UseStatusCodePages(async statusContext =>
        {
            var context = statusContext.HttpContext;
            var status = context.Response.StatusCode;
            var error = status switch
            {
                404 => ApiError.NotFound("not_found", $"No such endpoint: {context.Request.Method} {context.Request.Path}"),
                405 => new ApiError(405, "method_not_allowed", $"{context.Request.Method} is not allowed on {context.Request.Path}"),
                415 => new ApiError(415, "unsupported_media_type", "Send the body as application/json."),
                _ => new ApiError(status, "http_" + status, $"The request failed with status {status}."),
            };
            await WriteAsync(context, error);
        });
    }

    /// <summary>
    /// Answers <paramref name="error"/>: as JSON, or in the error format of <paramref name="endpoint"/>
    /// (default: the request's matched endpoint) when it has one. <paramref name="cause"/> is what was
    /// thrown, if anything, for the format to see.
    /// </summary>
    public static async Task WriteAsync(HttpContext context, ApiError error, Exception? cause = null, Endpoint? endpoint = null)
    {
        if (context.Response.HasStarted)
            return;
        context.Response.StatusCode = error.Status;
        context.Response.Headers.RetryAfter = default;
        if (EndpointErrorFormats.Of(endpoint ?? context.GetEndpoint()) is { } format)
        {
            await format.WriteAsync(context, new EndpointError(error.Status, error.Error, error.Message, cause));
            return;
        }
        await context.Response.WriteAsJsonAsync(error.ToBody(), ApiJson.Options, context.RequestAborted);
    }

    private static async Task WriteExpectedAsync(HttpContext context, IEndpointErrorFormat format, int status, Exception exception)
    {
        if (context.Response.HasStarted)
            return;
        context.Response.StatusCode = status;
        context.Response.Headers.RetryAfter = default;
        await format.WriteAsync(context, new EndpointError(status, "http_" + status, exception.Message, exception));
    }

    public static IResult ToResult(this ApiError error) =>
        Results.Json(error.ToBody(), ApiJson.Options, statusCode: error.Status);
}
