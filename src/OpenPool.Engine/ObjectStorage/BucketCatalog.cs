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
}
