using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Amazon.Runtime;
using Amazon.S3;
using OpenPool.Bench.Scenarios;

namespace OpenPool.Bench.Harness;

/// <summary>
/// A user of an engine's object storage, set up as a user would: an org admin made through the
/// operator API, <c>POST /object-storage/enable</c> with that user's key, a bucket through the
/// management API, and S3 clients built from the credentials it answered (their <c>endpoint</c>,
/// never a URL the harness guesses).
/// </summary>
public sealed class S3Tenant
{
    private readonly BenchEngine _engine;
    private readonly string _apiKey;

    private S3Tenant(BenchEngine engine, string apiKey)
    {
        _engine = engine;
        _apiKey = apiKey;
    }

    /// <summary>What the SDK put in each request's <c>x-amz-content-sha256</c> (and trailer), counted: the payload form it chose.</summary>
    public PayloadForms Forms { get; } = new();

    public static async Task<S3Tenant> CreateAsync(BenchEngine engine, params string[] buckets)
    {
        using var admin = engine.Client(connections: 2);
        var user = await admin.PostAsJsonAsync("/admin/users", new { email = $"s3-{Guid.NewGuid():N}@bench.example", org_name = "s3-bench", role = "admin", balance_usd = 100000 })
            .ExpectAsync(HttpStatusCode.OK, "create user");
        var tenant = new S3Tenant(engine, user.GetProperty("api_key").GetString()!);
        using var client = engine.Client(tenant._apiKey, connections: 2);
        await client.PostAsync("/object-storage/enable", null).ExpectAsync(HttpStatusCode.OK, "enable object storage");
        foreach (var bucket in buckets)
            await client.PutAsync($"/object-storage/bucket/create/{bucket}", null).ExpectAsync(HttpStatusCode.Created, "create bucket " + bucket);
        return tenant;
    }

    /// <summary>
    /// An AWSSDK.S3 client on the credentials the management API answers now (after a restart the
    /// endpoint's port is a new one), path-style, with the SDK's default payload and checksum
    /// behaviour, no retries (a failure must show, not be hidden in a slower figure).
    /// </summary>
    public async Task<AmazonS3Client> ClientAsync(int connections)
    {
        using var client = _engine.Client(_apiKey, connections: 2);
        var credentials = await client.GetAsync("/object-storage/credentials").ExpectAsync(HttpStatusCode.OK, "object storage credentials");
        var endpoint = credentials.GetProperty("endpoint").GetString()!;
        // The credentials must name the listener the engine printed, or every S3 figure measures nothing.
        if (new Uri(endpoint).Port != _engine.S3Url.Port)
            throw new InvalidOperationException($"the credentials' endpoint {endpoint} is not the S3 listener the engine printed ({_engine.S3Url})");
        return new AmazonS3Client(
            new BasicAWSCredentials(credentials.GetProperty("access_key_id").GetString(), credentials.GetProperty("secret_access_key").GetString()),
            new AmazonS3Config
            {
                ServiceURL = endpoint,
                ForcePathStyle = true,
                AuthenticationRegion = credentials.GetProperty("region").GetString(),
                MaxConnectionsPerServer = connections,
                MaxErrorRetry = 0,
                Timeout = TimeSpan.FromMinutes(10),
                HttpClientFactory = new RecordingFactory(Forms),
            });
    }

    /// <summary>Counts of "METHOD x-amz-content-sha256 [trailer]" over the requests an SDK client sent.</summary>
    public sealed class PayloadForms
    {
        private readonly ConcurrentDictionary<string, int> _counts = new();

        public void Reset() => _counts.Clear();

        internal void Seen(HttpRequestMessage request)
        {
            var sha = request.Headers.TryGetValues("x-amz-content-sha256", out var values) ? values.First() : "(none)";
            if (sha.Length == 64 && sha.All(Uri.IsHexDigit))
                sha = "signed SHA-256 of the body";
            var trailer = request.Headers.TryGetValues("x-amz-trailer", out var t) ? $" + trailer {t.First()}" : "";
            _counts.AddOrUpdate($"{request.Method} {sha}{trailer}", 1, (_, n) => n + 1);
        }

        /// <summary>The forms seen for one method, e.g. "PUT STREAMING-… + trailer x-amz-checksum-crc32 (×N)".</summary>
        public string Describe(string method) =>
            string.Join(", ", _counts.Where(c => c.Key.StartsWith(method + " ", StringComparison.Ordinal)).OrderBy(c => c.Key).Select(c => $"{c.Key[(method.Length + 1)..]} (×{c.Value})"));
    }

    /// <summary>The SDK's HttpClients, with a handler that records each request's payload form.</summary>
    private sealed class RecordingFactory(PayloadForms forms) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig)
        {
            var sockets = new SocketsHttpHandler
            {
                MaxConnectionsPerServer = clientConfig.MaxConnectionsPerServer ?? 64,
                PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
                AutomaticDecompression = DecompressionMethods.None,
                UseProxy = false,
            };
            return new HttpClient(new Recorder(forms) { InnerHandler = sockets }) { Timeout = clientConfig.Timeout ?? TimeSpan.FromMinutes(10) };
        }
    }

    private sealed class Recorder(PayloadForms forms) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            forms.Seen(request);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
