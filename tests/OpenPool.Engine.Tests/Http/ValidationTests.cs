using System.Net;
using System.Text;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

/// <summary>Every kind of bad input answers 422 in FastAPI's shape, with a readable message; never a 500.</summary>
public abstract class ValidationTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    [Theory]
    [InlineData("{\"instance_type\": ", "json_invalid", "body")]
    [InlineData("[1, 2]", "model_attributes_type", "body")]
    [InlineData("\"text\"", "model_attributes_type", "body")]
    [InlineData("{}", "missing", "body.instance_type")]
    [InlineData("", "missing", "body")]
    [InlineData("{\"instance_type\": 5}", "string_type", "body.instance_type")]
    [InlineData("{\"instance_type\": \"1xH100\", \"num_nodes\": \"many\"}", "int_parsing", "body.num_nodes")]
    [InlineData("{\"instance_type\": \"1xH100\", \"num_nodes\": [1]}", "int_type", "body.num_nodes")]
    [InlineData("{\"instance_type\": \"1xH100\", \"num_nodes\": 1.5}", "int_from_float", "body.num_nodes")]
    [InlineData("{\"instance_type\": \"1xH100\", \"num_nodes\": 0}", "greater_than_equal", "body.num_nodes")]
    [InlineData("{\"instance_type\": \"1xH100\", \"deletion_protection\": \"perhaps\"}", "bool_parsing", "body.deletion_protection")]
    [InlineData("{\"instance_type\": \"1xH100\", \"deletion_protection\": {}}", "bool_type", "body.deletion_protection")]
    [InlineData("{\"instance_type\": \"1xH100\", \"public_keys\": \"ssh-ed25519 AAAA\"}", "list_type", "body.public_keys")]
    [InlineData("{\"instance_type\": \"1xH100\", \"public_keys\": [1]}", "string_type", "body.public_keys.0")]
    [InlineData("{\"instance_type\": \"1xH100\", \"tp_cluster_name\": \"bad name!\"}", "string_pattern_mismatch", "body.tp_cluster_name")]
    [InlineData("{\"instance_type\": \"\\ud800\"}", "string_unicode", "body.instance_type")]
    [InlineData("{\"instance_type\": \"1xH100\", \"deletion_protection\": \"\\udc00\"}", "bool_parsing", "body.deletion_protection")]
    public async Task Bad_cluster_create_bodies_get_422_with_detail(string json, string type, string loc)
    {
        var response = await _engine.Admin().PostJson("/cluster/create", json);
        await AssertValidationError(response, type, loc);
    }

    [Fact]
    public async Task All_problems_of_a_body_are_reported_at_once()
    {
        var response = await _engine.Admin().PostJson("/cluster/create", "{\"num_nodes\": \"x\", \"deletion_protection\": 3}");
        var body = await response.Json();
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var types = body.GetProperty("detail").EnumerateArray().Select(d => d.GetProperty("type").GetString()).Order().ToList();
        Assert.Equal(["bool_parsing", "int_parsing", "missing"], types);
    }

    [Fact]
    public async Task Bad_query_values_get_422()
    {
        await AssertValidationError(await _engine.Admin().GetAsync("/cluster/list?include_org=sometimes"), "bool_parsing", "query.include_org");
        await AssertValidationError(await _engine.Admin().GetAsync("/request/list?status=DONE"), "enum", "query.status");
        await AssertValidationError(await _engine.Admin().GetAsync("/request/list?limit=0"), "greater_than_equal", "query.limit");
        await AssertValidationError(await _engine.Admin().GetAsync("/request/info/req_x?wait=soon"), "int_parsing", "query.wait");
    }

    [Theory]
    [InlineData("true")]
    [InlineData("True")]
    [InlineData("TRUE")]
    [InlineData("false")]
    [InlineData("False")]
    public async Task Boolean_queries_accept_any_case(string value)
    {
        var response = await _engine.Admin().GetAsync($"/cluster/list?include_org={value}&instances={value}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Edit_needs_at_least_one_field()
    {
        var (clusterId, _, _) = await _engine.Admin().CreateClusterAsync();
        var response = await _engine.Admin().PatchJson($"/cluster/edit/{clusterId}", new { });
        await AssertValidationError(response, "value_error", "body");
    }

    [Fact]
    public async Task Invalid_utf8_is_a_json_error_not_a_fault()
    {
        var content = new ByteArrayContent([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
        content.Headers.ContentType = new("application/json");
        var response = await _engine.Admin().PostAsync("/cluster/create", content);
        await AssertValidationError(response, "json_invalid", "body");
    }

    [Fact]
    public async Task Unknown_routes_and_methods_answer_json()
    {
        var missing = await _engine.Admin().GetAsync("/no/such/thing");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("not_found", (await missing.Json()).GetProperty("error").GetString());

        var wrongMethod = await _engine.Admin().PutAsync("/cluster/list", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.False(string.IsNullOrEmpty((await wrongMethod.Json()).GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Oversized_bodies_are_refused_with_json()
    {
        var huge = "{\"instance_type\": \"" + new string('x', 2 * 1024 * 1024) + "\"}";
        var response = await _engine.Admin().PostJson("/cluster/create", huge);
        Assert.True((int)response.StatusCode is 413 or 422, $"got {(int)response.StatusCode}");
        Assert.False(string.IsNullOrEmpty((await response.Json()).GetProperty("message").GetString()));
    }

    private static async Task AssertValidationError(HttpResponseMessage response, string type, string loc)
    {
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("validation_error", body.GetProperty("error").GetString());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
        var details = body.GetProperty("detail").EnumerateArray().ToList();
        Assert.NotEmpty(details);
        Assert.Contains(details, d =>
            d.GetProperty("type").GetString() == type &&
            string.Join('.', d.GetProperty("loc").EnumerateArray().Select(l => l.ValueKind == JsonValueKind.Number ? l.GetInt32().ToString() : l.GetString()))
                .StartsWith(loc, StringComparison.Ordinal) &&
            !string.IsNullOrEmpty(d.GetProperty("msg").GetString()));
    }
}

public sealed class ValidationOnSqlite() : ValidationTests(Backend.Sqlite);

public sealed class ValidationOnPostgres() : ValidationTests(Backend.Postgres);
