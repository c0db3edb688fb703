using System.Collections.Concurrent;
using System.Data.Common;
using Dapper;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Accounts;

internal sealed class AccountStore(Database db, TimeProvider clock)
{
    // Every authenticated call resolves its key; caching the answer briefly keeps a poll to one
    // database read. Entries are short-lived so a revoked key stops working within seconds.
    private static readonly TimeSpan CacheLifetime = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<string, (Principal Principal, long ExpiresAt)> _cache = new();

    public async Task<Principal?> AuthenticateAsync(string key, CancellationToken ct)
    {
        if (!key.StartsWith(ApiKeys.Prefix, StringComparison.Ordinal) || key.Length > 200)
            return null;
        var hash = ApiKeys.Hash(key);
        var now = clock.Now();
        if (_cache.TryGetValue(hash, out var cached) && cached.ExpiresAt > now)
            return cached.Principal;

        var row = await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<PrincipalRow>(
            """
            SELECT k.key_hash AS KeyHash, u.id AS UserId, u.email AS Email, u.org_id AS OrgId, o.name AS OrgName,
                   u.role AS Role, u.is_operator AS IsOperator
            FROM api_keys k JOIN users u ON u.id = k.user_id LEFT JOIN orgs o ON o.id = u.org_id
            WHERE k.key_hash = @hash AND k.revoked_at IS NULL
            """, new { hash }), ct);
        if (row is null || !ApiKeys.HashesEqual(row.KeyHash, hash))
            return null;
        var principal = new Principal(row.UserId, row.Email, row.OrgId, row.OrgName, row.Role, row.IsOperator);
        if (_cache.Count > 10_000)
            _cache.Clear();
        _cache[hash] = (principal, now + (long)CacheLifetime.TotalMilliseconds);
        return principal;
    }

    public Task<long> CountUsersAsync(CancellationToken ct) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users"), ct);

    /// <summary>Creates a user (and its org when named and new) with a fresh key; returns the id and the key.</summary>
    public Task<(string UserId, string ApiKey)> CreateUserAsync(string email, string? orgName, string role, bool isOperator, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var now = clock.Now();
            if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users WHERE email = @email", new { email }, t) > 0)
                throw ApiError.Conflict("user_exists", $"A user with email {email} already exists.");
            string? orgId = null;
            if (orgName is not null)
            {
                orgId = await c.ExecuteScalarAsync<string?>("SELECT id FROM orgs WHERE name = @orgName", new { orgName }, t);
                if (orgId is null)
                {
                    orgId = Ids.Org();
                    await c.ExecuteAsync("INSERT INTO orgs (id, name, created_at) VALUES (@orgId, @orgName, @now)", new { orgId, orgName, now }, t);
                }
            }
            var userId = Ids.User();
            await c.ExecuteAsync(
                "INSERT INTO users (id, email, org_id, role, is_operator, created_at) VALUES (@userId, @email, @orgId, @role, @isOperator, @now)",
                new { userId, email, orgId, role, isOperator, now }, t);
            var key = await InsertKeyAsync(c, t, userId, now);
            return (userId, key);
        }, ct);

    private static async Task<string> InsertKeyAsync(DbConnection c, DbTransaction t, string userId, long now)
    {
        var key = ApiKeys.NewKey();
        await c.ExecuteAsync(
            "INSERT INTO api_keys (id, user_id, key_hash, prefix, created_at) VALUES (@id, @userId, @hash, @prefix, @now)",
            new { id = Ids.ApiKey(), userId, hash = ApiKeys.Hash(key), prefix = ApiKeys.Display(key), now }, t);
        return key;
    }

    private sealed class PrincipalRow
    {
        public string KeyHash { get; set; } = "";
        public string UserId { get; set; } = "";
        public string Email { get; set; } = "";
        public string? OrgId { get; set; }
        public string? OrgName { get; set; }
        public string Role { get; set; } = "";
        public bool IsOperator { get; set; }
    }
}
