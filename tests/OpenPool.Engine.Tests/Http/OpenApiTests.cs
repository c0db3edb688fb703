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
                                     "/cluster/list", "/cluster/info/{cluster}", "/cluster/operations/{cluster}", "/ssh/{instance_id}", "/health", "/healthz" })
            Assert.True(paths.ContainsKey(path), path);
        Assert.NotNull(paths["/cluster/create"]!["post"]!["requestBody"]);
    }

    [Fact]
    public async Task Every_operation_but_the_keyless_ones_declares_the_bearer_requirement()
    {
        var document = JsonNode.Parse(await _engine.ClientWithKey(null).GetStringAsync("/openapi.json"))!;
        Assert.Equal("bearer", document["components"]!["securitySchemes"]!["bearer"]!["scheme"]!.GetValue<string>());
        Assert.Empty(document["security"]?.AsArray() ?? []);
        var keyless = new HashSet<string> { "GET /healthz" };
        var operations = 0;
        foreach (var (path, item) in document["paths"]!.AsObject())
            foreach (var (method, operation) in item!.AsObject())
            {
                operations++;
                var name = $"{method.ToUpperInvariant()} {path}";
                var security = operation!["security"]?.AsArray();
                if (keyless.Contains(name))
                {
                    Assert.True(security is null || security.Count == 0, $"{name} needs no key but declares {security?.ToJsonString()}");
                    continue;
                }
                Assert.True(security is { Count: 1 } && security[0]!.AsObject().ContainsKey("bearer"), $"{name}: {security?.ToJsonString() ?? "no security"}");
            }
        Assert.True(operations > 30, $"only {operations} operations");
        Assert.DoesNotContain("/job/upload/{job_id}", document["paths"]!.AsObject().Select(p => p.Key)); // signed links, not API operations
    }

    [Fact]
    public async Task Operations_declared_keyless_really_answer_without_a_key_and_the_others_do_not()
    {
        var document = JsonNode.Parse(await _engine.ClientWithKey(null).GetStringAsync("/openapi.json"))!;
        var anonymous = _engine.ClientWithKey(null);
        foreach (var (path, item) in document["paths"]!.AsObject())
            foreach (var (method, operation) in item!.AsObject())
            {
                var concrete = System.Text.RegularExpressions.Regex.Replace(path, "{[^}]+}", "x");
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), concrete);
                var response = await anonymous.SendAsync(request);
                var declared = operation!["security"]?.AsArray() is { Count: > 0 };
                Assert.True(declared == (response.StatusCode == HttpStatusCode.Unauthorized), $"{method} {path}: declares a key {declared}, answers {(int)response.StatusCode}");
            }
    }

    [Fact]
    public async Task Each_resource_kind_uses_one_path_parameter_name()
    {
        var document = JsonNode.Parse(await _engine.ClientWithKey(null).GetStringAsync("/openapi.json"))!;
        var namesByKind = new Dictionary<string, HashSet<string>>();
        foreach (var (path, _) in document["paths"]!.AsObject())
            foreach (System.Text.RegularExpressions.Match parameter in System.Text.RegularExpressions.Regex.Matches(path, "{([^}]+)}"))
            {
                var kind = path.Split('/', StringSplitOptions.RemoveEmptyEntries)[0]; // cluster, storage, job, request, ssh, user, admin
                namesByKind.TryAdd(kind, []);
                namesByKind[kind].Add(parameter.Groups[1].Value);
            }
        Assert.All(namesByKind, kind => Assert.True(kind.Value.Count == 1, $"/{kind.Key}/… uses {string.Join(", ", kind.Value)}"));
        Assert.Equal(["cluster"], namesByKind["cluster"]); // the official name (DELETE /cluster/{cluster}, edit, operations)
    }

    [Fact]
    public async Task Docs_page_is_served_without_a_key()
    {
        var response = await _engine.ClientWithKey(null).GetAsync("/docs");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("/openapi.json", await response.Content.ReadAsStringAsync());
    }
}
