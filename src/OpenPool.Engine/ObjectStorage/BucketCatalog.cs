using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.ObjectStorage;

/// <summary>A bucket as listings show it.</summary>
internal sealed record BucketSummary(string Name, DateTimeOffset CreatedAt, long ObjectCount, long SizeBytes);

internal enum BucketCreateOutcome
{
    Created,
    /// <summary>The scope already owns a bucket of that name (S3: BucketAlreadyOwnedByYou).</summary>
    AlreadyOwnedByYou,
    /// <summary>Someone else owns it: bucket names are global (S3: BucketAlreadyExists).</summary>
    AlreadyExists,
}

internal enum BucketDeleteOutcome
{
    Deleted,
    /// <summary>No such bucket in this scope (another scope's bucket is not found either).</summary>
    NotFound,
    /// <summary>It still holds objects or unfinished multipart uploads (S3: BucketNotEmpty).</summary>
    NotEmpty,
}

/// <summary>
/// Buckets, shared by the TensorPool management API (<c>/object-storage/bucket/*</c>) and the S3
/// endpoint, so both see one truth. Every call is scoped: another scope's buckets do not exist.
/// </summary>
internal interface IBucketCatalog
{
    /// <summary>Why a name breaks S3's bucket naming rules, or null when it is valid.</summary>
    string? NameProblem(string name);

    Task<IReadOnlyList<BucketSummary>> ListAsync(string scopeId, CancellationToken ct);

    /// <summary>Throws <see cref="ArgumentException"/> when <see cref="NameProblem"/> is not null.</summary>
    Task<BucketCreateOutcome> CreateAsync(string scopeId, string name, CancellationToken ct);

    Task<BucketDeleteOutcome> DeleteAsync(string scopeId, string name, CancellationToken ct);

    /// <summary>
    /// Bytes the scope stores, from the rows themselves: its buckets' objects plus the parts of its
    /// unfinished multipart uploads (both are billed). What metering's running count is checked against.
    /// </summary>
    Task<long> StoredBytesAsync(string scopeId, CancellationToken ct);
}

/// <summary>
/// <see cref="IBucketCatalog"/> over the engine's database (migration 0009). Names are global, so a
/// create that loses to another scope's bucket of that name learns so from the primary key.
/// </summary>
internal sealed class BucketCatalog(Database db, TimeProvider clock, IOptions<ObjectStorageOptions> options) : IBucketCatalog
{
    public string? NameProblem(string name) => BucketNames.Problem(name);

