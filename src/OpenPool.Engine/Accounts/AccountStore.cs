using System.Collections.Concurrent;
using System.Data.Common;
using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Accounts;

internal sealed class AccountStore(Database db, TimeProvider clock, IOptions<BillingOptions> billing)
{
    // Every authenticated call resolves its key; caching the answer briefly keeps a poll to one
    // database read. Entries are short-lived so a key revoked on another replica stops working
    // within seconds (and at once on this one).
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

    /// <summary>
    /// Creates a user (and its org when named and new) with a fresh key. A new billing account (a new
    /// org, or a user without one) starts with <paramref name="balanceUsd"/> or the configured default.
    /// </summary>
    public Task<(string UserId, string ApiKey)> CreateUserAsync(
        string email, string? orgName, string role, bool isOperator, CancellationToken ct, decimal? balanceUsd = null) =>
        db.WriteAsync(async (c, t) =>
        {
            var now = clock.Now();
            if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users WHERE email = @email", new { email }, t) > 0)
                throw ApiError.Conflict("user_exists", $"A user with email {email} already exists.");
            string? orgId = null;
            var newAccount = true;
            if (orgName is not null)
            {
                orgId = await c.ExecuteScalarAsync<string?>("SELECT id FROM orgs WHERE name = @orgName", new { orgName }, t);
                if (orgId is null)
                {
                    orgId = Ids.Org();
                    await c.ExecuteAsync("INSERT INTO orgs (id, name, created_at) VALUES (@orgId, @orgName, @now)", new { orgId, orgName, now }, t);
                }
                else
                {
                    newAccount = false;
                    if (balanceUsd is not null)
                        throw ApiError.Validation(["body", "balance_usd"], "value_error",
                            $"Organization {orgName} already exists and has its own balance; credit it with POST /admin/credit");
                }
            }
            var userId = Ids.User();
            await c.ExecuteAsync(
                "INSERT INTO users (id, email, org_id, role, is_operator, created_at) VALUES (@userId, @email, @orgId, @role, @isOperator, @now)",
                new { userId, email, orgId, role, isOperator, now }, t);
            if (newAccount)
                await Ledger.PostAsync(c, t, BillingAccount.Of(userId, orgId), userId, null, "credit",
                    Ledger.ToMicros(balanceUsd ?? billing.Value.InitialBalanceUsd), null, null, "Initial balance", now);
            var (_, key) = await InsertKeyAsync(c, t, userId, now);
            return (userId, key);
        }, ct);

    public Task<UserInfo> GetUserInfoAsync(Principal caller, CancellationToken ct) =>
        db.ReadAsync(async c =>
        {
            var now = clock.Now();
            var balance = await Ledger.BalanceMicrosAsync(c, null, BillingAccount.Of(caller.UserId, caller.OrgId), billing.Value, now);
            var running = await c.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM clusters WHERE user_id = @UserId AND status = 'RUNNING'", caller);
            var volumes = await c.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM volumes WHERE user_id = @UserId AND status NOT IN ('DESTROYED', 'FAILED')", caller);
            return new UserInfo
            {
                Id = caller.UserId,
                Email = caller.Email,
                Org = caller.OrgName,
                Role = caller.Role,
                BalanceUsd = Ledger.ToUsd(balance),
                RunningClusters = running,
                Volumes = volumes,
            };
        }, ct);

    public Task<OrganizationInfo?> GetOrganizationAsync(Principal caller, CancellationToken ct) =>
        caller.OrgId is null
            ? Task.FromResult<OrganizationInfo?>(null)
            : db.ReadAsync<OrganizationInfo?>(async c =>
            {
                var balance = await Ledger.BalanceMicrosAsync(c, null, new BillingAccount("org", caller.OrgId), billing.Value, clock.Now());
                var members = await c.QueryAsync<MemberRow>(
                    "SELECT id AS UserId, email, role FROM users WHERE org_id = @OrgId ORDER BY email", caller);
                return new OrganizationInfo
                {
                    Id = caller.OrgId,
                    Name = caller.OrgName!,
                    BalanceUsd = Ledger.ToUsd(balance),
                    Members = members.Select(m => new OrganizationMember { UserId = m.UserId, Email = m.Email, Role = m.Role }).ToList(),
                };
            }, ct);

    public Task<UserPreferences> GetPreferencesAsync(Principal caller, CancellationToken ct) =>
        db.ReadAsync(c => ReadPreferencesAsync(c, null, caller.UserId), ct);

