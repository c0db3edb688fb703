using System.Text.Json.Nodes;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>The object-storage routes appear in the OpenAPI document under TensorPool's tag, with their codes.</summary>
public sealed class ManagementOpenApiTests : IDisposable
{
    private readonly EngineFactory _engine = new();

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task Every_object_storage_route_is_documented_under_the_object_storage_tag()
    {
        var document = JsonNode.Parse(await _engine.ClientWithKey(null).GetStringAsync("/openapi.json"))!;
        var paths = document["paths"]!.AsObject();
        var expected = new (string Path, string Method, string Status)[]
        {
            ("/object-storage/enable", "post", "200"),
            ("/object-storage/disable", "delete", "409"),
            ("/object-storage/credentials", "get", "200"),
            ("/object-storage/rotate-keys", "post", "200"),
            ("/object-storage/configure/aws", "get", "200"),
            ("/object-storage/configure/rclone", "get", "200"),
            ("/object-storage/bucket/list", "get", "200"),
            ("/object-storage/bucket/create/{bucket_name}", "put", "201"),
            ("/object-storage/bucket/delete/{bucket_name}", "delete", "204"),
        };
        foreach (var (path, method, status) in expected)
        {
            var operation = paths[path]?[method];
            Assert.True(operation is not null, $"{method} {path} missing");
            Assert.Equal(["object-storage"], operation!["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
            Assert.False(string.IsNullOrWhiteSpace(operation["summary"]?.GetValue<string>()), $"{method} {path} has no summary");
            Assert.True(operation["responses"]![status] is not null, $"{method} {path} does not document {status}");
        }
        var credentials = document["components"]!["schemas"]!["ObjectStorageCredentials"]!["properties"]!.AsObject();
        foreach (var field in new[] { "org_id", "access_key_id", "secret_access_key", "endpoint", "region", "profile_id", "iam_username", "status", "created_at", "updated_at" })
            Assert.True(credentials.ContainsKey(field), field);
    }
}
