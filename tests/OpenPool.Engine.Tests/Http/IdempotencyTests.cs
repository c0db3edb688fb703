using System.Net;
using System.Net.Http.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using OpenPool.Engine.Data;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

public abstract class IdempotencyTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend);

    public void Dispose() => _engine.Dispose();

    private static HttpRequestMessage Create(string key, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/cluster/create") { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    [Fact]
    public async Task The_first_answer_is_replayed_for_the_same_key()
    {
        var client = _engine.Admin();
        var first = await client.SendAsync(Create("create-1", new { instance_type = "1xH100" }));
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.False(first.Headers.Contains("Idempotent-Replayed"));
        var firstBody = await first.Content.ReadAsStringAsync();

        var second = await client.SendAsync(Create("create-1", new { instance_type = "1xH100" }));
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.Equal("true", second.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(firstBody, await second.Content.ReadAsStringAsync());

        var list = await (await client.GetAsync("/cluster/list")).Json();
        Assert.Single(list.GetProperty("clusters").EnumerateArray());
    }

    [Fact]
    public async Task The_same_key_with_a_different_body_is_a_422()
    {
        var client = _engine.Admin();
        Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(Create("k", new { instance_type = "1xH100" }))).StatusCode);
        var mismatch = await client.SendAsync(Create("k", new { instance_type = "8xH100" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, mismatch.StatusCode);
        Assert.Equal("idempotency_key_mismatch", (await mismatch.Json()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_same_body_with_other_whitespace_or_key_order_is_a_replay()
    {
        var client = _engine.Admin();
        var first = await client.SendAsync(Raw("POST", "/cluster/create", "reordered", """{"instance_type":"1xH100","tp_cluster_name":"reorder","num_nodes":1}"""));
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var firstBody = await first.Content.ReadAsStringAsync();

        var again = await client.SendAsync(Raw("POST", "/cluster/create", "reordered",
            """
            {
              "num_nodes" : 1,
              "tp_cluster_name": "reorder",   "instance_type": "1xH100"
            }
            """));
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(firstBody, await again.Content.ReadAsStringAsync());

        // The same fields with another value are another request, however they are laid out.
        var other = await client.SendAsync(Raw("POST", "/cluster/create", "reordered", """{"num_nodes":2,"tp_cluster_name":"reorder","instance_type":"1xH100"}"""));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, other.StatusCode);
        Assert.Equal("idempotency_key_mismatch", (await other.Json()).GetProperty("error").GetString());
        Assert.Single((await (await client.GetAsync("/cluster/list")).Json()).GetProperty("clusters").EnumerateArray());
    }

    [Fact]
    public async Task A_retried_user_creation_mints_no_second_key_and_never_replays_the_first()
    {
        var client = _engine.Admin();
        const string body = """{"email":"once@example.com","org_name":"once-lab"}""";
        var first = await client.SendAsync(Raw("POST", "/admin/users", "mint-user", body));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var apiKey = (await first.Json()).GetProperty("api_key").GetString()!;

        var retry = await client.SendAsync(Raw("POST", "/admin/users", "mint-user", body));
        Assert.Equal(HttpStatusCode.Conflict, retry.StatusCode);
        Assert.Equal("true", retry.Headers.GetValues("Idempotent-Replayed").Single());
        var text = await retry.Content.ReadAsStringAsync();
        Assert.DoesNotContain(apiKey, text, StringComparison.Ordinal);
        var error = await retry.Json();
        Assert.Equal("api_key_already_created", error.GetProperty("error").GetString());
        Assert.Contains("shown only once", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("POST /admin/keys", error.GetProperty("message").GetString(), StringComparison.Ordinal);

        var keys = await (await client.GetAsync("/admin/keys?email=once@example.com")).Json();
        Assert.Single(keys.GetProperty("keys").EnumerateArray());
        await AssertNotStoredAsync(apiKey);
        // The key the first answer carried works: the record is about the answer, not the key.
        Assert.Equal(HttpStatusCode.OK, (await _engine.ClientWithKey(apiKey).GetAsync("/user/info")).StatusCode);
    }

    [Fact]
    public async Task A_retried_key_creation_mints_no_second_key_and_says_which_one_to_revoke()
    {
        var client = _engine.Admin();
        await _engine.NewUserAsync("keys@example.com");
        const string body = """{"email":"keys@example.com"}""";
        var first = await client.SendAsync(Raw("POST", "/admin/keys", "mint-key", body));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var created = await first.Json();
        var apiKey = created.GetProperty("api_key").GetString()!;
        var keyId = created.GetProperty("key_id").GetString()!;

        var retry = await client.SendAsync(Raw("POST", "/admin/keys", "mint-key", " {\"email\": \"keys@example.com\"} "));
        Assert.Equal(HttpStatusCode.Conflict, retry.StatusCode);
        var text = await retry.Content.ReadAsStringAsync();
        Assert.DoesNotContain(apiKey, text, StringComparison.Ordinal);
        Assert.Contains($"DELETE /admin/keys/{keyId}", (await retry.Json()).GetProperty("message").GetString(), StringComparison.Ordinal);

        var keys = await (await client.GetAsync("/admin/keys?email=keys@example.com")).Json();
        Assert.Equal(2, keys.GetProperty("keys").GetArrayLength()); // the user's first key and the one minted here
        await AssertNotStoredAsync(apiKey);
    }

    /// <summary>No idempotency record holds the key's text (the answers are stored as bytes).</summary>
    private async Task AssertNotStoredAsync(string apiKey)
    {
        var db = _engine.Services.GetRequiredService<Database>();
        var bodies = await db.ReadAsync(c => c.QueryAsync<byte[]?>("SELECT response_body FROM idempotency_keys"));
        Assert.NotEmpty(bodies);
        foreach (var stored in bodies)
        {
            var text = System.Text.Encoding.UTF8.GetString(stored ?? []);
            Assert.DoesNotContain(apiKey, text, StringComparison.Ordinal);
            Assert.DoesNotContain("tpk_", text, StringComparison.Ordinal);
        }
    }

    private static HttpRequestMessage Raw(string method, string path, string key, string json)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    [Fact]
    public async Task Keys_belong_to_their_user()
    {
        var other = await _engine.NewUserAsync("other@example.com");
        Assert.Equal(HttpStatusCode.Accepted, (await _engine.Admin().SendAsync(Create("shared", new { instance_type = "1xH100" }))).StatusCode);
        var theirs = await other.SendAsync(Create("shared", new { instance_type = "1xH100" }));
        Assert.Equal(HttpStatusCode.Accepted, theirs.StatusCode);
        Assert.False(theirs.Headers.Contains("Idempotent-Replayed"));
    }

    [Fact]
    public async Task Validation_errors_are_replayed_too_and_bad_keys_are_refused()
    {
        var client = _engine.Admin();
        var first = await client.SendAsync(Create("bad-body", new { instance_type = "nope" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, first.StatusCode);
        var again = await client.SendAsync(Create("bad-body", new { instance_type = "nope" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, again.StatusCode);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());

        var tooLong = await client.SendAsync(Create(new string('k', 300), new { instance_type = "1xH100" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooLong.StatusCode);
    }

    [Fact]
    public async Task Fifty_concurrent_duplicates_create_exactly_one_cluster()
    {
        var client = _engine.Admin();
        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => client.SendAsync(Create("race", new { instance_type = "1xH100" }))));

        var statuses = responses.Select(r => (int)r.StatusCode).ToList();
        Assert.All(statuses, s => Assert.True(s is 202 or 409, $"unexpected {s}"));
        Assert.Contains(202, statuses);
        foreach (var conflict in responses.Where(r => r.StatusCode == HttpStatusCode.Conflict))
            Assert.Equal("idempotency_key_in_flight", (await conflict.Json()).GetProperty("error").GetString());
        var clusterIds = new HashSet<string>();
        foreach (var accepted in responses.Where(r => r.StatusCode == HttpStatusCode.Accepted))
            clusterIds.Add((await accepted.Json()).GetProperty("cluster_id").GetString()!);
        Assert.Single(clusterIds);

        var list = await (await client.GetAsync("/cluster/list")).Json();
        Assert.Single(list.GetProperty("clusters").EnumerateArray());
        var replay = await client.SendAsync(Create("race", new { instance_type = "1xH100" }));
        Assert.Equal(clusterIds.Single(), (await replay.Json()).GetProperty("cluster_id").GetString());
    }

    [Fact]
    public async Task A_call_whose_engine_died_after_committing_is_answered_from_what_it_committed()
    {
        var client = _engine.Admin();
        var (clusterId, requestId, _) = await client.CreateClusterAsync();
        var db = _engine.Services.GetRequiredService<Database>();
        var adminId = await db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT id FROM users WHERE is_operator = @yes", new { yes = true }));
        // The state a crash leaves: the key claimed, the request committed, no answer stored.
        var body = """{"instance_type":"1xH100"}"""u8.ToArray();
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Path = "/cluster/create";
        var hash = OpenPool.Engine.Http.Idempotency.RequestHash(context.Request, body);
        var past = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 120_000;
        await db.WriteAsync((c, t) => c.ExecuteAsync(
            "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, created_at, locked_until, committed_requests) VALUES (@adminId, 'lost', @hash, @past, @past, @requestId)",
            new { adminId, hash, past, requestId }, t));

        var retry = new HttpRequestMessage(HttpMethod.Post, "/cluster/create") { Content = new ByteArrayContent(body) };
        retry.Headers.Add("Idempotency-Key", "lost");
        retry.Content.Headers.ContentType = new("application/json");
        var response = await client.SendAsync(retry);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("true", response.Headers.GetValues("Idempotent-Replayed").Single());
        var answer = await response.Json();
        Assert.Equal(clusterId, answer.GetProperty("cluster_id").GetString());
        Assert.Equal(requestId, answer.GetProperty("request_id").GetString());
        Assert.Single(answer.GetProperty("instance_ids").EnumerateArray());
        Assert.Single((await (await client.GetAsync("/cluster/list")).Json()).GetProperty("clusters").EnumerateArray());
    }

    [Fact]
    public async Task A_key_still_in_flight_answers_409_until_its_claim_lapses()
    {
        var client = _engine.Admin();
        // Another call (on this or another replica) has claimed the key and not answered yet.
        var db = _engine.Services.GetRequiredService<Database>();
        var adminId = await db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT id FROM users WHERE is_operator = @yes", new { yes = true }));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await db.WriteAsync((c, t) => c.ExecuteAsync(
            "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, created_at, locked_until) VALUES (@adminId, 'busy', 'x', @now, @until)",
            new { adminId, now, until = now + 60_000 }, t));

        var conflict = await client.SendAsync(Create("busy", new { instance_type = "1xH100" }));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal("idempotency_key_in_flight", (await conflict.Json()).GetProperty("error").GetString());

        // The claimant died: once its claim lapses, a retry with the key goes through.
        await db.WriteAsync((c, t) => c.ExecuteAsync("UPDATE idempotency_keys SET locked_until = @past WHERE idem_key = 'busy'", new { past = now - 1 }, t));
        Assert.Equal(HttpStatusCode.Accepted, (await client.SendAsync(Create("busy", new { instance_type = "1xH100" }))).StatusCode);
    }
}

public sealed class IdempotencyOnSqlite() : IdempotencyTests(Backend.Sqlite);

public sealed class IdempotencyOnPostgres() : IdempotencyTests(Backend.Postgres);
