using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using OpenPool.Client;
using OpenPool.Contracts;
using OpenPool.Engine.Tests.Infrastructure;
using Polly;

namespace OpenPool.Client.Tests;

public sealed class ClientTests : IDisposable
{
    private readonly EngineFactory _engine = new(Backend.Sqlite, new() { ["Simulated:ProvisionSeconds"] = "1", ["Simulated:VolumeSeconds"] = "0.2", ["Simulated:RestartSeconds"] = "0.2" });

    public void Dispose() => _engine.Dispose();

    private OpenPoolClient Client(string? key = null, Func<HttpMessageHandler, HttpMessageHandler>? wrap = null, bool resilience = true)
    {
        var options = new OpenPoolClientOptions { Endpoint = new Uri("http://localhost/"), ApiKey = key ?? _engine.AdminKey, MaxRetries = 3 };
        HttpMessageHandler handler = _engine.Server.CreateHandler();
        if (wrap is not null)
            handler = wrap(handler);
        if (resilience)
        {
            var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>();
            OpenPoolResilience.Configure(pipeline, options);
            handler = new ResilienceHandler(pipeline.Build()) { InnerHandler = handler };
        }
        return new OpenPoolClient(new HttpClient(handler), options);
    }

    [Fact]
    public async Task A_cluster_is_created_waited_for_edited_and_destroyed()
    {
        var client = Client();
        await client.CheckHealthAsync();
        var seen = new List<RequestStatus>();
        var create = await client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100", TpClusterName = "sdk" });
        Assert.StartsWith("c-", create.Accepted.ClusterId);
        var final = await create.WaitForCompletionAsync(new Recorder<RequestInfoResponse>(i => seen.Add(i.Status)));
        Assert.Equal(RequestStatus.Completed, final.Status);
        Assert.True(create.HasCompleted);
        Assert.Equal(RequestStatus.Completed, seen[^1]);

        var cluster = await client.GetClusterAsync(create.Accepted.ClusterId);
        Assert.Equal(ClusterStatus.Running, cluster.Cluster.Status);
        Assert.Contains((await client.ListClustersAsync()).Clusters, c => c.ClusterId == create.Accepted.ClusterId);

        var edit = await client.EditClusterAsync(create.Accepted.ClusterId, new ClusterEditRequest { DeletionProtection = true });
        await edit.WaitForSuccessAsync();
        var refused = await Assert.ThrowsAsync<OpenPoolException>(() => client.DestroyClusterAsync(create.Accepted.ClusterId));
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Equal("deletion_protected", refused.ErrorCode);
        await (await client.EditClusterAsync(create.Accepted.ClusterId, new ClusterEditRequest { DeletionProtection = false })).WaitForSuccessAsync();
        await (await client.DestroyClusterAsync(create.Accepted.ClusterId)).WaitForSuccessAsync();
        Assert.Equal(ClusterStatus.Destroyed, (await client.GetClusterAsync(create.Accepted.ClusterId)).Cluster.Status);
        var operations = await client.ListClusterOperationsAsync(create.Accepted.ClusterId);
        Assert.Equal(4, operations.Requests.Count);
    }

    [Fact]
    public async Task Waiting_falls_back_to_Retry_After_when_the_engine_does_not_long_poll()
    {
        var counter = new CountingHandler(stripPrefer: true);
        var client = Client(wrap: inner => { counter.InnerHandler = inner; return counter; });
        var create = await client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100" });
        var final = await create.WaitForCompletionAsync();
        Assert.Equal(RequestStatus.Completed, final.Status);
        Assert.InRange(counter.Gets, 2, 4); // a 1-second claim: a look, one Retry-After sleep or two, the answer
    }

    [Fact]
    public async Task Operations_can_be_rehydrated_from_a_request_id()
    {
        var first = Client();
        var create = await first.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100" });
        var later = Client().GetOperation(create.Id);
        Assert.Null(later.Status);
        var info = await later.UpdateStatusAsync();
        Assert.Equal(create.Id, info.RequestId);
        Assert.Equal(RequestStatus.Completed, (await later.WaitForCompletionAsync()).Status);
    }

