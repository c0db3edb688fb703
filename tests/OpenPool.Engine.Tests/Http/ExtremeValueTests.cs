using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

/// <summary>
/// Numbers no account could ever need (1e20 dollars, 1e308 GB) must be refused with a 422, never
/// overflow into a 500 where they are turned into micro-dollars or 64-bit sizes; and a body naming a
/// field twice is refused, since parsers disagree on which value wins.
/// </summary>
public abstract class ExtremeValueTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    private static readonly string[] Extremes =
    [
        "1e20", "1e308", "-1e308", "7.9e28", "-7.9e28", "79228162514264337593543950336", "9223372036854775808", "-9223372036854775809",
        "1e400", "-1e400", "1e-400", "2147483648", "\"1e20\"", "\"7.9e28\"", "\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"1e400\"",
    ];

    /// <summary>A valid body for every JSON endpoint, so that an extreme value is the only thing wrong with it.</summary>
    private static Dictionary<string, string> ValidBodies(string cluster, string volume) => new()
    {
        ["POST /cluster/create"] = """{"instance_type":"1xH100","num_nodes":1}""",
        ["PATCH /cluster/edit/{cluster}"] = """{"deletion_protection":false}""",
        ["POST /storage/create"] = """{"size":10}""",
        ["PATCH /storage/edit/{storage_id}"] = """{"size_gb":10}""",
        ["POST /storage/attach"] = $$"""{"storage_id":"{{volume}}","cluster_ids":["{{cluster}}"]}""",
        ["POST /storage/detach"] = $$"""{"storage_id":"{{volume}}","cluster_id":"{{cluster}}"}""",
        ["POST /admin/users"] = """{"email":"sweep@example.com","balance_usd":5}""",
        ["POST /admin/credit"] = """{"email":"sweep@example.com","amount_usd":1}""",
        ["POST /admin/keys"] = """{"email":"sweep@example.com"}""",
        ["PATCH /user/preferences"] = """{"balance_warning_threshold":100,"autopay_reload_threshold":20}""",
        ["POST /user/ssh-key/add"] = $$"""{"public_key":"{{TestKeys.Ed25519}}","name":"sweep"}""",
    };

    [Fact]
    public async Task Every_field_of_every_json_endpoint_survives_extreme_numbers_without_a_5xx()
    {
        var admin = _engine.Admin();
        var (cluster, request, _) = await admin.CreateClusterAsync();
        await admin.PollLikeCliAsync(request);
        var created = await (await admin.PostJson("/storage/create", """{"size":10}""")).Json();
        await admin.PollLikeCliAsync(created.GetProperty("request_id").GetString()!);
        var volume = created.GetProperty("storage_id").GetString()!;
        var bodies = ValidBodies(cluster, volume);

        // Every operation the API document gives a JSON body must be swept: a new endpoint fails here until it has a valid body above.
        var document = await (await _engine.CreateClient().GetAsync("/openapi.json")).Json();
        var operations = JsonBodyOperations(document).ToList();
        Assert.Equal(bodies.Keys.Where(k => k != "POST /admin/keys").Order(), operations.Select(o => o.Key).Order());

        var failures = new List<string>();
        var sent = 0;
        foreach (var (operation, validBody) in bodies)
        {
            var fields = JsonNode.Parse(validBody)!.AsObject().Select(p => p.Key)
                .Union(operations.FirstOrDefault(o => o.Key == operation).Fields ?? []).ToList();
            var (method, path) = (operation.Split(' ')[0], operation.Split(' ')[1].Replace("{cluster}", cluster).Replace("{storage_id}", volume));
            foreach (var field in fields)
                foreach (var extreme in Extremes)
                {
                    // Written as text: 1e400 and friends are valid JSON no .NET number type can hold.
                    var raw = JsonNode.Parse(validBody)!.AsObject().ToDictionary(p => p.Key, p => p.Value!.ToJsonString());
                    raw[field] = extreme;
                    var json = "{" + string.Join(",", raw.Select(p => $"\"{p.Key}\":{p.Value}")) + "}";
                    using var message = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
                    using var response = await admin.SendAsync(message);
                    sent++;
                    if ((int)response.StatusCode >= 500)
                        failures.Add($"{method} {path} {json} -> {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(sent > 400, $"only {sent} requests were sent");
    }

    [Theory]
    [InlineData("PATCH", "/user/preferences", """{"balance_warning_threshold": 7.9e28}""", "body.balance_warning_threshold")]
    [InlineData("PATCH", "/user/preferences", """{"balance_warning_threshold": 1e308}""", "body.balance_warning_threshold")]
    [InlineData("PATCH", "/user/preferences", """{"autopay_reload_threshold": 79228162514264337593543950335}""", "body.autopay_reload_threshold")]
    [InlineData("POST", "/admin/users", """{"email": "rich@example.com", "balance_usd": 1e20}""", "body.balance_usd")]
    [InlineData("POST", "/admin/users", """{"email": "rich@example.com", "balance_usd": "7.9e28"}""", "body.balance_usd")]
    [InlineData("POST", "/admin/credit", """{"org_name": "operators", "amount_usd": 1e20}""", "body.amount_usd")]
    [InlineData("POST", "/admin/credit", """{"org_name": "operators", "amount_usd": -1e308}""", "body.amount_usd")]
    [InlineData("POST", "/storage/create", """{"size": 1e20}""", "body.size")]
    [InlineData("POST", "/cluster/create", """{"instance_type": "1xH100", "num_nodes": 9223372036854775808}""", "body.num_nodes")]
    public async Task Amounts_and_sizes_beyond_any_account_are_a_422_naming_the_field(string method, string path, string json, string loc)
    {
        using var message = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        var response = await _engine.Admin().SendAsync(message);
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)response.StatusCode}: {body}");
        Assert.Contains(body.GetProperty("detail").EnumerateArray(), d =>
            string.Join('.', d.GetProperty("loc").EnumerateArray().Select(l => l.ToString())) == loc
            && d.GetProperty("type").GetString() is "less_than_equal" or "greater_than_equal");
        Assert.Contains(loc.Split('.')[1], body.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"instance_type":"1xH100","instance_type":"8xH100"}""")]
    [InlineData("""{"instance_type":"1xH100","instance_\u0074ype":"8xH100"}""")]
    [InlineData("""{"instance_type":"1xH100","public_keys":[],"num_nodes":1,"public_keys":["x"]}""")]
    [InlineData("""{"instance_type":"1xH100","extra":[{"a":1,"a":2}]}""")]
    public async Task A_field_sent_twice_is_a_422_and_creates_nothing(string json)
    {
        var response = await _engine.Admin().PostJson("/cluster/create", json);
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("json_invalid", body.GetProperty("detail")[0].GetProperty("type").GetString());
        Assert.Contains("duplicate key", body.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty((await (await _engine.Admin().GetAsync("/cluster/list")).Json()).GetProperty("clusters").EnumerateArray());
    }

    [Fact]
    public async Task Duplicate_keys_are_refused_on_every_json_endpoint()
    {
        var response = await _engine.Admin().PatchAsync("/user/preferences",
            new StringContent("""{"balance_warning_threshold":100,"balance_warning_threshold":5}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var admin = await _engine.Admin().PostJson("/admin/users", """{"email":"a@example.com","email":"b@example.com"}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, admin.StatusCode);
        Assert.Single((await (await _engine.Admin().GetAsync("/admin/users")).Json()).GetProperty("users").EnumerateArray()); // the operator alone
    }

    /// <summary>"METHOD /path" and the property names of each operation that declares a JSON request body.</summary>
    private static IEnumerable<(string Key, List<string> Fields)> JsonBodyOperations(JsonElement document)
    {
        var schemas = document.GetProperty("components").GetProperty("schemas");
        foreach (var path in document.GetProperty("paths").EnumerateObject())
            foreach (var operation in path.Value.EnumerateObject())
            {
                if (!operation.Value.TryGetProperty("requestBody", out var requestBody))
                    continue;
                var schema = requestBody.GetProperty("content").GetProperty("application/json").GetProperty("schema");
                if (schema.TryGetProperty("$ref", out var reference))
                    schema = schemas.GetProperty(reference.GetString()!.Split('/')[^1]);
                var fields = schema.TryGetProperty("properties", out var properties) ? properties.EnumerateObject().Select(p => p.Name).ToList() : [];
                yield return ($"{operation.Name.ToUpperInvariant()} {path.Name}", fields);
            }
    }
}

public sealed class ExtremeValuesOnSqlite() : ExtremeValueTests(Backend.Sqlite);

public sealed class ExtremeValuesOnPostgres() : ExtremeValueTests(Backend.Postgres);
