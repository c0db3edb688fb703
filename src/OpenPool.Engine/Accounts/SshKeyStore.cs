using System.Data.Common;
using Dapper;
using OpenPool.Contracts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Accounts;

internal sealed class SshKeyStore(Database db, TimeProvider clock)
{
    private const string Columns =
        "k.id AS KeyId, k.name, k.key_type AS KeyType, k.fingerprint, u.email AS Owner, k.created_at AS CreatedAt, k.public_key AS PublicKey";

    public Task<SshKeyInfo> AddAsync(Principal caller, SshPublicKey key, string? name, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var existing = await c.ExecuteScalarAsync<string?>(
                "SELECT id FROM ssh_keys WHERE user_id = @UserId AND fingerprint = @Fingerprint", new { caller.UserId, key.Fingerprint }, t);
            if (existing is not null)
                throw ApiError.Conflict("ssh_key_exists", $"This key is already saved as {existing} ({key.Fingerprint}).");
            return await InsertAsync(c, t, caller, key, name ?? caller.Email, clock.Now());
        }, ct);

    /// <summary>Saves a key unless the user already has it; for <c>save_keys</c> on cluster create.</summary>
    public static async Task SaveIfNewAsync(DbConnection c, DbTransaction t, Principal caller, SshPublicKey key, long now)
    {
        var exists = await c.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM ssh_keys WHERE user_id = @UserId AND fingerprint = @Fingerprint", new { caller.UserId, key.Fingerprint }, t);
        if (exists == 0)
            await InsertAsync(c, t, caller, key, key.Comment ?? caller.Email, now);
    }

    /// <summary>The keys that go onto a new cluster: the user's own and those shared with their organization.</summary>
    /// <remarks>Its parameters are the caller's <c>@UserId</c> and <c>@OrgId</c>.</remarks>
    public const string KeysForNewClusterSql =
        "SELECT name, fingerprint, public_key AS PublicKey FROM ssh_keys WHERE user_id = @UserId OR (org_id IS NOT NULL AND org_id = @OrgId) ORDER BY created_at";

    public Task<IReadOnlyList<SshKeyInfo>> ListAsync(Principal caller, bool includeOrg, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<SshKeyInfo>>(async c =>
        {
            if (includeOrg && caller.OrgId is null)
                return [];
            var rows = await c.QueryAsync<KeyRow>(
                $"SELECT {Columns} FROM ssh_keys k JOIN users u ON u.id = k.user_id WHERE " +
                (includeOrg ? "k.org_id = @OrgId" : "k.user_id = @UserId") + " ORDER BY k.created_at",
                new { caller.UserId, caller.OrgId });
            return rows.Select(r => r.ToInfo()).ToList();
        }, ct);

    /// <summary>Removes one of the caller's own keys; anyone else's is "not found".</summary>
    public Task RemoveAsync(Principal caller, string keyId, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var removed = await c.ExecuteAsync("DELETE FROM ssh_keys WHERE id = @keyId AND user_id = @UserId", new { keyId, caller.UserId }, t);
            if (removed == 0)
                throw ApiError.NotFound("ssh_key_not_found", $"SSH key {keyId} not found.");
        }, ct);

    private static async Task<SshKeyInfo> InsertAsync(DbConnection c, DbTransaction t, Principal caller, SshPublicKey key, string name, long now)
    {
        var id = Ids.SshKey();
        await c.ExecuteAsync(
            """
            INSERT INTO ssh_keys (id, user_id, org_id, name, key_type, public_key, fingerprint, created_at)
            VALUES (@id, @UserId, @OrgId, @name, @Type, @Line, @Fingerprint, @now)
            """, new { id, caller.UserId, caller.OrgId, name, key.Type, key.Line, key.Fingerprint, now }, t);
        return new SshKeyInfo { KeyId = id, Name = name, KeyType = key.Type, Fingerprint = key.Fingerprint, Owner = caller.Email, CreatedAt = Time.Iso(now) };
    }

    internal sealed class SavedKey
    {
        public string Name { get; set; } = "";
        public string Fingerprint { get; set; } = "";
        public string PublicKey { get; set; } = "";
    }

    private sealed class KeyRow
    {
        public string KeyId { get; set; } = "";
        public string Name { get; set; } = "";
        public string KeyType { get; set; } = "";
        public string Fingerprint { get; set; } = "";
        public string Owner { get; set; } = "";
        public long CreatedAt { get; set; }
        public string PublicKey { get; set; } = "";

        public SshKeyInfo ToInfo() => new()
        {
            KeyId = KeyId, Name = Name, KeyType = KeyType, Fingerprint = Fingerprint, Owner = Owner, CreatedAt = Time.Iso(CreatedAt),
        };
    }
}