    [Fact]
    public async Task Errors_carry_status_code_message_and_validation_detail()
    {
        var client = Client();
        var missing = await Assert.ThrowsAsync<OpenPoolException>(() => client.GetClusterAsync("c-nope"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Equal("cluster_not_found", missing.ErrorCode);
        Assert.Contains("c-nope", missing.Message);

        var invalid = await Assert.ThrowsAsync<OpenPoolException>(() => client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100", NumNodes = 0 }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.Status);
        Assert.Contains(invalid.Detail, d => d.Type == "greater_than_equal");

        var unauthorized = await Assert.ThrowsAsync<OpenPoolException>(() => Client("tpk_wrong").CheckHealthAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.Status);
    }

    [Fact]
    public async Task Transient_faults_are_retried_for_reads_and_keyed_mutations_but_not_unkeyed_ones()
    {
        var flaky = new FlakyHandler(failuresPerRequest: 1);
        var client = Client(wrap: inner => { flaky.InnerHandler = inner; return flaky; });

        var list = await client.ListClustersAsync();               // GET: retried after the fault
        Assert.Empty(list.Clusters);
        var create = await client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100" }); // keyed POST: retried
        Assert.StartsWith("c-", create.Accepted.ClusterId);
        Assert.Single((await client.ListClustersAsync()).Clusters);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.CheckHealthAsync()); // unkeyed POST: not retried
        Assert.Equal(1, flaky.Attempts("POST /health"));
        Assert.Equal(2, flaky.Attempts("POST /cluster/create"));
    }

    [Fact]
    public async Task A_user_creation_whose_answer_was_lost_ends_in_a_clear_409_not_a_second_user_or_key()
    {
        // The engine carries out the first attempt, then the answer is lost on the way back: the
        // retry (same Idempotency-Key) must neither mint a second key nor bring back the first.
        var lost = new LostFirstAnswerHandler();
        var client = Client(wrap: inner => { lost.InnerHandler = inner; return lost; });
        var error = await Assert.ThrowsAsync<OpenPoolException>(() => client.CreateUserAsync(new CreateUserRequest { Email = "lost@example.com" }));
        Assert.Equal(HttpStatusCode.Conflict, error.Status);
        Assert.Equal("api_key_already_created", error.ErrorCode);
        Assert.Contains("POST /admin/keys", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, lost.Attempts);

        var admin = Client();
        Assert.Single((await admin.ListUsersAsync()).Users, u => u.Email == "lost@example.com");
        Assert.Single((await admin.ListApiKeysAsync("lost@example.com")).Keys);
        // The way out the message names works.
        var fresh = await admin.CreateApiKeyAsync("lost@example.com");
        Assert.StartsWith("tpk_", fresh.ApiKey, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Storage_keys_user_and_operator_calls_work()
    {
        var client = Client();
        var volume = await client.CreateStorageAsync(new StorageCreateRequest { Size = 100, Name = "sdk-data" });
        await volume.WaitForSuccessAsync();
        var cluster = await client.CreateClusterAsync(new ClusterCreateRequest { InstanceType = "1xH100" });
        var attaches = await client.AttachStorageAsync(volume.Accepted.StorageId, [cluster.Accepted.ClusterId]);
        foreach (var attach in attaches)
            await attach.WaitForSuccessAsync();
        Assert.Single((await client.GetStorageAsync(volume.Accepted.StorageId)).Storage.AttachedClusters);
        await (await client.DetachStorageAsync(volume.Accepted.StorageId, cluster.Accepted.ClusterId)).WaitForSuccessAsync();
        await (await client.EditStorageAsync(volume.Accepted.StorageId, new StorageEditRequest { SizeGb = 200 })).WaitForSuccessAsync();
        Assert.Equal(200, (await client.GetStorageAsync(volume.Accepted.StorageId)).Storage.SizeGb);

        var key = await client.AddSshKeyAsync("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA2gZUJtj1J1ZDeyQ2pRFrgEvhMbFUv+RxpjKccZ2G+n ada@lab", "laptop");
        Assert.Single((await client.ListSshKeysAsync()).Keys);
        await client.RemoveSshKeyAsync(key.Key.KeyId);

        var user = await client.CreateUserAsync(new CreateUserRequest { Email = "sdk@example.com", OrgName = "sdk-lab" });
        var asUser = Client(user.ApiKey);
        Assert.Equal("sdk@example.com", (await asUser.GetUserAsync()).User.Email);
        Assert.Equal("sdk-lab", (await asUser.GetOrganizationAsync()).Organization.Name);
        var prefs = await asUser.UpdatePreferencesAsync(new PreferencesUpdate { BalanceWarningThreshold = 50 });
        Assert.Equal(50m, prefs.BalanceWarningThreshold);
        var credit = await client.CreditAsync(new CreditRequest { OrgName = "sdk-lab", AmountUsd = 5 });
        Assert.Equal(1005m, credit.BalanceUsd);
        Assert.Contains((await client.ListUsersAsync()).Users, u => u.Email == "sdk@example.com");
        Assert.Contains((await client.ListOrganizationsAsync()).Orgs, o => o.Name == "sdk-lab");
        var extra = await client.CreateApiKeyAsync("sdk@example.com");
        await client.RevokeApiKeyAsync(extra.KeyId);
        Assert.Equal(2, (await client.ListApiKeysAsync("sdk@example.com")).Keys.Count);
        Assert.Contains((await client.ListSimulatedEffectsAsync()).Effects, e => e.Kind == "provision");
        Assert.NotEmpty((await client.ListRequestsAsync(type: RequestType.StorageAttach)).Requests);
        Assert.Contains("commands", (await client.GetJobTemplateAsync()).EmptyTpConfig);
        Assert.Empty((await client.ListJobsAsync()).Jobs);
    }

    [Fact]
    public async Task The_client_registers_with_IHttpClientFactory()
    {
        var services = new ServiceCollection();
        services.AddOpenPoolClient(o => { o.Endpoint = new Uri("http://localhost/"); o.ApiKey = _engine.AdminKey; })
            .ConfigurePrimaryHttpMessageHandler(() => _engine.Server.CreateHandler());
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<OpenPoolClient>();
        Assert.Null((await client.CheckHealthAsync()).Message);
    }

    /// <summary>Records progress as it is reported (Progress&lt;T&gt; would post it to the thread pool, out of order).</summary>
    private sealed class Recorder<T>(Action<T> record) : IProgress<T>
    {
        public void Report(T value) => record(value);
    }

    /// <summary>Counts GETs, and can hide the long-poll preference from the engine.</summary>
    private sealed class CountingHandler(bool stripPrefer) : DelegatingHandler
    {
        public int Gets;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method == HttpMethod.Get)
                Interlocked.Increment(ref Gets);
            if (stripPrefer)
                request.Headers.Remove("Prefer");
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Fails the first attempts of every distinct request with a transport error.</summary>
    /// <summary>Lets the first request through to the engine, then loses its answer (a transport fault).</summary>
    private sealed class LostFirstAnswerHandler : DelegatingHandler
    {
        private int _attempts;

        public int Attempts => _attempts;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (Interlocked.Increment(ref _attempts) == 1)
            {
                response.Dispose();
                throw new HttpRequestException("injected: the connection dropped before the answer arrived");
            }
            return response;
        }
    }

    private sealed class FlakyHandler(int failuresPerRequest) : DelegatingHandler
    {
        private readonly Dictionary<string, int> _attempts = [];

        public int Attempts(string key)
        {
            lock (_attempts)
                return _attempts.GetValueOrDefault(key);
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var key = $"{request.Method} {request.RequestUri!.AbsolutePath}";
            var identity = key + request.Headers.GetValues("X-Client-Type").First() + (request.Headers.TryGetValues("Idempotency-Key", out var k) ? k.First() : "");
            int attempt;
            lock (_attempts)
            {
                _attempts[key] = _attempts.GetValueOrDefault(key) + 1;
                _attempts[identity] = attempt = _attempts.GetValueOrDefault(identity) + 1;
            }
            if (attempt <= failuresPerRequest)
                throw new HttpRequestException("injected transport fault");
            return base.SendAsync(request, cancellationToken);
        }
    }
}
