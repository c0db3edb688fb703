namespace OpenPool.Engine.ObjectStorage.Blobs;

/// <summary>
/// Where object bytes live, by engine-generated blob ids (never by object keys, so no key can name a
/// path). A blob is written once through a <see cref="BlobWriter"/>, becomes durable and visible under
/// its id on <see cref="BlobWriter.CommitAsync"/>, and never changes afterwards; metadata rows point
/// at blobs, and replacing an object is a new blob and a new row.
/// </summary>
internal interface IBlobStore
{
    /// <summary>Starts a new blob in a temporary place; disposing the writer uncommitted removes it.</summary>
    BlobWriter Create();

    /// <summary>Opens a committed blob for reading; <see cref="FileNotFoundException"/> when it is gone.</summary>
    Stream OpenRead(string blobId);

    /// <summary>Removes a blob; nothing when it is already gone.</summary>
    void Delete(string blobId);

    /// <summary>Committed blobs last written before <paramref name="olderThan"/>, for the orphan sweep.</summary>
    IEnumerable<string> ListCommitted(DateTimeOffset olderThan);

    /// <summary>Removes temporary files last written before <paramref name="olderThan"/> (uploads a crash cut short).</summary>
    int RemoveAbandonedTemporaries(DateTimeOffset olderThan);
}

/// <summary>A blob being written: bytes go to <see cref="Stream"/>, then <see cref="CommitAsync"/>.</summary>
internal abstract class BlobWriter : IAsyncDisposable
{
    public abstract string BlobId { get; }

    public abstract Stream Stream { get; }

    /// <summary>Makes the bytes durable (fsync) and the blob readable under its id.</summary>
    public abstract Task CommitAsync(CancellationToken ct);

    public abstract ValueTask DisposeAsync();
}
