using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace OpenPool.Bench.Scenarios;

/// <summary>
/// Generated bad requests against every endpoint, from a seed: malformed and truncated JSON, wrong
/// types, huge and odd strings, bad UTF-8 and unicode escapes, odd paths, methods and headers,
/// missing and forged keys. Whatever the engine thinks of them, it must never answer 5xx. The
/// tests run a small corpus in process; the benchmark runs a large one against Kestrel, plus raw
/// HTTP/1.1 that no HTTP client library would send.
/// </summary>
public static class FuzzCorpus
{
    public sealed record Outcome(int Cases, IReadOnlyList<string> ServerErrors);

    private static readonly (string Method, string Path)[] Endpoints =
    [
        ("POST", "/health"), ("GET", "/healthz"), ("POST", "/cluster/create"), ("DELETE", "/cluster/{c}"), ("PATCH", "/cluster/edit/{c}"),
        ("GET", "/cluster/list"), ("GET", "/cluster/info/{c}"), ("GET", "/cluster/operations/{c}"), ("GET", "/ssh/{i}"),
        ("GET", "/request/info/{r}"), ("GET", "/request/list"), ("POST", "/storage/create"), ("DELETE", "/storage/{s}"),
        ("PATCH", "/storage/edit/{s}"), ("POST", "/storage/attach"), ("POST", "/storage/detach"), ("GET", "/storage/list"),
        ("GET", "/storage/info/{s}"), ("POST", "/user/ssh-key/add"), ("GET", "/user/ssh-key/list"), ("DELETE", "/user/ssh-key/remove/{k}"),
        ("GET", "/user/info"), ("GET", "/user/organization/info"), ("GET", "/user/preferences"), ("PATCH", "/user/preferences"),
        ("GET", "/job/init"), ("GET", "/job/list"), ("GET", "/job/info/{j}"), ("POST", "/job/cancel/{j}"), ("DELETE", "/job/delete/{j}"),
        ("GET", "/job/pull/{j}"), ("PUT", "/job/upload/{j}"), ("GET", "/job/download/{j}"), ("GET", "/job/push"), ("GET", "/job/listen/{j}"),
        ("POST", "/admin/users"), ("GET", "/admin/users"), ("GET", "/admin/orgs"), ("POST", "/admin/credit"), ("POST", "/admin/keys"),
        ("GET", "/admin/keys"), ("DELETE", "/admin/keys/{a}"), ("GET", "/admin/simulated/effects"), ("GET", "/openapi.json"), ("GET", "/docs"),
    ];

    private static readonly string[] Fields =
    [
        "instance_type", "num_nodes", "tp_cluster_name", "public_keys", "deletion_protection", "save_keys", "container", "cluster_name",
        "size", "name", "size_gb", "tp_storage_name", "storage_id", "cluster_ids", "cluster_id", "public_key", "email", "org_name", "role",
        "balance_usd", "amount_usd", "notify_email_cluster_create", "balance_warning_threshold", "autopay_reload_threshold", "autopay_enabled",
    ];

    private static readonly string[] Values =
    [
        "null", "true", "false", "0", "-1", "1e309", "-9223372036854775809", "99999999999999999999", "1.5", "\"\"", "\"x\"", "[]", "{}",
        "[null]", "[1,2]", "{\"a\":{\"b\":{\"c\":[]}}}", "\"\\ud800\"", "\"\\udc00\\ud800\"", "\"\\u0000\"", "\"1xH100\"", "\"c-nope\"", "\"' OR 1=1 --\"",
        "\"../../etc/passwd\"", "\"" + new string('a', 5000) + "\"", "\"ssh-ed25519 AAAA\"", "\"ℌ𝔢𝔩𝔩𝔬\"", "NaN", "\"True\"", "[\"ssh-rsa x\", 5]",
        "\"8xH200\"", "1000000", "\"\\\"\"",
    ];

    // "%00" is left out of the in-process corpus: the test host throws on it before any server code
    // runs. Kestrel answers it 400, and the raw cases below send it.
    private static readonly string[] Ids = ["c-nope", "req_nope", "", "%2500", "..%2F..", new string('x', 3000), "i-💥", "s-' OR 1=1", "j-\u0001", "%E2%28%A1"];

