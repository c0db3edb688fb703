using OpenPool.Contracts;

namespace OpenPool.Client;

/// <summary>
/// An asynchronous engine request (CLUSTER_CLAIM, STORAGE_ATTACH, …), in the style of Azure.Core's
/// <c>Operation</c>: ask for its status, or wait for it to finish. Waiting uses the engine's
/// long-poll when it offers it, otherwise sleeps as long as <c>Retry-After</c> says.
/// </summary>
public class RequestOperation
{
    private readonly OpenPoolClient _client;

    /// <summary>Creates an operation for a request id (rehydration: <see cref="OpenPoolClient.GetOperation"/>).</summary>
    protected internal RequestOperation(OpenPoolClient client, string id)
    {
        _client = client;
        Id = id;
    }

    /// <summary>The request id (req_…).</summary>
    public string Id { get; }

    /// <summary>The last status seen, or null before the first update.</summary>
    public RequestInfoResponse? Value { get; private set; }

    /// <summary>The last status seen.</summary>
    public RequestStatus? Status => Value?.Status;

    /// <summary>True once the request is COMPLETED or FAILED.</summary>
    public bool HasCompleted => Value?.Status.IsTerminal() == true;

    /// <summary>Seconds the engine suggested waiting before asking again, from the last update.</summary>
    public int? RetryAfterSeconds { get; private set; }

    /// <summary>Asks the engine for the request's current status.</summary>
    public async Task<RequestInfoResponse> UpdateStatusAsync(CancellationToken cancellationToken = default)
    {
        var (info, retryAfter, _) = await _client.GetRequestInfoCoreAsync(Id, wait: null, cancellationToken).ConfigureAwait(false);
        return Record(info, retryAfter);
    }

    /// <summary>
    /// Waits until the request is COMPLETED or FAILED and returns its final status; it does not
    /// throw for FAILED (look at <see cref="RequestInfoResponse.Status"/>). Each status seen is
    /// reported to <paramref name="progress"/>.
    /// </summary>
    public async Task<RequestInfoResponse> WaitForCompletionAsync(IProgress<RequestInfoResponse>? progress = null, CancellationToken cancellationToken = default)
    {
        var longPoll = true;
        while (true)
        {
            var wait = longPoll && Value is not null ? (int?)Math.Clamp((int)_client.Options.LongPollWait.TotalSeconds, 1, 60) : null;
            var (info, retryAfter, applied) = await _client.GetRequestInfoCoreAsync(Id, wait, cancellationToken).ConfigureAwait(false);
            Record(info, retryAfter);
            progress?.Report(info);
            if (info.Status.IsTerminal())
                return info;
            if (wait is not null && !applied)
                longPoll = false; // this engine does not long-poll: fall back to Retry-After
            if (wait is null || !applied)
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(1, retryAfter ?? 2)), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for completion and throws <see cref="OpenPoolException"/> when the request FAILED.</summary>
    public async Task<RequestInfoResponse> WaitForSuccessAsync(IProgress<RequestInfoResponse>? progress = null, CancellationToken cancellationToken = default)
    {
        var info = await WaitForCompletionAsync(progress, cancellationToken).ConfigureAwait(false);
        if (info.Status == RequestStatus.Failed)
            throw new OpenPoolException(System.Net.HttpStatusCode.OK, "request_failed", info.ExternalMessage ?? $"Request {Id} failed.");
        return info;
    }

    private RequestInfoResponse Record(RequestInfoResponse info, int? retryAfter)
    {
        Value = info;
        RetryAfterSeconds = retryAfter;
        return info;
    }
}

/// <summary>A cluster creation: the 202 answer, and the CLUSTER_CLAIM request to wait for.</summary>
public sealed class ClusterCreateOperation : RequestOperation
{
    internal ClusterCreateOperation(OpenPoolClient client, ClusterCreateResponse accepted) : base(client, accepted.RequestId!) => Accepted = accepted;

    /// <summary>What the engine answered: the cluster id, its instance ids.</summary>
    public ClusterCreateResponse Accepted { get; }
}

/// <summary>A storage volume creation: the 202 answer, and the STORAGE_CREATE request to wait for.</summary>
public sealed class StorageCreateOperation : RequestOperation
{
    internal StorageCreateOperation(OpenPoolClient client, StorageCreateResponse accepted) : base(client, accepted.RequestId!) => Accepted = accepted;

    /// <summary>What the engine answered: the volume id.</summary>
    public StorageCreateResponse Accepted { get; }
}
