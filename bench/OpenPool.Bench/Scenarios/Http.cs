using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace OpenPool.Bench.Scenarios;

/// <summary>The few calls the scenarios share, with failures as exceptions that say what the engine answered.</summary>
public static class Http
{
    public static async Task<JsonElement> ExpectAsync(this Task<HttpResponseMessage> call, HttpStatusCode expected, string what)
    {
        using var response = await call;
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != expected)
            throw new InvalidOperationException($"{what}: expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A new user in an organization of its own, through the operator API; returns its API key.</summary>
    public static async Task<string> NewUserAsync(HttpClient admin, string email, string org)
    {
        var body = await admin.PostAsJsonAsync("/admin/users", new { email, org_name = org }).ExpectAsync(HttpStatusCode.OK, "create user");
        return body.GetProperty("api_key").GetString()!;
    }

    /// <summary>Creates a 1xH100 cluster and waits for its claim to complete; returns the request id.</summary>
    public static async Task<string> CompletedClaimAsync(HttpClient client)
    {
        var created = await client.PostAsJsonAsync("/cluster/create", new { instance_type = "1xH100" }).ExpectAsync(HttpStatusCode.Accepted, "create");
        var id = created.GetProperty("request_id").GetString()!;
        await WaitCompletedAsync(client, id);
        return id;
    }

    /// <summary>Long-polls a request until it is COMPLETED (or throws with its final state).</summary>
    public static async Task<JsonElement> WaitCompletedAsync(HttpClient client, string requestId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            var info = await client.GetAsync($"/request/info/{requestId}?wait=30").ExpectAsync(HttpStatusCode.OK, "request info");
            switch (info.GetProperty("status").GetString())
            {
                case "COMPLETED":
                    return info;
                case "FAILED":
                    throw new InvalidOperationException($"request {requestId} FAILED: {info}");
            }
        }
        throw new TimeoutException($"request {requestId} did not finish");
    }
}
