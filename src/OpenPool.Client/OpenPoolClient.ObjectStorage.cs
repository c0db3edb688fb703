using OpenPool.Contracts;

namespace OpenPool.Client;

public sealed partial class OpenPoolClient
{
    // Enable and rotate answer with a secret, which the engine's idempotency store does not keep, so
    // they go without an Idempotency-Key: enabling again is harmless (same keys), and a rotation
    // retried after a lost answer rotates once more and returns the keys that then work.

    /// <summary>
    /// Turns object storage on for your organization (or you, without one) and returns its S3
    /// credentials; when it is on already, the current ones (spec §2.8, <c>POST /object-storage/enable</c>).
    /// Throws <see cref="OpenPoolException"/> 403 for an organization member who is not an admin.
    /// </summary>
    public Task<ObjectStorageCredentials> EnableObjectStorageAsync(CancellationToken cancellationToken = default) =>
        SendAsync<ObjectStorageCredentials>(HttpMethod.Post, "object-storage/enable", null, cancellationToken, idempotent: false);

    /// <summary>
    /// Turns object storage off; its keys stop working (<c>DELETE /object-storage/disable</c>).
    /// Throws 409 (<c>buckets_exist</c>, naming them) while any bucket exists, 403 for a non-admin,
    /// 404 (<c>object_storage_not_enabled</c>) when it is off.
    /// </summary>
    public Task<MessageResponse> DisableObjectStorageAsync(CancellationToken cancellationToken = default) =>
        SendAsync<MessageResponse>(HttpMethod.Delete, "object-storage/disable", null, cancellationToken);

    /// <summary>The S3 credentials (<c>GET /object-storage/credentials</c>); 404 <c>object_storage_not_enabled</c> before enable.</summary>
    public Task<ObjectStorageCredentials> GetObjectStorageCredentialsAsync(CancellationToken cancellationToken = default) =>
        GetAsync<ObjectStorageCredentials>("object-storage/credentials", cancellationToken);

    /// <summary>
    /// Replaces the S3 keys; the old ones stop working at once for every member
    /// (<c>POST /object-storage/rotate-keys</c>). 403 for a non-admin, 404 before enable.
    /// </summary>
    public Task<ObjectStorageCredentials> RotateObjectStorageKeysAsync(CancellationToken cancellationToken = default) =>
        SendAsync<ObjectStorageCredentials>(HttpMethod.Post, "object-storage/rotate-keys", null, cancellationToken, idempotent: false);

    /// <summary>The <c>[tp]</c> credentials and <c>[profile tp]</c> config sections for the AWS CLI (<c>GET /object-storage/configure/aws</c>).</summary>
    public Task<ObjectStorageAwsConfig> GetObjectStorageAwsConfigAsync(CancellationToken cancellationToken = default) =>
        GetAsync<ObjectStorageAwsConfig>("object-storage/configure/aws", cancellationToken);

    /// <summary>The <c>[tp]</c> remote section for rclone.conf (<c>GET /object-storage/configure/rclone</c>).</summary>
    public Task<ObjectStorageRcloneConfig> GetObjectStorageRcloneConfigAsync(CancellationToken cancellationToken = default) =>
        GetAsync<ObjectStorageRcloneConfig>("object-storage/configure/rclone", cancellationToken);

    /// <summary>Your organization's buckets: names, and details (created, objects, bytes) (<c>GET /object-storage/bucket/list</c>).</summary>
    public Task<BucketListResponse> ListBucketsAsync(CancellationToken cancellationToken = default) =>
        GetAsync<BucketListResponse>("object-storage/bucket/list", cancellationToken);

    /// <summary>
    /// Creates a bucket (<c>PUT /object-storage/bucket/create/{bucket_name}</c>, 201). Names follow S3's
    /// rules (422 otherwise) and are global: a name anyone holds is a 409.
    /// </summary>
    public Task<MessageResponse> CreateBucketAsync(string bucketName, CancellationToken cancellationToken = default) =>
        SendAsync<MessageResponse>(HttpMethod.Put, "object-storage/bucket/create/" + Segment(bucketName), null, cancellationToken);

    /// <summary>
    /// Deletes an empty bucket (<c>DELETE /object-storage/bucket/delete/{bucket_name}</c>, 204). 409
    /// (<c>bucket_not_empty</c>) while it holds objects or unfinished uploads; 404 when you have no such bucket.
    /// </summary>
    public Task DeleteBucketAsync(string bucketName, CancellationToken cancellationToken = default) =>
        SendAsync<object?>(HttpMethod.Delete, "object-storage/bucket/delete/" + Segment(bucketName), null, cancellationToken);
}
