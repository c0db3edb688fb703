namespace OpenPool.Contracts;

/// <summary>Request body for POST /admin/users.</summary>
public sealed record CreateUserRequest
{
    /// <summary>The user's email; unique.</summary>
    public required string Email { get; init; }
    /// <summary>Organization to join; created when it does not exist.</summary>
    public string? OrgName { get; init; }
    /// <summary><c>member</c> (default) or <c>admin</c> of the organization.</summary>
    public string? Role { get; init; }
    /// <summary>Starting balance of the new account (a new organization, or a user without one).</summary>
    public decimal? BalanceUsd { get; init; }
}

/// <summary>Answer to POST /admin/users. The key is shown only here.</summary>
public sealed record CreateUserResponse
{
    /// <summary>The new user's id.</summary>
    public required string UserId { get; init; }
    /// <summary>The user's API key (tpk_…); stored only as a hash.</summary>
    public required string ApiKey { get; init; }
    /// <summary>Readable text.</summary>
    public string? Message { get; init; }
}

/// <summary>Answer to POST /health.</summary>
public sealed record HealthResponse
{
    /// <summary>Text the CLI prints when present; null when there is nothing to say.</summary>
    public string? Message { get; init; }
}

/// <summary>One side effect the simulated cloud carried out.</summary>
public sealed record SimulatedEffect
{
    /// <summary><c>provision</c>, <c>release</c>, …</summary>
    public required string Kind { get; init; }
    /// <summary>The cluster or volume affected.</summary>
    public required string ObjectId { get; init; }
    /// <summary>The request that caused it.</summary>
    public required string RequestId { get; init; }
    /// <summary>When it took effect (ISO 8601).</summary>
    public required string At { get; init; }
}

/// <summary>Answer to GET /admin/simulated/effects.</summary>
public sealed record SimulatedEffectsResponse
{
    /// <summary>The effects, oldest first.</summary>
    public required IReadOnlyList<SimulatedEffect> Effects { get; init; }
}

/// <summary>A plain answer with readable text.</summary>
public sealed record MessageResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
}

/// <summary>The caller as GET /user/info describes them.</summary>
public sealed record UserInfo
{
    /// <summary>User id.</summary>
    public required string Id { get; init; }
    /// <summary>Email.</summary>
    public required string Email { get; init; }
    /// <summary>Organization name, if any.</summary>
    public string? Org { get; init; }
    /// <summary><c>member</c> or <c>admin</c>.</summary>
    public required string Role { get; init; }
    /// <summary>The balance the user's resources draw from (the organization's for members), USD.</summary>
    public required decimal BalanceUsd { get; init; }
    /// <summary>Running clusters the user owns.</summary>
    public required int RunningClusters { get; init; }
    /// <summary>Storage volumes the user owns.</summary>
    public required int Volumes { get; init; }
}

/// <summary>Answer to GET /user/info.</summary>
public sealed record UserInfoResponse
{
    /// <summary>Readable text; what <c>tp me</c> prints.</summary>
    public required string Message { get; init; }
    /// <summary>The caller.</summary>
    public required UserInfo User { get; init; }
}

/// <summary>A member of an organization.</summary>
public sealed record OrganizationMember
{
    /// <summary>User id.</summary>
    public required string UserId { get; init; }
    /// <summary>Email.</summary>
    public required string Email { get; init; }
    /// <summary><c>member</c> or <c>admin</c>.</summary>
    public required string Role { get; init; }
}

/// <summary>An organization.</summary>
public sealed record OrganizationInfo
{
    /// <summary>Organization id.</summary>
    public required string Id { get; init; }
    /// <summary>Name.</summary>
    public required string Name { get; init; }
    /// <summary>Shared balance, USD.</summary>
    public required decimal BalanceUsd { get; init; }
    /// <summary>Members.</summary>
    public required IReadOnlyList<OrganizationMember> Members { get; init; }
}

/// <summary>Answer to GET /user/organization/info.</summary>
public sealed record OrganizationInfoResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>The caller's organization.</summary>
    public required OrganizationInfo Organization { get; init; }
}

/// <summary>Notification and autopay settings (GET and PATCH /user/preferences).</summary>
public sealed record UserPreferences
{
    /// <summary>Email when a cluster is created.</summary>
    public required bool NotifyEmailClusterCreate { get; init; }
    /// <summary>Email when a cluster is destroyed.</summary>
    public required bool NotifyEmailClusterDestroy { get; init; }
    /// <summary>Reload the balance automatically.</summary>
    public required bool AutopayEnabled { get; init; }
    /// <summary>Warn below this balance (USD, &gt; 0).</summary>
    public decimal? BalanceWarningThreshold { get; init; }
    /// <summary>Reload when the balance falls below this (USD, ≥ 20).</summary>
    public decimal? AutopayReloadThreshold { get; init; }
}

