using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>Small helpers for calling the engine the way the official CLI does.</summary>
public static class Api
{
    public static async Task<JsonElement> Json(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public static Task<HttpResponseMessage> PostJson(this HttpClient client, string path, string json) =>
        client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    public static Task<HttpResponseMessage> PatchJson(this HttpClient client, string path, object body) =>
        client.PatchAsync(path, JsonContent.Create(body));

    public static async Task<(string ClusterId, string RequestId, JsonElement Body)> CreateClusterAsync(
        this HttpClient client, string instanceType = "1xH100", object? extra = null)
    {
        var fields = new Dictionary<string, object?> { ["instance_type"] = instanceType };
        if (extra is not null)
            foreach (var p in extra.GetType().GetProperties())
                fields[p.Name] = p.GetValue(extra);
        var response = await client.PostAsJsonAsync("/cluster/create", fields);
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body.ToString());
        return (body.GetProperty("cluster_id").GetString()!, body.GetProperty("request_id").GetString()!, body);
    }

    public sealed record PollResult(JsonElement Final, int Polls, List<int?> RetryAfters);

    /// <summary>
    /// Polls GET /request/info exactly as tp's _poll_request_until_terminal does: sleep Retry-After
    /// (at least 1 s; 2 s when absent) until COMPLETED or FAILED.
    /// </summary>
    public static async Task<PollResult> PollLikeCliAsync(this HttpClient client, string requestId, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        var polls = 0;
        var retryAfters = new List<int?>();
        while (true)
        {
            var response = await client.GetAsync($"/request/info/{requestId}");
            polls++;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Json();
            var status = body.GetProperty("status").GetString();
            int? retryAfter = response.Headers.RetryAfter?.Delta is { } delta ? (int)delta.TotalSeconds : null;
            retryAfters.Add(retryAfter);
            if (status is "COMPLETED" or "FAILED")
            {
                Assert.Null(response.Headers.RetryAfter);
                return new PollResult(body, polls, retryAfters);
            }
            Assert.NotNull(retryAfter);
            Assert.InRange(retryAfter!.Value, 1, 30);
            Assert.True(DateTime.UtcNow < deadline, $"request {requestId} still {status} after the timeout");
            await Task.Delay(TimeSpan.FromSeconds(Math.Max(1, retryAfter.Value)));
        }
    }
}
