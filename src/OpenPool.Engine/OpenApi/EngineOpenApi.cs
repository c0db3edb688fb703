using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using OpenPool.Engine.Accounts;

namespace OpenPool.Engine.OpenApi;

/// <summary>Declares an endpoint's JSON request body for the OpenAPI document without making routing enforce a Content-Type.</summary>
internal sealed record JsonBodyMetadata(Type BodyType);

internal static class EngineOpenApi
{
    private const string BearerScheme = "bearer";

    public static RouteHandlerBuilder AcceptsJson<TBody>(this RouteHandlerBuilder builder) =>
        builder.WithMetadata(new JsonBodyMetadata(typeof(TBody)));

    public static void AddEngineOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.OpenApiVersion = OpenApiSpecVersion.OpenApi3_1;
            options.AddOperationTransformer((operation, context, ct) =>
            {
                // Every operation needs the bearer key unless marked otherwise (/healthz); the
                // document's top-level security stays [] as TensorPool's does.
                if (!context.Description.ActionDescriptor.EndpointMetadata.OfType<IAllowAnonymous>().Any())
                    operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] }];
                return Task.CompletedTask;
            });
            options.AddOperationTransformer(async (operation, context, ct) =>
            {
                var body = context.Description.ActionDescriptor.EndpointMetadata.OfType<JsonBodyMetadata>().FirstOrDefault();
                if (body is null)
                    return;
                var schema = await context.GetOrCreateSchemaAsync(body.BodyType, null, ct);
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = schema } },
                };
            });
            options.AddDocumentTransformer((document, context, ct) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "TensorPool API",
                    Version = "0.1.0",
                    Description = "OpenPool's implementation of the TensorPool API. Authenticate with 'Authorization: Bearer <TENSORPOOL_KEY>'; " +
                                  "WebSocket endpoints take {\"TENSORPOOL_KEY\": \"...\"} as the first frame. Only /healthz needs no key.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "A TensorPool API key (tpk_…).",
                };
                SeedSchemas.Apply(document);
                return Task.CompletedTask;
            });
        });

    public static void MapEngineOpenApi(this WebApplication app)
    {
        app.MapOpenApi("/openapi.json").NoKeyRequired();
        app.MapGet("/docs", () => Results.Content(DocsPage.Html, "text/html; charset=utf-8")).NoKeyRequired().ExcludeFromDescription();
    }
}

/// <summary>
/// The request-model schemas exactly as TensorPool's (FastAPI) document publishes them: the same
/// property names, required lists, enum values and titles, so generated clients see no difference.
/// </summary>
internal static class SeedSchemas
{
    public static readonly string[] RequestTypes =
        ["CLUSTER_CLAIM", "CLUSTER_RELEASE", "CLUSTER_EDIT", "STORAGE_CREATE", "STORAGE_DESTROY", "STORAGE_ATTACH", "STORAGE_DETACH", "STORAGE_EDIT"];

    public static readonly string[] RequestStatuses = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "RETRYING"];

    public static void Apply(OpenApiDocument document)
    {
        var schemas = document.Components!.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        schemas["RequestType"] = Enum("RequestType", RequestTypes);
        schemas["RequestStatus"] = Enum("RequestStatus", RequestStatuses);
        schemas["RequestInfoResponse"] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Title = "RequestInfoResponse",
            Description = "Response model for individual request info endpoint.",
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["request_id"] = new OpenApiSchema { Type = JsonSchemaType.String, Title = "Request Id" },
                ["request_type"] = new OpenApiSchemaReference("RequestType", document),
                ["status"] = new OpenApiSchemaReference("RequestStatus", document),
                ["created_at"] = new OpenApiSchema { Type = JsonSchemaType.String, Title = "Created At" },
                ["object_id"] = NullableString("Object Id"),
                ["external_message"] = NullableString("External Message"),
            },
            Required = new HashSet<string> { "request_id", "request_type", "status", "created_at" },
        };
        schemas["ValidationError"] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Title = "ValidationError",
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["loc"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Array,
                    Title = "Location",
                    Items = new OpenApiSchema
                    {
                        AnyOf = [new OpenApiSchema { Type = JsonSchemaType.String }, new OpenApiSchema { Type = JsonSchemaType.Integer }],
                    },
                },
                ["msg"] = new OpenApiSchema { Type = JsonSchemaType.String, Title = "Message" },
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Title = "Error Type" },
            },
            Required = new HashSet<string> { "loc", "msg", "type" },
        };
        schemas["HTTPValidationError"] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Title = "HTTPValidationError",
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["detail"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Array,
                    Title = "Detail",
                    Items = new OpenApiSchemaReference("ValidationError", document),
                },
            },
        };
    }

    private static OpenApiSchema Enum(string title, string[] values) => new()
    {
        Type = JsonSchemaType.String,
        Title = title,
        Enum = values.Select(v => (JsonNode)JsonValue.Create(v)).ToList(),
    };

    private static OpenApiSchema NullableString(string title) => new()
    {
        Title = title,
        AnyOf = [new OpenApiSchema { Type = JsonSchemaType.String }, new OpenApiSchema { Type = JsonSchemaType.Null }],
    };
}
