using System.Data.Common;
using Dapper;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>An object's metadata row (migration 0009).</summary>
internal sealed class ObjectRow : ObjectHeaders
{
    public string Bucket { get; set; } = "";
    public string Key { get; set; } = "";
    public long Size { get; set; }
    public string ETag { get; set; } = "";
    public int? PartsCount { get; set; }
    public string? ChecksumAlgorithm { get; set; }
    public string? ChecksumValue { get; set; }
    public string? ChecksumType { get; set; }
    public string BlobId { get; set; } = "";
    public long LastModified { get; set; }

    public string QuotedETag => "\"" + ETag + "\"";
}

/// <summary>What a write expects of the object it replaces (S3's conditional writes).</summary>
internal sealed record WriteCondition(bool MustNotExist, string? IfMatchETag);

/// <summary>
/// Object metadata in the database. Every call names the caller's scope: a bucket of another scope
/// answers exactly as a bucket that does not exist. A write takes a lock on its key (PostgreSQL) so
/// that the row it replaces, and so the blob it frees, is the one it read.
/// </summary>
internal sealed class ObjectStore(Database db)
{
    private const string Columns =
        "bucket, key, size, etag AS ETag, parts_count AS PartsCount, content_type AS ContentType, content_encoding AS ContentEncoding, " +
        "content_disposition AS ContentDisposition, content_language AS ContentLanguage, cache_control AS CacheControl, expires, " +
        "user_metadata AS UserMetadata, checksum_algorithm AS ChecksumAlgorithm, checksum_value AS ChecksumValue, checksum_type AS ChecksumType, " +
        "blob_id AS BlobId, last_modified AS LastModified";

    public Database Db => db;

    public Task<bool> BucketOwnedAsync(string scopeId, string bucket, CancellationToken ct) =>
        db.ReadAsync(async c => await c.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM s3_buckets WHERE name = @bucket AND scope_id = @scopeId", new { bucket, scopeId }) > 0, ct);

    public async Task<string> BucketRegionAsync(string scopeId, string bucket, CancellationToken ct) =>
        await db.ReadAsync(c => c.ExecuteScalarAsync<string?>(
            "SELECT region FROM s3_buckets WHERE name = @bucket AND scope_id = @scopeId", new { bucket, scopeId }), ct)
        ?? throw S3Errors.NoSuchBucket(bucket);

    /// <summary>The object, or null; <see cref="S3Errors.NoSuchBucket"/> when the scope has no such bucket.</summary>
    public Task<ObjectRow?> FindAsync(string scopeId, string bucket, string key, CancellationToken ct) =>
        db.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<ObjectRow>(
                $"SELECT {Columns} FROM s3_objects WHERE bucket = @bucket AND key = @key AND EXISTS (SELECT 1 FROM s3_buckets WHERE name = @bucket AND scope_id = @scopeId)",
                new { bucket, key, scopeId });
            if (row is null && await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM s3_buckets WHERE name = @bucket AND scope_id = @scopeId", new { bucket, scopeId }) == 0)
                throw S3Errors.NoSuchBucket(bucket);
            return row;
        }, ct);

    /// <summary>
    /// Makes <paramref name="row"/> the object under its key, atomically replacing any earlier one.
    /// Returns the blob the earlier one used (the caller deletes it once this has committed) and the
    /// change in stored bytes.
    /// </summary>
    public Task<(string? OldBlob, long Delta)> CommitAsync(string scopeId, ObjectRow row, WriteCondition? condition, CancellationToken ct) =>
        db.WriteAsync((c, t) => CommitAsync(c, t, scopeId, row, condition), ct);

    /// <summary><see cref="CommitAsync(string, ObjectRow, WriteCondition?, CancellationToken)"/> inside a caller's transaction.</summary>
    public async Task<(string? OldBlob, long Delta)> CommitAsync(DbConnection c, DbTransaction t, string scopeId, ObjectRow row, WriteCondition? condition)
    {
            var (oldBlob, oldSize, existed) = await LockAndReadAsync(c, t, scopeId, row.Bucket, row.Key);
            if (condition is not null)
            {
                if (condition.MustNotExist && existed)
                    throw S3Errors.PreconditionFailed("If-None-Match");
                if (condition.IfMatchETag is { } etag && (!existed || !ETagMatches(etag, await CurrentETagAsync(c, t, row.Bucket, row.Key))))
                    throw existed ? S3Errors.PreconditionFailed("If-Match") : S3Errors.NoSuchKey(row.Bucket, row.Key);
            }
            await c.ExecuteAsync(
                """
                INSERT INTO s3_objects (bucket, key, size, etag, parts_count, content_type, content_encoding, content_disposition, content_language,
                                        cache_control, expires, user_metadata, checksum_algorithm, checksum_value, checksum_type, blob_id, last_modified)
                VALUES (@Bucket, @Key, @Size, @ETag, @PartsCount, @ContentType, @ContentEncoding, @ContentDisposition, @ContentLanguage,
                        @CacheControl, @Expires, @UserMetadata, @ChecksumAlgorithm, @ChecksumValue, @ChecksumType, @BlobId, @LastModified)
                ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, etag = excluded.etag, parts_count = excluded.parts_count,
                    content_type = excluded.content_type, content_encoding = excluded.content_encoding, content_disposition = excluded.content_disposition,
                    content_language = excluded.content_language, cache_control = excluded.cache_control, expires = excluded.expires,
                    user_metadata = excluded.user_metadata, checksum_algorithm = excluded.checksum_algorithm, checksum_value = excluded.checksum_value,
                    checksum_type = excluded.checksum_type, blob_id = excluded.blob_id, last_modified = excluded.last_modified
                """, row, t);
            var delta = row.Size - oldSize;
            await c.ExecuteAsync(
                "UPDATE s3_buckets SET object_count = object_count + @added, size_bytes = size_bytes + @delta WHERE name = @Bucket",
                new { added = existed ? 0 : 1, delta, row.Bucket }, t);
            return (oldBlob, delta);
    }

