using System.Net;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Requests;

public abstract class RequestListTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend, new() { ["Simulated:ProvisionSeconds"] = "30" });

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task Lists_page_newest_first_with_a_cursor_and_filter_by_type_status_and_object()
    {
        var client = await _engine.NewUserAsync("pager@example.com");
        var created = new List<(string ClusterId, string RequestId)>();
        for (var i = 0; i < 5; i++)
        {
            var (clusterId, requestId, _) = await client.CreateClusterAsync();
            created.Add((clusterId, requestId));
        }
        var destroy = await (await client.DeleteAsync($"/cluster/{created[0].ClusterId}")).Json();
        var releaseId = destroy.GetProperty("request_id").GetString();

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync("/request/list?limit=2" + (cursor is null ? "" : $"&cursor={cursor}"))).Json();
            var ids = page.GetProperty("requests").EnumerateArray().Select(r => r.GetProperty("request_id").GetString()!).ToList();
            Assert.InRange(ids.Count, 1, 2);
            seen.AddRange(ids);
            cursor = page.GetProperty("next_cursor").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        var expected = created.Select(c => c.RequestId).Reverse().Prepend(releaseId!).ToList();
        Assert.Equal(expected, seen);

        var releases = await (await client.GetAsync("/request/list?type=cluster_release")).Json();
        Assert.Equal([releaseId], releases.GetProperty("requests").EnumerateArray().Select(r => r.GetProperty("request_id").GetString()));

        var failed = await (await client.GetAsync("/request/list?status=FAILED")).Json();
        Assert.Equal([created[0].RequestId], failed.GetProperty("requests").EnumerateArray().Select(r => r.GetProperty("request_id").GetString()));

        var byObject = await (await client.GetAsync($"/request/list?object_id={created[0].ClusterId}")).Json();
        Assert.Equal(2, byObject.GetProperty("requests").GetArrayLength());
        Assert.Contains(created[0].ClusterId, byObject.GetProperty("message").GetString());

        var operations = await (await client.GetAsync($"/cluster/operations/{created[0].ClusterId}?type=CLUSTER_CLAIM")).Json();
        Assert.Equal([created[0].RequestId], operations.GetProperty("requests").EnumerateArray().Select(r => r.GetProperty("request_id").GetString()));
    }

    [Fact]
    public async Task Unknown_request_ids_are_404_with_a_message()
    {
        var response = await _engine.Admin().GetAsync("/request/info/req_doesnotexist");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("request_not_found", body.GetProperty("error").GetString());
        Assert.Contains("req_doesnotexist", body.GetProperty("message").GetString());
    }
}

public sealed class RequestListOnSqlite() : RequestListTests(Backend.Sqlite);

public sealed class RequestListOnPostgres() : RequestListTests(Backend.Postgres);
