using OpenPool.Contracts;

namespace OpenPool.Client;

public sealed partial class OpenPoolClient
{
    /// <summary>Creates a cluster; wait on the returned operation for it to be ready.</summary>
    public async Task<ClusterCreateOperation> CreateClusterAsync(ClusterCreateRequest request, CancellationToken cancellationToken = default) =>
        new(this, await SendAsync<ClusterCreateResponse>(HttpMethod.Post, "cluster/create", request, cancellationToken).ConfigureAwait(false));

    /// <summary>Destroys a cluster (CLUSTER_RELEASE).</summary>
    public async Task<RequestOperation> DestroyClusterAsync(string clusterId, CancellationToken cancellationToken = default) =>
        Operation(await SendAsync<RequestAcceptedResponse>(HttpMethod.Delete, "cluster/" + Segment(clusterId), null, cancellationToken).ConfigureAwait(false));

    /// <summary>Renames a cluster or turns its deletion protection on or off (CLUSTER_EDIT).</summary>
    public async Task<RequestOperation> EditClusterAsync(string clusterId, ClusterEditRequest edit, CancellationToken cancellationToken = default) =>
        Operation(await SendAsync<RequestAcceptedResponse>(HttpMethod.Patch, "cluster/edit/" + Segment(clusterId), edit, cancellationToken).ConfigureAwait(false));

    /// <summary>Your clusters, or with <paramref name="includeOrg"/> your organization's.</summary>
    public Task<ClusterListResponse> ListClustersAsync(bool includeOrg = false, bool instances = false, CancellationToken cancellationToken = default) =>
        GetAsync<ClusterListResponse>("cluster/list" + QueryString(("include_org", Flag(includeOrg)), ("instances", Flag(instances))), cancellationToken);

    /// <summary>One cluster.</summary>
    public Task<ClusterInfoResponse> GetClusterAsync(string clusterId, CancellationToken cancellationToken = default) =>
        GetAsync<ClusterInfoResponse>("cluster/info/" + Segment(clusterId), cancellationToken);

    /// <summary>The requests that acted on a cluster, newest first.</summary>
    public Task<RequestListResponse> ListClusterOperationsAsync(string clusterId, CancellationToken cancellationToken = default) =>
        GetAsync<RequestListResponse>("cluster/operations/" + Segment(clusterId), cancellationToken);

    /// <summary>The ssh command line for an instance.</summary>
    public Task<SshCommandResponse> GetSshCommandAsync(string instanceId, string system = "Linux", CancellationToken cancellationToken = default) =>
        GetAsync<SshCommandResponse>("ssh/" + Segment(instanceId) + QueryString(("system", system)), cancellationToken);

    /// <summary>Creates a storage volume; wait on the returned operation for it to be ready.</summary>
    public async Task<StorageCreateOperation> CreateStorageAsync(StorageCreateRequest request, CancellationToken cancellationToken = default) =>
        new(this, await SendAsync<StorageCreateResponse>(HttpMethod.Post, "storage/create", request, cancellationToken).ConfigureAwait(false));

    /// <summary>Destroys a volume (STORAGE_DESTROY); refused while it is attached.</summary>
    public async Task<RequestOperation> DestroyStorageAsync(string storageId, CancellationToken cancellationToken = default) =>
        Operation(await SendAsync<RequestAcceptedResponse>(HttpMethod.Delete, "storage/" + Segment(storageId), null, cancellationToken).ConfigureAwait(false));

    /// <summary>Renames, protects or grows a volume (STORAGE_EDIT).</summary>
    public async Task<RequestOperation> EditStorageAsync(string storageId, StorageEditRequest edit, CancellationToken cancellationToken = default) =>
        Operation(await SendAsync<RequestAcceptedResponse>(HttpMethod.Patch, "storage/edit/" + Segment(storageId), edit, cancellationToken).ConfigureAwait(false));

    /// <summary>Attaches a volume to clusters: one STORAGE_ATTACH operation per cluster, in order.</summary>
    public async Task<IReadOnlyList<RequestOperation>> AttachStorageAsync(string storageId, IReadOnlyList<string> clusterIds, CancellationToken cancellationToken = default)
    {
        var accepted = await SendAsync<StorageAttachResponse>(HttpMethod.Post, "storage/attach",
            new StorageAttachRequest { StorageId = storageId, ClusterIds = clusterIds }, cancellationToken).ConfigureAwait(false);
        return accepted.RequestIds.Select(id => new RequestOperation(this, id)).ToList();
    }

    /// <summary>Detaches a volume from one cluster (STORAGE_DETACH).</summary>
    public async Task<RequestOperation> DetachStorageAsync(string storageId, string clusterId, CancellationToken cancellationToken = default) =>
        Operation(await SendAsync<RequestAcceptedResponse>(HttpMethod.Post, "storage/detach",
            new StorageDetachRequest { StorageId = storageId, ClusterId = clusterId }, cancellationToken).ConfigureAwait(false));

    /// <summary>Your volumes, or with <paramref name="includeOrg"/> your organization's.</summary>
    public Task<StorageListResponse> ListStorageAsync(bool includeOrg = false, CancellationToken cancellationToken = default) =>
        GetAsync<StorageListResponse>("storage/list" + QueryString(("include_org", Flag(includeOrg))), cancellationToken);

