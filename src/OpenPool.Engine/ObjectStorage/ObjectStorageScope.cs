using OpenPool.Engine.Accounts;

namespace OpenPool.Engine.ObjectStorage;

/// <summary>
/// Object storage belongs to an organization, or to a user without one (spec §4.4): the scope id is
/// the org id, or <c>user:&lt;user_id&gt;</c>. Credentials, buckets, usage and billing hang off it.
/// </summary>
internal static class ObjectStorageScope
{
    public static string Of(Principal principal) => principal.OrgId ?? "user:" + principal.UserId;
}

/// <summary>One active S3 key pair and the scope it acts for.</summary>
internal sealed record S3Credential(string AccessKeyId, string SecretAccessKey, string ScopeId);

/// <summary>Finds the active key pair for an access key id; rotated or disabled keys are not found.</summary>
internal interface IS3CredentialSource
{
    Task<S3Credential?> FindAsync(string accessKeyId, CancellationToken ct);
}

/// <summary>
/// Counts what object storage bills (spec §4.4): bytes stored, whose monthly peak is priced per
/// GB-month, and requests, priced per 1,000. The S3 endpoint reports every change; the meter keeps
/// running totals per scope and the billing sweep turns them into ledger entries.
/// </summary>
internal interface IObjectStorageMeter
{
    /// <summary>A committed change of the scope's stored bytes (negative when objects go).</summary>
    ValueTask StoredBytesChangedAsync(string scopeId, long deltaBytes, CancellationToken ct);

    /// <summary>One S3 request answered for the scope (authenticated requests only).</summary>
    void RequestServed(string scopeId);
}

/// <summary>Claim types the SigV4 scheme puts on the caller.</summary>
internal static class S3Claims
{
    public const string Scheme = "SigV4";
    public const string ScopeId = "openpool:object_storage_scope";
    public const string AccessKeyId = "openpool:access_key_id";
}