    public Task<IReadOnlyList<BucketSummary>> ListAsync(string scopeId, CancellationToken ct) =>
        db.ReadAsync<IReadOnlyList<BucketSummary>>(async c =>
        {
            var rows = await c.QueryAsync<BucketRow>(
                "SELECT name, created_at AS CreatedAt, object_count AS ObjectCount, size_bytes AS SizeBytes FROM s3_buckets WHERE scope_id = @scopeId ORDER BY name",
                new { scopeId });
            return rows.Select(r => new BucketSummary(r.Name, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt), r.ObjectCount, r.SizeBytes)).ToList();
        }, ct);

    public Task<BucketCreateOutcome> CreateAsync(string scopeId, string name, CancellationToken ct)
    {
        if (NameProblem(name) is { } problem)
            throw new ArgumentException(problem, nameof(name));
        return db.WriteAsync(async (c, t) =>
        {
            var owner = await c.ExecuteScalarAsync<string?>("SELECT scope_id FROM s3_buckets WHERE name = @name", new { name }, t);
            if (owner is not null)
                return owner == scopeId ? BucketCreateOutcome.AlreadyOwnedByYou : BucketCreateOutcome.AlreadyExists;
            // Two replicas creating one name at once: the loser's insert does nothing, and it asks again who won.
            var inserted = await c.ExecuteAsync(
                "INSERT INTO s3_buckets (name, scope_id, region, created_at) VALUES (@name, @scopeId, @region, @now) ON CONFLICT (name) DO NOTHING",
                new { name, scopeId, region = options.Value.Region, now = clock.Now() }, t);
            if (inserted == 1)
                return BucketCreateOutcome.Created;
            owner = await c.ExecuteScalarAsync<string?>("SELECT scope_id FROM s3_buckets WHERE name = @name", new { name }, t);
            return owner == scopeId ? BucketCreateOutcome.AlreadyOwnedByYou : BucketCreateOutcome.AlreadyExists;
        }, ct);
    }

    public Task<BucketDeleteOutcome> DeleteAsync(string scopeId, string name, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            await db.LockAsync(c, t, BucketLock(name));
            var owner = await c.ExecuteScalarAsync<string?>("SELECT scope_id FROM s3_buckets WHERE name = @name", new { name }, t);
            if (owner != scopeId)
                return BucketDeleteOutcome.NotFound;
            var busy = await c.ExecuteScalarAsync<long>(
                "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM s3_objects WHERE bucket = @name LIMIT 1) o) + (SELECT COUNT(*) FROM (SELECT 1 FROM s3_uploads WHERE bucket = @name LIMIT 1) u)",
                new { name }, t);
            if (busy > 0)
                return BucketDeleteOutcome.NotEmpty;
            await c.ExecuteAsync("DELETE FROM s3_buckets WHERE name = @name", new { name }, t);
            return BucketDeleteOutcome.Deleted;
        }, ct);

    public Task<long> StoredBytesAsync(string scopeId, CancellationToken ct) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>(
            """
            SELECT COALESCE((SELECT SUM(size_bytes) FROM s3_buckets WHERE scope_id = @scopeId), 0)
                 + COALESCE((SELECT SUM(p.size) FROM s3_parts p JOIN s3_uploads u ON u.upload_id = p.upload_id
                             JOIN s3_buckets b ON b.name = u.bucket WHERE b.scope_id = @scopeId), 0)
            """, new { scopeId }), ct);

    /// <summary>
    /// The advisory lock writes into a bucket and its deletion share (PostgreSQL), so an object
    /// cannot land in a bucket whose emptiness a concurrent delete has just checked.
    /// </summary>
    public static string BucketLock(string bucket) => "s3-bucket:" + bucket;

    private sealed class BucketRow
    {
        public string Name { get; set; } = "";
        public long CreatedAt { get; set; }
        public long ObjectCount { get; set; }
        public long SizeBytes { get; set; }
    }
}

/// <summary>S3's bucket naming rules (general purpose buckets).</summary>
internal static class BucketNames
{
    public static string? Problem(string name)
    {
        if (name.Length is < 3 or > 63)
            return "Bucket names must be between 3 and 63 characters long.";
        foreach (var ch in name)
        {
            if (ch is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.'))
                return "Bucket names can consist only of lowercase letters, numbers, dots (.), and hyphens (-).";
        }
        if (!char.IsAsciiLetterOrDigit(name[0]) || !char.IsAsciiLetterOrDigit(name[^1]))
            return "Bucket names must begin and end with a letter or number.";
        if (name.Contains("..", StringComparison.Ordinal))
            return "Bucket names must not contain two adjacent periods.";
        if (name.Contains(".-", StringComparison.Ordinal) || name.Contains("-.", StringComparison.Ordinal))
            return "Bucket names must not contain a period next to a hyphen.";
        if (System.Net.IPAddress.TryParse(name, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && name.Count(c => c == '.') == 3)
            return "Bucket names must not be formatted as an IP address (for example, 192.168.5.4).";
        foreach (var prefix in (string[])["xn--", "sthree-", "amzn-s3-demo-"])
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
                return $"Bucket names must not start with the prefix {prefix}.";
        }
        foreach (var suffix in (string[])["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"])
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal))
                return $"Bucket names must not end with the suffix {suffix}.";
        }
        return null;
    }
}
