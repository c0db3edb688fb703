namespace OpenPool.Contracts;

/// <summary>
/// Object storage credentials (spec §2.8, "Response model for object-storage credentials and enable
/// operations"): the answer of <c>POST /object-storage/enable</c>, <c>GET /object-storage/credentials</c>
/// and <c>POST /object-storage/rotate-keys</c>, all 200. Before enable the last two answer 404 with
/// error <c>object_storage_not_enabled</c>.
/// </summary>
public sealed record ObjectStorageCredentials
{
    /// <summary>The scope the keys act for: the organization's id, or <c>user:&lt;user_id&gt;</c> for a user without one (spec §4.4).</summary>
    public required string OrgId { get; init; }
    /// <summary>S3 access key id: 20 upper-case letters and digits, starting <c>OPKI</c>.</summary>
    public required string AccessKeyId { get; init; }
    /// <summary>S3 secret access key: 40 characters. Anyone holding it acts for the whole organization.</summary>
    public required string SecretAccessKey { get; init; }
    /// <summary>The S3 endpoint URL clients use (<c>ObjectStorage:PublicUrl</c>, else <c>ObjectStorage:Url</c>).</summary>
    public required string Endpoint { get; init; }
    /// <summary>The region to sign for (SigV4), e.g. <c>us-east-1</c>.</summary>
    public required string Region { get; init; }
    /// <summary>TensorPool's storage profile id; OpenPool has none (always null).</summary>
    public string? ProfileId { get; init; }
    /// <summary>The user name the key pair belongs to (<c>openpool-&lt;scope&gt;</c>).</summary>
    public string? IamUsername { get; init; }
    /// <summary>The key pair's status: <c>active</c>.</summary>
    public string? Status { get; init; }
    /// <summary>When object storage was first enabled for the scope (ISO 8601, UTC).</summary>
    public string? CreatedAt { get; init; }
    /// <summary>When the keys last changed (enable, rotate; ISO 8601, UTC).</summary>
    public string? UpdatedAt { get; init; }
    /// <summary>Readable text with the keys and what to do next; what the CLI prints.</summary>
    public string? Message { get; init; }
}

/// <summary>
/// Answer to <c>GET /object-storage/configure/aws</c> (200): INI sections that, upserted into
/// <c>~/.aws/credentials</c> and <c>~/.aws/config</c>, make <c>aws --profile tp s3 ls</c> work.
/// </summary>
public sealed record ObjectStorageAwsConfig
{
    /// <summary>The profile name: <c>tp</c>.</summary>
    public required string ProfileName { get; init; }
    /// <summary>The <c>[tp]</c> section for <c>~/.aws/credentials</c> (aws_access_key_id, aws_secret_access_key).</summary>
    public required string CredentialsFile { get; init; }
    /// <summary>The <c>[profile tp]</c> section for <c>~/.aws/config</c> (region, endpoint_url, path-style addressing).</summary>
    public required string ConfigFile { get; init; }
    /// <summary>The S3 endpoint URL.</summary>
    public required string Endpoint { get; init; }
    /// <summary>Readable text: where each section goes.</summary>
    public string? Message { get; init; }
}

/// <summary>
/// Answer to <c>GET /object-storage/configure/rclone</c> (200): an INI section that, upserted into
/// <c>~/.config/rclone/rclone.conf</c>, makes <c>rclone lsd tp:</c> work (no <c>--ignore-checksum</c>).
/// </summary>
public sealed record ObjectStorageRcloneConfig
{
    /// <summary>The remote's name: <c>tp</c>.</summary>
    public required string RemoteName { get; init; }
    /// <summary>The <c>[tp]</c> section (type s3, provider Other, keys, endpoint, region, force_path_style).</summary>
    public required string RcloneConfig { get; init; }
    /// <summary>Readable text: where the section goes.</summary>
    public string? Message { get; init; }
}

/// <summary>A bucket as <c>GET /object-storage/bucket/list</c> details it.</summary>
public sealed record BucketDetails
{
    /// <summary>Bucket name (S3's naming rules; global across all tenants).</summary>
    public required string Name { get; init; }
    /// <summary>When created (ISO 8601, UTC).</summary>
    public required string CreatedAt { get; init; }
    /// <summary>Objects in the bucket.</summary>
    public required long ObjectCount { get; init; }
    /// <summary>Bytes stored in the bucket's objects.</summary>
    public required long SizeBytes { get; init; }
}

/// <summary>Answer to <c>GET /object-storage/bucket/list</c> (200).</summary>
public sealed record BucketListResponse
{
    /// <summary>The scope's bucket names, sorted; the official CLI prints each item.</summary>
    public required IReadOnlyList<string> Buckets { get; init; }
    /// <summary>The same buckets with their creation time, object count and size, for programs.</summary>
    public required IReadOnlyList<BucketDetails> BucketDetails { get; init; }
    /// <summary>Readable table.</summary>
    public required string Message { get; init; }
}
