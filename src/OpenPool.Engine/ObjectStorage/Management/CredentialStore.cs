using System.Security.Cryptography;
using Dapper;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.ObjectStorage.Management;

/// <summary>A scope's active key pair, as the management API shows it.</summary>
internal sealed record StorageAccount(string ScopeId, string AccessKeyId, string SecretAccessKey, string IamUsername, long CreatedAt, long UpdatedAt);

/// <summary>
/// Object storage's key pairs, one active pair per scope, and the <see cref="IS3CredentialSource"/>
/// SigV4 asks. Nothing is cached: every lookup reads the database, so a rotation or a disable on any
/// replica takes effect on the next request everywhere (the read is one indexed row).
/// </summary>
internal sealed class CredentialStore(Database db, CredentialSealer sealer, TimeProvider clock) : IS3CredentialSource
{
    private const string KeyIdPrefix = "OPKI";
    private const string KeyIdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private const string SecretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// <summary>AWS's shape: 20 upper-case alphanumerics.</summary>
    public static string NewAccessKeyId() => KeyIdPrefix + RandomNumberGenerator.GetString(KeyIdAlphabet, 16);

    /// <summary>AWS's shape: 40 base64 characters (238 bits).</summary>
    public static string NewSecret() => RandomNumberGenerator.GetString(SecretAlphabet, 40);

    private const string FindSql =
        "SELECT scope_id AS ScopeId, secret_sealed AS SecretSealed FROM object_storage_accounts WHERE access_key_id = @key AND status = 'active'";

    public async Task<S3Credential?> FindAsync(string accessKeyId, CancellationToken ct)
    {
        if (accessKeyId.Length != 20 || !accessKeyId.StartsWith(KeyIdPrefix, StringComparison.Ordinal))
            return null;
        var row = await db.ReadRowAsync<FindRow>(FindSql, accessKeyId, ct);
        if (row?.SecretSealed is null)
            return null;
        await sealer.EnsureKeyAsync(ct);
        var secret = sealer.Open(accessKeyId, row.SecretSealed);
        return secret is null ? null : new S3Credential(accessKeyId, secret, row.ScopeId);
    }

    /// <summary>The scope's active pair, or null before enable (or after disable).</summary>
    public async Task<StorageAccount?> GetAsync(string scopeId, CancellationToken ct)
    {
        var row = await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<AccountRow>(SelectSql, new { scopeId }), ct);
        return await OpenAsync(row, ct);
    }

    /// <summary>Turns object storage on for the scope; when it is on already, its current pair (Created false).</summary>
    public async Task<(StorageAccount Account, bool Created)> EnableAsync(string scopeId, CancellationToken ct)
    {
        await sealer.EnsureKeyAsync(ct);
        var keyId = NewAccessKeyId();
        var secret = NewSecret();
        var sealedSecret = sealer.Seal(keyId, secret);
        var now = clock.Now();
        var (row, created) = await db.WriteAsync(async (c, t) =>
        {
            await db.LockAsync(c, t, LockKey(scopeId));
            var existing = await c.QuerySingleOrDefaultAsync<AccountRow>(SelectSql, new { scopeId }, t);
            if (existing is { Status: "active" })
                return (existing, false);
            await c.ExecuteAsync(
                """
                INSERT INTO object_storage_accounts (scope_id, access_key_id, secret_sealed, iam_username, status, created_at, updated_at)
                VALUES (@scopeId, @keyId, @sealedSecret, @iam, 'active', @now, @now)
                ON CONFLICT (scope_id) DO UPDATE SET access_key_id = excluded.access_key_id, secret_sealed = excluded.secret_sealed,
                    status = 'active', updated_at = excluded.updated_at
                """, new { scopeId, keyId, sealedSecret, iam = IamUsername(scopeId), now }, t);
            await ObjectStorageMeter.EnsureUsageRowAsync(c, t, scopeId, now);
            return (await c.QuerySingleAsync<AccountRow>(SelectSql, new { scopeId }, t), true);
        }, ct);
        return ((await OpenAsync(row, ct))!, created);
    }

    /// <summary>New keys for the scope; the old ones are not found from the moment this commits. Null when not enabled.</summary>
    public async Task<StorageAccount?> RotateAsync(string scopeId, CancellationToken ct)
    {
        await sealer.EnsureKeyAsync(ct);
        var keyId = NewAccessKeyId();
        var secret = NewSecret();
        var sealedSecret = sealer.Seal(keyId, secret);
        var now = clock.Now();
        var row = await db.WriteAsync(async (c, t) =>
        {
            await db.LockAsync(c, t, LockKey(scopeId));
            var changed = await c.ExecuteAsync(
                """
                UPDATE object_storage_accounts SET access_key_id = @keyId, secret_sealed = @sealedSecret, updated_at = @now
                WHERE scope_id = @scopeId AND status = 'active'
                """, new { scopeId, keyId, sealedSecret, now }, t);
            return changed == 0 ? null : await c.QuerySingleAsync<AccountRow>(SelectSql, new { scopeId }, t);
        }, ct);
        return await OpenAsync(row, ct);
    }

    /// <summary>Removes the scope's keys; its usage row stays, so this month is still billed. False when not enabled.</summary>
    public Task<bool> DisableAsync(string scopeId, CancellationToken ct)
    {
        var now = clock.Now();
        return db.WriteAsync(async (c, t) =>
        {
            await db.LockAsync(c, t, LockKey(scopeId));
            return await c.ExecuteAsync(
                """
                UPDATE object_storage_accounts SET access_key_id = NULL, secret_sealed = NULL, status = 'disabled', updated_at = @now
                WHERE scope_id = @scopeId AND status = 'active'
                """, new { scopeId, now }, t) > 0;
        }, ct);
    }

    private async Task<StorageAccount?> OpenAsync(AccountRow? row, CancellationToken ct)
    {
        if (row is not { Status: "active", AccessKeyId: { } keyId, SecretSealed: { } sealedSecret })
            return null;
        await sealer.EnsureKeyAsync(ct);
        var secret = sealer.Open(keyId, sealedSecret)
            ?? throw new Http.ApiError(StatusCodes.Status503ServiceUnavailable, "object_storage_key_unavailable",
                "Object storage is unavailable: the stored secret does not open with this engine's key file.");
        return new StorageAccount(row.ScopeId, keyId, secret, row.IamUsername, row.CreatedAt, row.UpdatedAt);
    }

    /// <summary>A readable, stable user name for the scope's key pair (TensorPool's credentials model has one).</summary>
    private static string IamUsername(string scopeId) => "openpool-" + scopeId.Replace(':', '-');

    private static string LockKey(string scopeId) => "object-storage:" + scopeId;

    private const string SelectSql =
        """
        SELECT scope_id AS ScopeId, access_key_id AS AccessKeyId, secret_sealed AS SecretSealed, iam_username AS IamUsername,
               status AS Status, created_at AS CreatedAt, updated_at AS UpdatedAt
        FROM object_storage_accounts WHERE scope_id = @scopeId
        """;

    private sealed class FindRow
    {
        public string ScopeId { get; set; } = "";
        public string? SecretSealed { get; set; }
    }

    private sealed class AccountRow
    {
        public string ScopeId { get; set; } = "";
        public string? AccessKeyId { get; set; }
        public string? SecretSealed { get; set; }
        public string IamUsername { get; set; } = "";
        public string Status { get; set; } = "";
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }
    }
}