/// <summary>Request body for POST /user/ssh-key/add.</summary>
public sealed record SshKeyAddRequest
{
    /// <summary>An OpenSSH public key line, e.g. <c>ssh-ed25519 AAAA… user@host</c>.</summary>
    public required string PublicKey { get; init; }
    /// <summary>A name for the key; defaults to the user's email.</summary>
    public string? Name { get; init; }
}

/// <summary>A saved SSH public key.</summary>
public sealed record SshKeyInfo
{
    /// <summary>Key id (key_…).</summary>
    public required string KeyId { get; init; }
    /// <summary>Name.</summary>
    public required string Name { get; init; }
    /// <summary>ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256…</summary>
    public required string KeyType { get; init; }
    /// <summary>OpenSSH SHA256 fingerprint.</summary>
    public required string Fingerprint { get; init; }
    /// <summary>Owner's email.</summary>
    public required string Owner { get; init; }
    /// <summary>When it was added (ISO 8601).</summary>
    public required string CreatedAt { get; init; }
}

/// <summary>Answer to POST /user/ssh-key/add.</summary>
public sealed record SshKeyAddResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>The saved key.</summary>
    public required SshKeyInfo Key { get; init; }
}

/// <summary>Answer to GET /user/ssh-key/list.</summary>
public sealed record SshKeyListResponse
{
    /// <summary>Readable table.</summary>
    public required string Message { get; init; }
    /// <summary>The keys.</summary>
    public required IReadOnlyList<SshKeyInfo> Keys { get; init; }
}

/// <summary>Request body for POST /admin/credit: exactly one of email and org_name.</summary>
public sealed record CreditRequest
{
    /// <summary>Credit the account this user draws from.</summary>
    public string? Email { get; init; }
    /// <summary>Credit this organization.</summary>
    public string? OrgName { get; init; }
    /// <summary>USD to add; negative to charge.</summary>
    public required decimal AmountUsd { get; init; }
}

/// <summary>Answer to POST /admin/credit.</summary>
public sealed record CreditResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>The account's new balance, USD.</summary>
    public required decimal BalanceUsd { get; init; }
}

/// <summary>A user as the operator sees them.</summary>
public sealed record AdminUser
{
    /// <summary>User id.</summary>
    public required string UserId { get; init; }
    /// <summary>Email.</summary>
    public required string Email { get; init; }
    /// <summary>Organization name, if any.</summary>
    public string? Org { get; init; }
    /// <summary>member or admin.</summary>
    public required string Role { get; init; }
    /// <summary>Holds the operator's admin rights.</summary>
    public required bool IsOperator { get; init; }
    /// <summary>Keys not revoked.</summary>
    public required int ActiveKeys { get; init; }
    /// <summary>When created (ISO 8601).</summary>
    public required string CreatedAt { get; init; }
}

/// <summary>Answer to GET /admin/users.</summary>
public sealed record AdminUserListResponse
{
    /// <summary>Readable table.</summary>
    public required string Message { get; init; }
    /// <summary>Users.</summary>
    public required IReadOnlyList<AdminUser> Users { get; init; }
}

/// <summary>An organization as the operator sees it.</summary>
public sealed record AdminOrg
{
    /// <summary>Organization id.</summary>
    public required string OrgId { get; init; }
    /// <summary>Name.</summary>
    public required string Name { get; init; }
    /// <summary>Members.</summary>
    public required int Members { get; init; }
    /// <summary>Balance, USD.</summary>
    public required decimal BalanceUsd { get; init; }
}

/// <summary>Answer to GET /admin/orgs.</summary>
public sealed record AdminOrgListResponse
{
    /// <summary>Readable table.</summary>
    public required string Message { get; init; }
    /// <summary>Organizations.</summary>
    public required IReadOnlyList<AdminOrg> Orgs { get; init; }
}

/// <summary>An API key's public description; the key itself is never shown again.</summary>
public sealed record ApiKeyInfo
{
    /// <summary>Key id (ak-…).</summary>
    public required string KeyId { get; init; }
    /// <summary>The key's first characters.</summary>
    public required string Prefix { get; init; }
    /// <summary>Owner's email.</summary>
    public required string Email { get; init; }
    /// <summary>When created (ISO 8601).</summary>
    public required string CreatedAt { get; init; }
    /// <summary>When revoked (ISO 8601), or null.</summary>
    public string? RevokedAt { get; init; }
}

/// <summary>Answer to GET /admin/keys.</summary>
public sealed record ApiKeyListResponse
{
    /// <summary>Readable table.</summary>
    public required string Message { get; init; }
    /// <summary>Keys.</summary>
    public required IReadOnlyList<ApiKeyInfo> Keys { get; init; }
}

/// <summary>Answer to POST /admin/keys; the key is shown only here.</summary>
public sealed record ApiKeyCreatedResponse
{
    /// <summary>Readable text.</summary>
    public required string Message { get; init; }
    /// <summary>Key id.</summary>
    public required string KeyId { get; init; }
    /// <summary>The new key (tpk_…).</summary>
    public required string ApiKey { get; init; }
}
