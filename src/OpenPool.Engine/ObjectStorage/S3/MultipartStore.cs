using Dapper;
using OpenPool.Engine.Data;
using OpenPool.Engine.ObjectStorage.Blobs;

namespace OpenPool.Engine.ObjectStorage.S3;

internal sealed class UploadRow : ObjectHeaders
{
    public string UploadId { get; set; } = "";
    public string Bucket { get; set; } = "";
    public string Key { get; set; } = "";
    public long InitiatedAt { get; set; }
    public string? ChecksumAlgorithm { get; set; }
}

internal sealed class PartRow
{
    public string UploadId { get; set; } = "";
    public int PartNumber { get; set; }
    public long Size { get; set; }
    public string ETag { get; set; } = "";
    public string? ChecksumValue { get; set; }
    public string BlobId { get; set; } = "";
    public long LastModified { get; set; }
}

/// <summary>Multipart uploads and their parts (migration 0009); each part is a blob of its own until completion.</summary>
internal sealed class MultipartStore(Database db, IBlobStore blobs, IServiceProvider services)
{
    private const string UploadColumns =
        "upload_id AS UploadId, bucket, key, initiated_at AS InitiatedAt, content_type AS ContentType, content_encoding AS ContentEncoding, " +
        "content_disposition AS ContentDisposition, content_language AS ContentLanguage, cache_control AS CacheControl, expires, " +
        "user_metadata AS UserMetadata, checksum_algorithm AS ChecksumAlgorithm";
    private const string PartColumns =
        "upload_id AS UploadId, part_number AS PartNumber, size, etag AS ETag, checksum_value AS ChecksumValue, blob_id AS BlobId, last_modified AS LastModified";

    public Task CreateAsync(UploadRow upload, CancellationToken ct) =>
        db.WriteAsync((c, t) => c.ExecuteAsync(
            $"""
            INSERT INTO s3_uploads (upload_id, bucket, key, initiated_at, content_type, content_encoding, content_disposition, content_language,
                                    cache_control, expires, user_metadata, checksum_algorithm)
            VALUES (@UploadId, @Bucket, @Key, @InitiatedAt, @ContentType, @ContentEncoding, @ContentDisposition, @ContentLanguage,
                    @CacheControl, @Expires, @UserMetadata, @ChecksumAlgorithm)
            """, upload, t), ct);

    /// <summary>The scope's upload of that bucket and key; NoSuchBucket / NoSuchUpload otherwise.</summary>
    public async Task<UploadRow> FindAsync(string scopeId, string bucket, string key, string uploadId, CancellationToken ct)
    {
        var upload = await db.ReadAsync(c => c.QuerySingleOrDefaultAsync<UploadRow>(
            $"SELECT {UploadColumns} FROM s3_uploads u WHERE upload_id = @uploadId AND bucket = @bucket AND key = @key AND EXISTS (SELECT 1 FROM s3_buckets WHERE name = @bucket AND scope_id = @scopeId)",
            new { uploadId, bucket, key, scopeId }), ct);
        if (upload is not null)
            return upload;
        if (!await services.GetRequiredService<ObjectStore>().BucketOwnedAsync(scopeId, bucket, ct))
            throw S3Errors.NoSuchBucket(bucket);
        throw S3Errors.NoSuchUpload(uploadId);
    }

