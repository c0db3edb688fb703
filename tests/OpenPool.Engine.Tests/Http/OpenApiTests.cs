using System.Net;
using System.Text.Json.Nodes;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

/// <summary>The request-model schemas must match TensorPool's published (FastAPI) document exactly.</summary>
public sealed class OpenApiTests : IDisposable
{
    private const string SeedSchemas = """
    {
      "RequestInfoResponse": {
        "properties": {
          "request_id": {"type": "string", "title": "Request Id"},
          "request_type": {"$ref": "#/components/schemas/RequestType"},
          "status": {"$ref": "#/components/schemas/RequestStatus"},
          "created_at": {"type": "string", "title": "Created At"},
          "object_id": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Object Id"},
          "external_message": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "External Message"}
        },
        "type": "object",
        "required": ["request_id", "request_type", "status", "created_at"],
        "title": "RequestInfoResponse",
        "description": "Response model for individual request info endpoint."
      },
      "RequestType": {
        "type": "string",
        "enum": ["CLUSTER_CLAIM", "CLUSTER_RELEASE", "CLUSTER_EDIT", "STORAGE_CREATE", "STORAGE_DESTROY", "STORAGE_ATTACH", "STORAGE_DETACH", "STORAGE_EDIT"],
        "title": "RequestType"
      },
      "RequestStatus": {
        "type": "string",
        "enum": ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "RETRYING"],
        "title": "RequestStatus"
      },
      "ValidationError": {
        "properties": {
          "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "type": "array", "title": "Location"},
          "msg": {"type": "string", "title": "Message"},
          "type": {"type": "string", "title": "Error Type"}
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
        "title": "ValidationError"
      },
      "HTTPValidationError": {
        "properties": {
          "detail": {"items": {"$ref": "#/components/schemas/ValidationError"}, "type": "array", "title": "Detail"}
        },
        "type": "object",
        "title": "HTTPValidationError"
      }
    }
    """;

    private readonly EngineFactory _engine = new();

    public void Dispose() => _engine.Dispose();

    [Theory]
    [InlineData("RequestInfoResponse")]
    [InlineData("RequestType")]
    [InlineData("RequestStatus")]
    [InlineData("ValidationError")]
    [InlineData("HTTPValidationError")]
    public async Task Seed_schemas_match_exactly(string name)
    {
        var document = JsonNode.Parse(await _engine.ClientWithKey(null).GetStringAsync("/openapi.json"))!;
        var expected = JsonNode.Parse(SeedSchemas)![name];
        var actual = document["components"]!["schemas"]![name];
        Assert.True(JsonNode.DeepEquals(expected, actual), $"expected {expected?.ToJsonString()}\nactual   {actual?.ToJsonString()}");
    }

    [Fact]
    public async Task Document_is_openapi_31_and_describes_the_request_and_cluster_endpoints()
    {
        var document = JsonNode.Parse(await _engine.ClientWithKey(null).GetStringAsync("/openapi.json"))!;
        Assert.StartsWith("3.1", document["openapi"]!.GetValue<string>());
        var paths = document["paths"]!.AsObject();
        foreach (var path in new[] { "/request/info/{request_id}", "/request/list", "/cluster/create", "/cluster/{cluster}", "/cluster/edit/{cluster}",
                                     "/cluster/list", "/cluster/info/{cluster_id}", "/cluster/operations/{cluster}", "/ssh/{instance_id}", "/health", "/healthz" })
            Assert.True(paths.ContainsKey(path), path);
        Assert.NotNull(paths["/cluster/create"]!["post"]!["requestBody"]);
    }

    [Fact]
    public async Task Docs_page_is_served_without_a_key()
    {
        var response = await _engine.ClientWithKey(null).GetAsync("/docs");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("/openapi.json", await response.Content.ReadAsStringAsync());
    }
}
