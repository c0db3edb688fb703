using OpenPool.Contracts;

namespace OpenPool.Client;

public sealed partial class OpenPoolClient
{
    /// <summary>Operator: creates a user (and its organization) and returns its first API key.</summary>
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
