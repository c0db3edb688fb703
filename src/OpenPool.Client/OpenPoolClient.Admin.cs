using OpenPool.Contracts;

namespace OpenPool.Client;

public sealed partial class OpenPoolClient
{
    /// <summary>Operator: creates a user (and its organization) and returns its first API key.</summary>
    /// <remarks>
    /// The engine never stores a key, so it cannot answer a repeat of this call with it: when a
    /// transient fault is retried after the engine had already created the user (the answer was lost),
    /// this throws <see cref="OpenPoolException"/> with status 409 and <c>ErrorCode</c>
    /// <c>api_key_already_created</c>. The user exists; mint them a key with <see cref="CreateApiKeyAsync"/>.
    /// </remarks>
    public Task<CreateUserResponse> CreateUserAsync(CreateUserRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<CreateUserResponse>(HttpMethod.Post, "admin/users", request, cancellationToken);

    /// <summary>Operator: every user.</summary>
    public Task<AdminUserListResponse> ListUsersAsync(CancellationToken cancellationToken = default) =>
        GetAsync<AdminUserListResponse>("admin/users", cancellationToken);

    /// <summary>Operator: every organization with its balance.</summary>
    public Task<AdminOrgListResponse> ListOrganizationsAsync(CancellationToken cancellationToken = default) =>
        GetAsync<AdminOrgListResponse>("admin/orgs", cancellationToken);

    /// <summary>Operator: adds (or with a negative amount, takes) money.</summary>
    public Task<CreditResponse> CreditAsync(CreditRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<CreditResponse>(HttpMethod.Post, "admin/credit", request, cancellationToken);

    /// <summary>Operator: another API key for a user, shown only in this answer.</summary>
    /// <remarks>
    /// A retry after a lost answer throws <see cref="OpenPoolException"/> (409, <c>api_key_already_created</c>)
    /// naming the key that was made and not seen: call again (a new call, a new key) and revoke that one.
    /// </remarks>
    public Task<ApiKeyCreatedResponse> CreateApiKeyAsync(string email, CancellationToken cancellationToken = default) =>
        SendAsync<ApiKeyCreatedResponse>(HttpMethod.Post, "admin/keys", new { email }, cancellationToken);

    /// <summary>Operator: API keys, optionally of one user.</summary>
    public Task<ApiKeyListResponse> ListApiKeysAsync(string? email = null, CancellationToken cancellationToken = default) =>
        GetAsync<ApiKeyListResponse>("admin/keys" + QueryString(("email", email)), cancellationToken);

    /// <summary>Operator: revokes an API key at once.</summary>
    public Task<MessageResponse> RevokeApiKeyAsync(string keyId, CancellationToken cancellationToken = default) =>
        SendAsync<MessageResponse>(HttpMethod.Delete, "admin/keys/" + Segment(keyId), null, cancellationToken);

    /// <summary>Operator: what the simulated cloud carried out, optionally for one object.</summary>
    public Task<SimulatedEffectsResponse> ListSimulatedEffectsAsync(string? objectId = null, CancellationToken cancellationToken = default) =>
        GetAsync<SimulatedEffectsResponse>("admin/simulated/effects" + QueryString(("object_id", objectId)), cancellationToken);
}