    /// <summary>Removes the object if there is one; returns its blob and the (negative) change in stored bytes.</summary>
    public Task<(string? OldBlob, long Delta)> DeleteAsync(string scopeId, string bucket, string key, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var (oldBlob, oldSize, existed) = await LockAndReadAsync(c, t, scopeId, bucket, key);
            if (!existed)
                return ((string?)null, 0L);
            await c.ExecuteAsync("DELETE FROM s3_objects WHERE bucket = @bucket AND key = @key", new { bucket, key }, t);
            await c.ExecuteAsync("UPDATE s3_buckets SET object_count = object_count - 1, size_bytes = size_bytes - @oldSize WHERE name = @bucket",
                new { bucket, oldSize }, t);
            return (oldBlob, -oldSize);
        }, ct);

    private async Task<(string? Blob, long Size, bool Exists)> LockAndReadAsync(DbConnection c, DbTransaction t, string scopeId, string bucket, string key)
    {
        var owned = await db.LockThenQuerySingleAsync<long>(c, t, "s3-object:" + bucket + "/" + key,
            "SELECT COUNT(*) FROM s3_buckets WHERE name = @bucket AND scope_id = @scopeId", new { bucket, scopeId });
        if (owned == 0)
            throw S3Errors.NoSuchBucket(bucket);
        var old = await c.QuerySingleOrDefaultAsync<(string BlobId, long Size)?>(
            "SELECT blob_id, size FROM s3_objects WHERE bucket = @bucket AND key = @key", new { bucket, key }, t);
        return old is { } o ? (o.BlobId, o.Size, true) : (null, 0, false);
    }

    private static Task<string?> CurrentETagAsync(DbConnection c, DbTransaction t, string bucket, string key) =>
        c.ExecuteScalarAsync<string?>("SELECT etag FROM s3_objects WHERE bucket = @bucket AND key = @key", new { bucket, key }, t);

    /// <summary>An If-Match / If-None-Match value against an etag: <c>*</c>, or any of a list, quoted or not.</summary>
    public static bool ETagMatches(string condition, string? etag)
    {
        if (etag is null)
            return false;
        foreach (var part in condition.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var value = part.StartsWith("W/", StringComparison.Ordinal) ? part[2..] : part;
            if (value == "*" || value.Trim('"') == etag)
                return true;
        }
        return false;
    }

    /// <summary>
    /// Up to <paramref name="limit"/> objects of a bucket in key order (UTF-8 bytes), with keys
    /// starting with <paramref name="prefix"/> and after <paramref name="after"/> (or from
    /// <paramref name="from"/>, inclusive): one range scan of the primary key.
    /// </summary>
    public Task<List<ObjectRow>> ListAsync(string bucket, string prefix, string? after, string? from, int limit, CancellationToken ct) =>
        db.ReadAsync(async c =>
        {
            var lower = prefix;
            var sql = $"SELECT {Columns} FROM s3_objects WHERE bucket = @bucket AND key >= @lower";
            if (after is not null)
                sql += " AND key > @after";
            if (from is not null)
                sql += " AND key >= @from";
            if (PrefixUpperBound(prefix) is { } upper)
            {
                sql += " AND key < @upper";
                return (await c.QueryAsync<ObjectRow>(sql + " ORDER BY key LIMIT @limit", new { bucket, lower, after, from, upper, limit })).ToList();
            }
            var rows = (await c.QueryAsync<ObjectRow>(sql + " ORDER BY key LIMIT @limit", new { bucket, lower, after, from, limit })).ToList();
            return rows.Where(r => r.Key.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        }, ct);

    /// <summary>
    /// The least string above every string that starts with <paramref name="prefix"/>, in UTF-8 byte
    /// order: the prefix with its last character raised by one. Null when there is none to take
    /// (empty prefix, or a last character at the top of its UTF-8 length class or a surrogate).
    /// </summary>
    public static string? PrefixUpperBound(string prefix)
    {
        if (prefix.Length == 0)
            return null;
        var last = prefix[^1];
        if (char.IsSurrogate(last) || last is '\u007f' or '\u07ff' or '\ud7ff' or '\uffff')
            return null;
        return prefix[..^1] + (char)(last + 1);
    }
}