    /// <summary>Sends <paramref name="count"/> generated requests to a real engine; <paramref name="adminKey"/> is a valid operator key.</summary>
    public static async Task<Outcome> RunAsync(Uri engine, string adminKey, int count, int seed, int concurrency = 1)
    {
        // Header values go out as UTF-8: the corpus sends non-ASCII keys and headers on purpose.
        using var client = new HttpClient(new SocketsHttpHandler { RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8, UseProxy = false })
        {
            BaseAddress = engine,
            Timeout = TimeSpan.FromSeconds(60),
        };
        var failures = new List<string>();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) is var i && i < count)
            {
                // Each case has its own seed, so a failure names a reproducible request whatever the concurrency.
                var random = new Random(HashCode.Combine(seed, i));
                using var request = Generate(random, adminKey, out var huge);
                var status = huge ? await SendHugeAsync(engine, request) : await SendAsync(client, request);
                if (status is null or >= 500)
                {
                    var body = request.Content is null ? "-" : Convert.ToBase64String(await request.Content.ReadAsByteArrayAsync());
                    lock (failures)
                        failures.Add($"case {i}: {(status is null ? "no answer" : status.ToString())} {request.Method} {request.RequestUri} body(base64)={body[..Math.Min(body.Length, 2000)]}");
                }
            }
        })));
        return new Outcome(count, failures);
    }

    private static async Task<int?> SendAsync(HttpClient client, HttpRequestMessage request)
    {
        try
        {
            using var response = await client.SendAsync(request);
            return (int)response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null; // no answer at all is as bad as a 5xx: the client cannot tell what happened
        }
    }

    /// <summary>
    /// Huge bodies go over a raw socket, read while writing: an engine may rightly answer (401, 404,
    /// 413…) and close before reading them, which an HTTP client library reports as a broken pipe
    /// instead of the answer.
    /// </summary>
    private static async Task<int?> SendHugeAsync(Uri engine, HttpRequestMessage request)
    {
        var head = new StringBuilder($"{request.Method} {request.RequestUri} HTTP/1.1\r\nHost: {engine.Authority}\r\nConnection: close\r\n");
        foreach (var (name, values) in request.Headers.NonValidated)
            head.Append(name).Append(": ").Append(string.Join(", ", values)).Append("\r\n");
        var body = await request.Content!.ReadAsByteArrayAsync();
        head.Append("Content-Type: ").Append(request.Content.Headers.ContentType).Append("\r\n");
        head.Append("Content-Length: ").Append(body.Length).Append("\r\n\r\n");
        return await SendRawAsync(engine, [.. Encoding.UTF8.GetBytes(head.ToString()), .. body]);
    }

    private static HttpRequestMessage Generate(Random random, string adminKey, out bool huge)
    {
        var (method, template) = Endpoints[random.Next(Endpoints.Length)];
        var path = template;
        foreach (var placeholder in new[] { "{c}", "{i}", "{r}", "{s}", "{k}", "{j}", "{a}" })
            path = path.Replace(placeholder, Ids[random.Next(Ids.Length)], StringComparison.Ordinal);
        if (random.Next(6) == 0)
            path += Pick(random, "?include_org=maybe", "?wait=-5", "?wait=abc", "?limit=0&cursor=x", "?instances=%ZZ", "?files=../x", "?status=DONE&type=X",
                "?cursor=" + new string('9', 40), "?limit=99999999999", "?object_id=%27");
        var request = new HttpRequestMessage(new HttpMethod(random.Next(12) == 0 ? Pick(random, "PUT", "TRACE", "OPTIONS", "PATCH", "HEAD") : method),
            new Uri(path, UriKind.Relative))
        {
            Content = Body(random, out huge),
        };
        switch (random.Next(8))
        {
            case 0:
                break; // no key at all
            case 1:
                request.Headers.TryAddWithoutValidation("Authorization", Pick(random, "Bearer", "Bearer ", "Basic abc", "Bearer tpk_" + new string('z', 300),
                    "Bearer tpk_\u00e9", "Bearer tpk_00000000000000000000000000000000"));
                break;
            default:
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + adminKey);
                break;
        }
        if (random.Next(5) == 0)
            request.Headers.TryAddWithoutValidation("Idempotency-Key", Pick(random, "", " ", "k", new string('k', 400), "ключ", "k\tk"));
        if (random.Next(5) == 0)
            request.Headers.TryAddWithoutValidation("Prefer", Pick(random, "wait=abc", "wait=-1", "wait=99999999999", "return=minimal, wait=0", "wait"));
        return request;
    }

    private static ByteArrayContent? Body(Random random, out bool huge)
    {
        huge = false;
        byte[] bytes;
        switch (random.Next(9))
        {
            case 0:
                return null;
            case 1:
                bytes = [0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]; // invalid UTF-8
                break;
            case 2:
                var json = Object(random);
                bytes = Encoding.UTF8.GetBytes(json[..random.Next(json.Length)]); // truncated
                break;
            case 3:
                bytes = Encoding.UTF8.GetBytes(Pick(random, "[]", "\"x\"", "1", "null", "{{}", "{\"a\":}", "\u0000", new string('[', 5000), "{\"a\":1,\"a\":2}"));
                break;
            case 4:
                // A huge body, mostly zeros.
                bytes = new byte[random.Next(64 * 1024, 2 * 1024 * 1024)];
                random.NextBytes(bytes.AsSpan(0, 64));
                huge = true;
                break;
            default:
                bytes = Encoding.UTF8.GetBytes(Object(random));
                break;
        }
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(Pick(random, "application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"));
        return content;
    }

    private static string Object(Random random)
    {
        var fields = Enumerable.Range(0, random.Next(1, 6))
            .Select(_ => $"\"{Fields[random.Next(Fields.Length)]}\": {Values[random.Next(Values.Length)]}");
        return "{" + string.Join(", ", fields) + "}";
    }

    private static string Pick(Random random, params string[] options) => options[random.Next(options.Length)];

    /// <summary>
    /// Raw HTTP/1.1 on a socket: request lines, paths and headers no client library produces. Returns
    /// the cases whose status line was 5xx (a closed connection without an answer is not one).
    /// </summary>
    public static async Task<Outcome> RunRawAsync(Uri engine, string adminKey)
    {
        var paths = new[] { "/request/info/%00", "/cluster/info/%ff%fe", "//cluster//list", "/cluster/info/" + new string('a', 20000), "/request/info/req_x?wait=%00",
            "/cluster/list?include_org=%", "/../../etc/passwd", "/cluster/info/c%2Fx", "*", "/user/info#frag", "/job/info/%C0%AF" };
        var methods = new[] { "GET", "POST", "DELETE", "PATCH", "BREW", "CONNECT" };
        var headers = new[] { "", $"Authorization: Bearer {adminKey}\r\n", "Authorization: Bearer \u00ff\r\n", "Content-Length: -1\r\n",
            "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n", "Prefer: wait=\u0001\r\n", "Idempotency-Key: \u00e9\r\n" };
        var failures = new List<string>();
        var cases = 0;
        foreach (var path in paths)
        foreach (var method in methods)
        foreach (var header in headers)
        {
            cases++;
            var auth = header.StartsWith("Authorization", StringComparison.Ordinal) ? "" : $"Authorization: Bearer {adminKey}\r\n";
            var raw = $"{method} {path} HTTP/1.1\r\nHost: {engine.Authority}\r\n{auth}{header}Connection: close\r\n\r\n{{\"x\":";
            var status = await SendRawAsync(engine, Encoding.Latin1.GetBytes(raw));
            if (status is >= 500)
                failures.Add($"{status} for raw {raw.Replace("\r\n", "\\r\\n", StringComparison.Ordinal)}");
        }
        return new Outcome(cases, failures);
    }

    private static async Task<int?> SendRawAsync(Uri engine, byte[] request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(engine.Host, engine.Port);
        var stream = client.GetStream();
        var writing = Task.Run(async () =>
        {
            try
            {
                // No half-close after it: Kestrel takes a client's FIN for a disconnect and drops the call.
                await stream.WriteAsync(request);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                // The engine answered and closed before taking it all: its answer is what counts.
            }
        });
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            var read = await stream.ReadAtLeastAsync(buffer, 12, throwOnEndOfStream: false, timeout.Token);
            var line = Encoding.ASCII.GetString(buffer, 0, read);
            await writing.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return line.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) && int.TryParse(line.AsSpan(9, 3), out var status) ? status : null;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            return null;
        }
    }
}