    public Task<UserPreferences> SavePreferencesAsync(Principal caller, UserPreferences preferences, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(
                """
                INSERT INTO user_preferences (user_id, notify_email_cluster_create, notify_email_cluster_destroy, autopay_enabled,
                                              balance_warning_threshold, autopay_reload_threshold)
                VALUES (@UserId, @NotifyEmailClusterCreate, @NotifyEmailClusterDestroy, @AutopayEnabled, @BalanceWarningThreshold, @AutopayReloadThreshold)
                ON CONFLICT (user_id) DO UPDATE SET
                    notify_email_cluster_create = excluded.notify_email_cluster_create,
                    notify_email_cluster_destroy = excluded.notify_email_cluster_destroy,
                    autopay_enabled = excluded.autopay_enabled,
                    balance_warning_threshold = excluded.balance_warning_threshold,
                    autopay_reload_threshold = excluded.autopay_reload_threshold
                """,
                new
                {
                    caller.UserId, preferences.NotifyEmailClusterCreate, preferences.NotifyEmailClusterDestroy, preferences.AutopayEnabled,
                    preferences.BalanceWarningThreshold, preferences.AutopayReloadThreshold,
                }, t);
            return await ReadPreferencesAsync(c, t, caller.UserId);
        }, ct);

    /// <summary>Adds (or with a negative amount, takes) money; answers the account and its new balance.</summary>
    public Task<(string Account, decimal BalanceUsd)> CreditAsync(string? email, string? orgName, decimal amountUsd, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var now = clock.Now();
            BillingAccount account;
            string label;
            string? userId = null;
            if (email is not null)
            {
                var user = await c.QuerySingleOrDefaultAsync<MemberRow>(
                    "SELECT u.id AS UserId, u.email, u.role, u.org_id AS OrgId, o.name AS OrgName FROM users u LEFT JOIN orgs o ON o.id = u.org_id WHERE u.email = @email",
                    new { email }, t) ?? throw ApiError.NotFound("user_not_found", $"No user with email {email}.");
                account = BillingAccount.Of(user.UserId, user.OrgId);
                userId = user.UserId;
                label = user.OrgName is null ? user.Email : $"organization {user.OrgName} (via {user.Email})";
            }
            else
            {
                var orgId = await c.ExecuteScalarAsync<string?>("SELECT id FROM orgs WHERE name = @orgName", new { orgName }, t)
                    ?? throw ApiError.NotFound("org_not_found", $"No organization named {orgName}.");
                account = new BillingAccount("org", orgId);
                label = $"organization {orgName}";
            }
            await Ledger.PostAsync(c, t, account, userId, null, "credit", Ledger.ToMicros(amountUsd), null, null,
                amountUsd >= 0 ? "Credit by the operator" : "Charge by the operator", now);
            var balance = await Ledger.BalanceMicrosAsync(c, t, account, billing.Value, now);
            return (label, Ledger.ToUsd(balance));
        }, ct);

    public Task<IReadOnlyList<AdminUser>> ListUsersAsync(CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<AdminUser>>(async c =>
        {
            var rows = await c.QueryAsync<AdminUserRow>(
                """
                SELECT u.id AS UserId, u.email, o.name AS Org, u.role, u.is_operator AS IsOperator, u.created_at AS CreatedAt,
                       (SELECT COUNT(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS ActiveKeys
                FROM users u LEFT JOIN orgs o ON o.id = u.org_id ORDER BY u.created_at, u.email
                """);
            return rows.Select(r => new AdminUser
            {
                UserId = r.UserId, Email = r.Email, Org = r.Org, Role = r.Role, IsOperator = r.IsOperator,
                ActiveKeys = r.ActiveKeys, CreatedAt = Time.Iso(r.CreatedAt),
            }).ToList();
        }, ct);

    public Task<IReadOnlyList<AdminOrg>> ListOrgsAsync(CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<AdminOrg>>(async c =>
        {
            var now = clock.Now();
            var orgs = (await c.QueryAsync<OrgRow>(
                "SELECT o.id AS OrgId, o.name, (SELECT COUNT(*) FROM users u WHERE u.org_id = o.id) AS Members FROM orgs o ORDER BY o.name")).AsList();
            var result = new List<AdminOrg>();
            foreach (var org in orgs)
            {
                var balance = await Ledger.BalanceMicrosAsync(c, null, new BillingAccount("org", org.OrgId), billing.Value, now);
                result.Add(new AdminOrg { OrgId = org.OrgId, Name = org.Name, Members = org.Members, BalanceUsd = Ledger.ToUsd(balance) });
            }
            return result;
        }, ct);

    public Task<(string KeyId, string ApiKey)> CreateKeyAsync(string email, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var userId = await c.ExecuteScalarAsync<string?>("SELECT id FROM users WHERE email = @email", new { email }, t)
                ?? throw ApiError.NotFound("user_not_found", $"No user with email {email}.");
            return await InsertKeyAsync(c, t, userId, clock.Now());
        }, ct);

    public Task<IReadOnlyList<ApiKeyInfo>> ListKeysAsync(string? email, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<ApiKeyInfo>>(async c =>
        {
            var rows = await c.QueryAsync<KeyRow>(
                "SELECT k.id AS KeyId, k.prefix, u.email, k.created_at AS CreatedAt, k.revoked_at AS RevokedAt " +
                "FROM api_keys k JOIN users u ON u.id = k.user_id" + (email is null ? "" : " WHERE u.email = @email") + " ORDER BY k.created_at",
                new { email });
            return rows.Select(r => new ApiKeyInfo
            {
                KeyId = r.KeyId, Prefix = r.Prefix, Email = r.Email, CreatedAt = Time.Iso(r.CreatedAt),
                RevokedAt = r.RevokedAt is { } at ? Time.Iso(at) : null,
            }).ToList();
        }, ct);

    /// <summary>Revokes a key; it stops working at once on this engine (its cached lookup is dropped).</summary>
    public async Task RevokeKeyAsync(string keyId, CancellationToken ct)
    {
        var hash = await db.WriteAsync(async (c, t) =>
        {
            var found = await c.ExecuteScalarAsync<string?>("SELECT key_hash FROM api_keys WHERE id = @keyId", new { keyId }, t)
                ?? throw ApiError.NotFound("key_not_found", $"No API key {keyId}.");
            await c.ExecuteAsync("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, @now) WHERE id = @keyId", new { keyId, now = clock.Now() }, t);
            return found;
        }, ct);
        _cache.TryRemove(hash, out _);
    }

    private static async Task<(string KeyId, string Key)> InsertKeyAsync(DbConnection c, DbTransaction t, string userId, long now)
    {
        var key = ApiKeys.NewKey();
        var id = Ids.ApiKey();
        await c.ExecuteAsync(
            "INSERT INTO api_keys (id, user_id, key_hash, prefix, created_at) VALUES (@id, @userId, @hash, @prefix, @now)",
            new { id, userId, hash = ApiKeys.Hash(key), prefix = ApiKeys.Display(key), now }, t);
        return (id, key);
    }

    private static async Task<UserPreferences> ReadPreferencesAsync(DbConnection c, DbTransaction? t, string userId)
    {
        var row = await c.QuerySingleOrDefaultAsync<PreferencesRow>(
            """
            SELECT notify_email_cluster_create AS NotifyEmailClusterCreate, notify_email_cluster_destroy AS NotifyEmailClusterDestroy,
                   autopay_enabled AS AutopayEnabled, balance_warning_threshold AS BalanceWarningThreshold,
                   autopay_reload_threshold AS AutopayReloadThreshold
            FROM user_preferences WHERE user_id = @userId
            """, new { userId }, t) ?? new PreferencesRow();
        return new UserPreferences
        {
            NotifyEmailClusterCreate = row.NotifyEmailClusterCreate,
            NotifyEmailClusterDestroy = row.NotifyEmailClusterDestroy,
            AutopayEnabled = row.AutopayEnabled,
            BalanceWarningThreshold = (decimal?)row.BalanceWarningThreshold,
            AutopayReloadThreshold = (decimal?)row.AutopayReloadThreshold,
        };
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

    private sealed class MemberRow
    {
        public string UserId { get; set; } = "";
        public string Email { get; set; } = "";
        public string Role { get; set; } = "";
        public string? OrgId { get; set; }
        public string? OrgName { get; set; }
    }

    private sealed class PreferencesRow
    {
        public bool NotifyEmailClusterCreate { get; set; } = true;
        public bool NotifyEmailClusterDestroy { get; set; } = true;
        public bool AutopayEnabled { get; set; }
        public double? BalanceWarningThreshold { get; set; }
        public double? AutopayReloadThreshold { get; set; }
    }

    private sealed class AdminUserRow
    {
        public string UserId { get; set; } = "";
        public string Email { get; set; } = "";
        public string? Org { get; set; }
        public string Role { get; set; } = "";
        public bool IsOperator { get; set; }
        public long CreatedAt { get; set; }
        public int ActiveKeys { get; set; }
    }

    private sealed class OrgRow
    {
        public string OrgId { get; set; } = "";
        public string Name { get; set; } = "";
        public int Members { get; set; }
    }

    private sealed class KeyRow
    {
        public string KeyId { get; set; } = "";
        public string Prefix { get; set; } = "";
        public string Email { get; set; } = "";
        public long CreatedAt { get; set; }
        public long? RevokedAt { get; set; }
    }
}