    /// <summary>One volume.</summary>
    public Task<StorageInfoResponse> GetStorageAsync(string storageId, CancellationToken cancellationToken = default) =>
        GetAsync<StorageInfoResponse>("storage/info/" + Segment(storageId), cancellationToken);

    /// <summary>Saves an SSH public key; it goes onto every new cluster.</summary>
    public Task<SshKeyAddResponse> AddSshKeyAsync(string publicKey, string? name = null, CancellationToken cancellationToken = default) =>
        SendAsync<SshKeyAddResponse>(HttpMethod.Post, "user/ssh-key/add", new SshKeyAddRequest { PublicKey = publicKey, Name = name }, cancellationToken);

    /// <summary>Your saved SSH keys, or with <paramref name="includeOrg"/> your organization's.</summary>
    public Task<SshKeyListResponse> ListSshKeysAsync(bool includeOrg = false, CancellationToken cancellationToken = default) =>
        GetAsync<SshKeyListResponse>("user/ssh-key/list" + QueryString(("include_org", Flag(includeOrg))), cancellationToken);

    /// <summary>Removes one of your SSH keys.</summary>
    public Task<MessageResponse> RemoveSshKeyAsync(string keyId, CancellationToken cancellationToken = default) =>
        SendAsync<MessageResponse>(HttpMethod.Delete, "user/ssh-key/remove/" + Segment(keyId), null, cancellationToken);

    /// <summary>You: email, organization, role, balance.</summary>
    public Task<UserInfoResponse> GetUserAsync(CancellationToken cancellationToken = default) =>
        GetAsync<UserInfoResponse>("user/info", cancellationToken);

    /// <summary>Your organization: members and balance.</summary>
    public Task<OrganizationInfoResponse> GetOrganizationAsync(CancellationToken cancellationToken = default) =>
        GetAsync<OrganizationInfoResponse>("user/organization/info", cancellationToken);

    /// <summary>Your notification and autopay preferences.</summary>
    public Task<UserPreferences> GetPreferencesAsync(CancellationToken cancellationToken = default) =>
        GetAsync<UserPreferences>("user/preferences", cancellationToken);

    /// <summary>Changes preferences; fields left null keep their value.</summary>
    public Task<UserPreferences> UpdatePreferencesAsync(PreferencesUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync<UserPreferences>(HttpMethod.Patch, "user/preferences", update, cancellationToken);

    /// <summary>The commented .tp.toml template.</summary>
    public Task<JobInitResponse> GetJobTemplateAsync(CancellationToken cancellationToken = default) =>
        GetAsync<JobInitResponse>("job/init", cancellationToken);

    /// <summary>Your jobs, or with <paramref name="includeOrg"/> your organization's.</summary>
    public Task<JobListResponse> ListJobsAsync(bool includeOrg = false, CancellationToken cancellationToken = default) =>
        GetAsync<JobListResponse>("job/list" + QueryString(("include_org", Flag(includeOrg))), cancellationToken);

    /// <summary>One job.</summary>
    public Task<JobInfoResponse> GetJobAsync(string jobId, CancellationToken cancellationToken = default) =>
        GetAsync<JobInfoResponse>("job/info/" + Segment(jobId), cancellationToken);

    /// <summary>Cancels a job; follow it with <see cref="GetJobAsync"/> until <c>canceled</c>.</summary>
    public Task<JobCancelResponse> CancelJobAsync(string jobId, CancellationToken cancellationToken = default) =>
        SendAsync<JobCancelResponse>(HttpMethod.Post, "job/cancel/" + Segment(jobId), null, cancellationToken);

    /// <summary>Deletes a finished job.</summary>
    public Task<MessageResponse> DeleteJobAsync(string jobId, CancellationToken cancellationToken = default) =>
        SendAsync<MessageResponse>(HttpMethod.Delete, "job/delete/" + Segment(jobId), null, cancellationToken);

    /// <summary>The job's output files and a signed link for each (fetch with any HTTP client, no key).</summary>
    public Task<JobPullResponse> PullJobAsync(string jobId, bool dryRun = false, CancellationToken cancellationToken = default) =>
        GetAsync<JobPullResponse>("job/pull/" + Segment(jobId) + QueryString(("dry_run", Flag(dryRun)), ("system", "linux")), cancellationToken);

    private RequestOperation Operation(RequestAcceptedResponse accepted) =>
        new(this, accepted.RequestId ?? throw new OpenPoolException("The engine accepted the call but returned no request id."));
}

/// <summary>A partial change of <see cref="UserPreferences"/>: fields left null are not changed.</summary>
public sealed record PreferencesUpdate
{
    /// <summary>Email when a cluster is created.</summary>
    public bool? NotifyEmailClusterCreate { get; init; }
    /// <summary>Email when a cluster is destroyed.</summary>
    public bool? NotifyEmailClusterDestroy { get; init; }
    /// <summary>Reload the balance automatically.</summary>
    public bool? AutopayEnabled { get; init; }
    /// <summary>Warn below this balance (USD, &gt; 0).</summary>
    public decimal? BalanceWarningThreshold { get; init; }
    /// <summary>Reload below this balance (USD, ≥ 20).</summary>
    public decimal? AutopayReloadThreshold { get; init; }
}