    /// <summary>Records a part (replacing one of the same number); returns the replaced part's blob and size.</summary>
    public Task<(string? OldBlob, long OldSize)> PutPartAsync(PartRow part, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var exists = await db.LockThenQuerySingleAsync<long>(c, t, "s3-upload:" + part.UploadId,
                "SELECT COUNT(*) FROM s3_uploads WHERE upload_id = @UploadId", part);
            if (exists == 0)
                throw S3Errors.NoSuchUpload(part.UploadId);
            var old = await c.QuerySingleOrDefaultAsync<(string BlobId, long Size)?>(
                "SELECT blob_id, size FROM s3_parts WHERE upload_id = @UploadId AND part_number = @PartNumber", part, t);
            await c.ExecuteAsync(
                """
                INSERT INTO s3_parts (upload_id, part_number, size, etag, checksum_value, blob_id, last_modified)
                VALUES (@UploadId, @PartNumber, @Size, @ETag, @ChecksumValue, @BlobId, @LastModified)
                ON CONFLICT (upload_id, part_number) DO UPDATE SET size = excluded.size, etag = excluded.etag,
                    checksum_value = excluded.checksum_value, blob_id = excluded.blob_id, last_modified = excluded.last_modified
                """, part, t);
            return old is { } o ? ((string?)o.BlobId, o.Size) : (null, 0L);
        }, ct);

    public Task<List<PartRow>> PartsAsync(string uploadId, int after, int limit, CancellationToken ct) =>
        db.ReadAsync(async c => (await c.QueryAsync<PartRow>(
            $"SELECT {PartColumns} FROM s3_parts WHERE upload_id = @uploadId AND part_number > @after ORDER BY part_number LIMIT @limit",
            new { uploadId, after, limit })).ToList(), ct);

    public Task<List<UploadRow>> ListAsync(string bucket, string prefix, string? keyAfter, string? uploadAfter, int limit, CancellationToken ct) =>
        db.ReadAsync(async c =>
        {
            var sql = $"SELECT {UploadColumns} FROM s3_uploads WHERE bucket = @bucket AND key >= @prefix";
            if (keyAfter is not null)
                sql += uploadAfter is null ? " AND key > @keyAfter" : " AND (key > @keyAfter OR (key = @keyAfter AND upload_id > @uploadAfter))";
            var rows = await c.QueryAsync<UploadRow>(sql + " ORDER BY key, upload_id LIMIT @limit", new { bucket, prefix, keyAfter, uploadAfter, limit });
            return rows.Where(r => r.Key.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        }, ct);

    /// <summary>
    /// Completes an upload: in one transaction the upload and its parts go and the object row is
    /// committed. Returns the blobs no longer needed (every part's, the replaced object's) and the
    /// change in stored bytes.
    /// </summary>
    public Task<(List<string> Freed, long Delta)> CompleteAsync(string scopeId, string uploadId, ObjectRow row, WriteCondition? condition, CancellationToken ct) =>
        db.WriteAsync(async (c, t) =>
        {
            var exists = await db.LockThenQuerySingleAsync<long>(c, t, "s3-upload:" + uploadId,
                "SELECT COUNT(*) FROM s3_uploads WHERE upload_id = @uploadId", new { uploadId });
            if (exists == 0)
                throw S3Errors.NoSuchUpload(uploadId);
            var parts = (await c.QueryAsync<(string BlobId, long Size)>("SELECT blob_id, size FROM s3_parts WHERE upload_id = @uploadId", new { uploadId }, t)).ToList();
            await c.ExecuteAsync("DELETE FROM s3_parts WHERE upload_id = @uploadId", new { uploadId }, t);
            await c.ExecuteAsync("DELETE FROM s3_uploads WHERE upload_id = @uploadId", new { uploadId }, t);
            var (oldBlob, delta) = await services.GetRequiredService<ObjectStore>().CommitAsync(c, t, scopeId, row, condition);
            var freed = parts.Select(p => p.BlobId).ToList();
            if (oldBlob is not null)
                freed.Add(oldBlob);
            return (freed, delta - parts.Sum(p => p.Size));
        }, ct);

    /// <summary>Aborts an upload and deletes its parts' blobs; returns the bytes freed (0 when it was gone).</summary>
    public async Task<long> AbortAsync(string uploadId, CancellationToken ct)
    {
        var (freed, scopeId) = await db.WriteAsync(async (c, t) =>
        {
            var scope = await db.LockThenQuerySingleAsync<string>(c, t, "s3-upload:" + uploadId,
                "SELECT COALESCE((SELECT b.scope_id FROM s3_uploads u JOIN s3_buckets b ON b.name = u.bucket WHERE u.upload_id = @uploadId), '')", new { uploadId });
            var parts = (await c.QueryAsync<(string BlobId, long Size)>("SELECT blob_id, size FROM s3_parts WHERE upload_id = @uploadId", new { uploadId }, t)).ToList();
            await c.ExecuteAsync("DELETE FROM s3_parts WHERE upload_id = @uploadId", new { uploadId }, t);
            await c.ExecuteAsync("DELETE FROM s3_uploads WHERE upload_id = @uploadId", new { uploadId }, t);
            return (parts, scope.Length == 0 ? null : scope);
        }, ct);
        foreach (var part in freed)
            blobs.Delete(part.BlobId);
        var bytes = freed.Sum(p => p.Size);
        if (scopeId is not null && bytes != 0 && services.GetService<IObjectStorageMeter>() is { } meter)
            await meter.StoredBytesChangedAsync(scopeId, -bytes, ct);
        return bytes;
    }
}
