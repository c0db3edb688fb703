using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.ObjectStorage.Blobs;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// The S3 endpoint's one route: every request on the S3 listener comes here, is authenticated by the
/// SigV4 scheme and dispatched by method, bucket, key and sub-resource to an S3 operation. What is
/// not implemented answers S3's <c>NotImplemented</c>; every failure is S3's XML error body.
/// </summary>
internal sealed partial class S3Endpoint(
    ObjectStore objects,
    IBucketCatalog buckets,
    IBlobStore blobs,
    IOptions<ObjectStorageOptions> options,
    TimeProvider clock,
    IServiceProvider services,
    ILogger<S3Endpoint> log)
{
    /// <summary>S3's limit on one PutObject or UploadPart.</summary>
    public const long MaxUploadBytes = 5L * 1024 * 1024 * 1024;

    // Sub-resources (query names) of operations this endpoint does not implement.
    private static readonly HashSet<string> Unimplemented = new(StringComparer.Ordinal)
    {
        "accelerate", "analytics", "cors", "encryption", "intelligent-tiering", "inventory", "lifecycle", "logging", "metrics",
        "notification", "object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication",
        "requestPayment", "tagging", "website", "retention", "legal-hold", "torrent", "restore", "select", "attributes", "renameObject",
        "session", "metadataConfiguration", "metadataTable",
    };

    public async Task HandleAsync(HttpContext context)
    {
        // This listener's answers are S3's: the API's JSON status pages must not add a body.
        if (context.Features.Get<IStatusCodePagesFeature>() is { } pages)
            pages.Enabled = false;
        context.Response.Headers["x-amz-request-id"] = S3Xml.RequestId(context);
        try
        {
            var scopeId = await AuthenticateAsync(context);
            if (services.GetService<IObjectStorageMeter>() is { } meter)
                meter.RequestServed(scopeId);
            await DispatchAsync(context, scopeId);
        }
        catch (S3Exception error)
        {
            await S3Xml.WriteErrorAsync(context, error);
        }
        catch (BadHttpRequestException bad) when (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await S3Xml.WriteErrorAsync(context, S3Errors.EntityTooLarge(MaxUploadBytes));
        }
        catch (BadHttpRequestException)
        {
            await S3Xml.WriteErrorAsync(context, S3Errors.IncompleteBody());
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            log.LogError(ex, "S3 fault on {Method} {Path}", context.Request.Method, context.Request.Path);
            await S3Xml.WriteErrorAsync(context, new S3Exception(500, "InternalError", "We encountered an internal error. Please try again."));
        }
    }

    private async Task<string> AuthenticateAsync(HttpContext context)
    {
        // The route's policy ran the SigV4 scheme already (and answered its failures).
        if (context.User.FindFirstValue(S3Claims.ScopeId) is { Length: > 0 } authorized)
            return authorized;
        var schemes = services.GetService<IAuthenticationSchemeProvider>();
        if (schemes is null || await schemes.GetSchemeAsync(S3Claims.Scheme) is null)
            throw S3Errors.AccessDenied("SigV4 authentication is not available on this engine.");
        var result = await context.AuthenticateAsync(S3Claims.Scheme);
        if (result.Failure is S3Exception s3)
            throw s3;
        if (result.Failure?.InnerException is S3Exception inner)
            throw inner;
        if (!result.Succeeded || result.Principal?.FindFirstValue(S3Claims.ScopeId) is not { Length: > 0 } scopeId)
            throw S3Errors.AccessDenied(result.Failure?.Message ?? "Anonymous requests are not allowed. Sign requests with an OpenPool object storage key.");
        context.User = result.Principal;
        return scopeId;
    }

    /// <summary>
    /// Headers that ask for a guarantee this endpoint does not give: encryption with the client's or
    /// a KMS key, retention and legal holds. Storing the object anyway would answer 200 to a client
    /// that then believes its data is encrypted or cannot be deleted, so they are NotImplemented.
    /// </summary>
    private static readonly string[] UnkeptPromises =
    [
        "x-amz-server-side-encryption", "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
        "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption-context",
        "x-amz-copy-source-server-side-encryption-customer-algorithm", "x-amz-copy-source-server-side-encryption-customer-key",
        "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold",
    ];

    /// <summary>S3's storage classes; every one is stored alike here, as STANDARD.</summary>
    private static readonly HashSet<string> StorageClasses =
    [
        "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR",
        "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE",
    ];

    private static void RefuseUnkeptPromises(HttpContext context)
    {
        foreach (var name in UnkeptPromises)
        {
            if (context.Request.Headers.ContainsKey(name))
                throw S3Errors.NotImplemented($"The {name} header (this endpoint neither encrypts objects with a requested key nor locks them)");
        }
        if (string.Equals(Header(context, "x-amz-bucket-object-lock-enabled"), "true", StringComparison.OrdinalIgnoreCase))
            throw S3Errors.NotImplemented("Object Lock");
        if (Header(context, "x-amz-storage-class") is { } storageClass && !StorageClasses.Contains(storageClass))
            throw new S3Exception(400, "InvalidStorageClass", "The storage class you specified is not valid") { Details = [new("StorageClassRequested", storageClass)] };
    }

    private Task DispatchAsync(HttpContext context, string scopeId)
    {
        var request = S3Request.Parse(context, options.Value.Domain);
        var query = context.Request.Query;
        var method = context.Request.Method;
        foreach (var name in query.Keys)
        {
            if (Unimplemented.Contains(name))
                throw S3Errors.NotImplemented($"The '{name}' sub-resource");
        }
        RefuseUnkeptPromises(context);

        if (request.Bucket is null)
        {
            if (HttpMethods.IsGet(method))
                return ListBucketsAsync(context, scopeId);
            throw S3Errors.MethodNotAllowed(method);
        }
        var bucket = request.Bucket;
        if (request.Key is null)
        {
            if (HttpMethods.IsPut(method))
            {
                if (query.ContainsKey("versioning") || query.ContainsKey("acl"))
                    throw S3Errors.NotImplemented($"PUT ?{query.Keys.First()}");
                return CreateBucketAsync(context, scopeId, bucket);
            }
            if (HttpMethods.IsHead(method))
                return HeadBucketAsync(context, scopeId, bucket);
            if (HttpMethods.IsDelete(method))
                return DeleteBucketAsync(context, scopeId, bucket);
            if (HttpMethods.IsPost(method) && query.ContainsKey("delete"))
                return DeleteObjectsAsync(context, scopeId, bucket);
            if (HttpMethods.IsGet(method))
            {
                if (query.ContainsKey("location"))
                    return GetBucketLocationAsync(context, scopeId, bucket);
                if (query.ContainsKey("versioning"))
                    return GetBucketVersioningAsync(context, scopeId, bucket);
                if (query.ContainsKey("acl"))
                    return GetAclAsync(context, scopeId, bucket, null);
                if (query.ContainsKey("uploads"))
                    return ListMultipartUploadsAsync(context, scopeId, bucket);
                if (query.ContainsKey("versions"))
                    return ListObjectsAsync(context, scopeId, bucket, ListKind.Versions);
                return ListObjectsAsync(context, scopeId, bucket, query["list-type"] == "2" ? ListKind.V2 : ListKind.V1);
            }
            throw S3Errors.MethodNotAllowed(method);
        }

        var key = request.Key;
        // An unversioned bucket holds one version of each object, "null": any other id names
        // nothing, and must never reach (or delete) the current object.
        if (query.TryGetValue("versionId", out var versionId) && versionId != "null")
            throw S3Errors.InvalidVersionId(versionId.ToString());
        if (HttpMethods.IsPut(method))
        {
            if (query.ContainsKey("acl"))
                throw S3Errors.NotImplemented("PutObjectAcl");
            if (query.ContainsKey("partNumber") || query.ContainsKey("uploadId"))
                return UploadPartAsync(context, scopeId, bucket, key);
            if (context.Request.Headers.ContainsKey("x-amz-copy-source"))
                return CopyObjectAsync(context, scopeId, bucket, key);
            return PutObjectAsync(context, scopeId, bucket, key);
        }
        if (HttpMethods.IsGet(method))
        {
            if (query.ContainsKey("acl"))
                return GetAclAsync(context, scopeId, bucket, key);
            if (query.ContainsKey("uploadId"))
                return ListPartsAsync(context, scopeId, bucket, key);
            return GetObjectAsync(context, scopeId, bucket, key, head: false);
        }
        if (HttpMethods.IsHead(method))
            return GetObjectAsync(context, scopeId, bucket, key, head: true);
        if (HttpMethods.IsDelete(method))
        {
            if (query.ContainsKey("uploadId"))
                return AbortMultipartUploadAsync(context, scopeId, bucket, key);
            return DeleteObjectAsync(context, scopeId, bucket, key);
        }
        if (HttpMethods.IsPost(method))
        {
            if (query.ContainsKey("uploads"))
                return CreateMultipartUploadAsync(context, scopeId, bucket, key);
            if (query.ContainsKey("uploadId"))
                return CompleteMultipartUploadAsync(context, scopeId, bucket, key);
            throw S3Errors.NotImplemented("This POST");
        }
        throw S3Errors.MethodNotAllowed(method);
    }

    // ---- buckets -------------------------------------------------------------------------------

    private async Task ListBucketsAsync(HttpContext context, string scopeId)
    {
        var list = await buckets.ListAsync(scopeId, context.RequestAborted);
        var xml = new S3Xml("ListAllMyBucketsResult");
        Owner(xml, scopeId);
        xml.Open("Buckets");
        foreach (var bucket in list)
        {
            xml.Open("Bucket").Element("Name", bucket.Name).Element("CreationDate", S3Xml.Timestamp(bucket.CreatedAt.ToUnixTimeMilliseconds()))
               .Element("BucketRegion", options.Value.Region).Close();
        }
        xml.Close();
        await S3Xml.WriteAsync(context, 200, xml);
    }

    private static void Owner(S3Xml xml, string scopeId) =>
        xml.Open("Owner").Element("ID", OwnerId(scopeId)).Element("DisplayName", scopeId).Close();

    /// <summary>A canonical-user-like id for the scope (S3 shows 64 hex digits).</summary>
    private static string OwnerId(string scopeId) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("openpool-s3-owner:" + scopeId)));

    private async Task CreateBucketAsync(HttpContext context, string scopeId, string bucket)
    {
        if (buckets.NameProblem(bucket) is { } problem)
            throw new S3Exception(400, "InvalidBucketName", "The specified bucket is not valid. " + problem) { Details = [new("BucketName", bucket)] };
        // The body (CreateBucketConfiguration) may name a region: only the one served is accepted, as S3 refuses a
        // LocationConstraint that is not the region of the endpoint it was sent to.
        var body = await ReadSmallBodyAsync(context, 64 * 1024);
        if (body.Length > 0 && S3XmlBody.Child(S3XmlBody.Parse(body, "CreateBucketConfiguration"), "LocationConstraint") is { Length: > 0 } location
            && location != options.Value.Region)
        {
            throw new S3Exception(400, "IllegalLocationConstraintException",
                $"The {location} location constraint is incompatible for the region specific endpoint this request was sent to ({options.Value.Region}).");
        }
        var outcome = await buckets.CreateAsync(scopeId, bucket, context.RequestAborted);
        switch (outcome)
        {
            case BucketCreateOutcome.AlreadyOwnedByYou:
                throw new S3Exception(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.") { Details = [new("BucketName", bucket)] };
            case BucketCreateOutcome.AlreadyExists:
                throw new S3Exception(409, "BucketAlreadyExists", "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.") { Details = [new("BucketName", bucket)] };
        }
        context.Response.Headers.Location = "/" + bucket;
        context.Response.StatusCode = 200;
    }

    private async Task HeadBucketAsync(HttpContext context, string scopeId, string bucket)
    {
        var region = await objects.BucketRegionAsync(scopeId, bucket, context.RequestAborted);
        context.Response.Headers["x-amz-bucket-region"] = region;
        context.Response.StatusCode = 200;
    }

    private async Task DeleteBucketAsync(HttpContext context, string scopeId, string bucket)
    {
        switch (await buckets.DeleteAsync(scopeId, bucket, context.RequestAborted))
        {
            case BucketDeleteOutcome.NotFound:
                throw S3Errors.NoSuchBucket(bucket);
            case BucketDeleteOutcome.NotEmpty:
                throw new S3Exception(409, "BucketNotEmpty", "The bucket you tried to delete is not empty") { Details = [new("BucketName", bucket)] };
        }
        context.Response.StatusCode = 204;
    }

    private async Task GetBucketLocationAsync(HttpContext context, string scopeId, string bucket)
    {
        var region = await objects.BucketRegionAsync(scopeId, bucket, context.RequestAborted);
        // S3 answers an empty constraint for us-east-1.
        var xml = new S3Xml("LocationConstraint");
        if (region != "us-east-1")
            xml = LocationXml(region);
        await S3Xml.WriteAsync(context, 200, xml);
    }

    private static S3Xml LocationXml(string region)
    {
        var xml = new S3Xml("LocationConstraint");
        // The region is the element's text, not a child element.
        return xml.Text(region);
    }

    private async Task GetBucketVersioningAsync(HttpContext context, string scopeId, string bucket)
    {
        await objects.BucketRegionAsync(scopeId, bucket, context.RequestAborted);
        // Versioning was never enabled: S3 answers an empty configuration.
        await S3Xml.WriteAsync(context, 200, new S3Xml("VersioningConfiguration"));
    }

    private async Task GetAclAsync(HttpContext context, string scopeId, string bucket, string? key)
    {
        if (key is null)
            await objects.BucketRegionAsync(scopeId, bucket, context.RequestAborted);
        else if (await objects.FindAsync(scopeId, bucket, key, context.RequestAborted) is null)
            throw S3Errors.NoSuchKey(bucket, key);
        // No ACLs: the owner has full control and no one else has anything.
        var xml = new S3Xml("AccessControlPolicy");
        Owner(xml, scopeId);
        xml.Open("AccessControlList").Open("Grant").RawOpen("Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"", "Grantee")
           .Element("ID", OwnerId(scopeId)).Element("DisplayName", scopeId).Close().Element("Permission", "FULL_CONTROL").Close().Close();
        await S3Xml.WriteAsync(context, 200, xml);
    }

    // ---- helpers ------------------------------------------------------------------------------

    private static async Task<byte[]> ReadSmallBodyAsync(HttpContext context, int max)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > max)
                throw S3Errors.InvalidRequest($"The request body exceeds {max} bytes.");
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static string? Header(HttpContext context, string name) =>
        context.Request.Headers.TryGetValue(name, out var value) && value.Count > 0 && !string.IsNullOrEmpty(value[0]) ? value[0] : null;

    private static string? UserMetadataJson(HttpContext context)
    {
        var meta = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var total = 0;
        foreach (var (name, value) in context.Request.Headers)
        {
            if (!name.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase))
                continue;
            var key = name["x-amz-meta-".Length..].ToLowerInvariant();
            var text = value.ToString();
            meta[key] = text;
            total += Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(text);
        }
        if (total > 2048)
            throw new S3Exception(400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.") { Details = [new("MaxSizeAllowed", "2048")] };
        return meta.Count == 0 ? null : JsonSerializer.Serialize(meta);
    }

    private static void ApplyContentHeaders(HttpContext context, ObjectHeaders row)
    {
        row.ContentType = Header(context, "Content-Type");
        row.ContentEncoding = Header(context, "Content-Encoding") is { } encoding ? StripAwsChunked(encoding) : null;
        row.ContentDisposition = Header(context, "Content-Disposition");
        row.ContentLanguage = Header(context, "Content-Language");
        row.CacheControl = Header(context, "Cache-Control");
        row.Expires = Header(context, "Expires");
        row.UserMetadata = UserMetadataJson(context);
    }

    /// <summary>aws-chunked is the transfer framing SigV4 removed, not the object's encoding.</summary>
    private static string? StripAwsChunked(string encoding)
    {
        var rest = encoding.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(e => !e.Equals("aws-chunked", StringComparison.OrdinalIgnoreCase)).ToArray();
        return rest.Length == 0 ? null : string.Join(", ", rest);
    }

    private async Task ReportStoredAsync(string scopeId, long delta)
    {
        if (delta != 0 && services.GetService<IObjectStorageMeter>() is { } meter)
            await meter.StoredBytesChangedAsync(scopeId, delta, CancellationToken.None);
    }

    private void DeleteBlobQuietly(string? blobId)
    {
        if (blobId is null)
            return;
        try
        {
            blobs.Delete(blobId);
        }
        catch (IOException ex)
        {
            // The orphan sweep takes it later.
            log.LogWarning(ex, "Could not delete blob {Blob}", blobId);
        }
    }
}
