using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using OpenPool.Contracts;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.ObjectStorage.Management;

/// <summary>
/// The TensorPool object-storage API (spec §2.8, §4.4) for the caller's scope: its organization, or
/// the user without one. Org admins enable, disable and rotate; members read the keys and manage
/// buckets. Before enable every other route answers 404 <c>object_storage_not_enabled</c>, whose
/// message says to run <c>tp object-storage enable</c>.
/// </summary>
internal static class ManagementApi
{
    public const string Tag = "object-storage";
    public const string ProfileName = "tp";
    private const string SeeCredentialsAgain = "the credentials it returned are what GET /object-storage/credentials (tp object-storage credentials) shows now.";

    public static void MapManagementRoutes(this WebApplication app)
    {
        app.MapPost("/object-storage/enable", EnableAsync).WithTags(Tag).WithSummary("Enable object storage for your organization")
            .Produces<ObjectStorageCredentials>().Produces<ErrorResponse>(403).AnswerHoldsSecret(SeeCredentialsAgain);
        app.MapDelete("/object-storage/disable", DisableAsync).WithTags(Tag).WithSummary("Disable object storage (refused while buckets exist)")
            .Produces<MessageResponse>().Produces<ErrorResponse>(403).Produces<ErrorResponse>(404).Produces<ErrorResponse>(409);
        app.MapGet("/object-storage/credentials", CredentialsAsync).WithTags(Tag).WithSummary("Get object storage credentials")
            .Produces<ObjectStorageCredentials>().Produces<ErrorResponse>(404);
        app.MapPost("/object-storage/rotate-keys", RotateAsync).WithTags(Tag).WithSummary("Rotate object storage keys (the old ones stop working at once)")
            .Produces<ObjectStorageCredentials>().Produces<ErrorResponse>(403).Produces<ErrorResponse>(404).AnswerHoldsSecret(SeeCredentialsAgain);
        app.MapGet("/object-storage/configure/aws", AwsConfigAsync).WithTags(Tag).WithSummary("AWS CLI profile sections for object storage")
            .Produces<ObjectStorageAwsConfig>().Produces<ErrorResponse>(404);
        app.MapGet("/object-storage/configure/rclone", RcloneConfigAsync).WithTags(Tag).WithSummary("rclone remote section for object storage")
            .Produces<ObjectStorageRcloneConfig>().Produces<ErrorResponse>(404);
        app.MapGet("/object-storage/bucket/list", ListBucketsAsync).WithTags(Tag).WithSummary("List buckets")
            .Produces<BucketListResponse>().Produces<ErrorResponse>(404);
        app.MapPut("/object-storage/bucket/create/{bucket_name}", CreateBucketAsync).WithTags(Tag).WithSummary("Create a bucket")
            .Produces<MessageResponse>(StatusCodes.Status201Created).Produces<ErrorResponse>(404).Produces<ErrorResponse>(409).Produces<ErrorResponse>(422);
        app.MapDelete("/object-storage/bucket/delete/{bucket_name}", DeleteBucketAsync).WithTags(Tag).WithSummary("Delete an empty bucket")
            .Produces(StatusCodes.Status204NoContent).Produces<ErrorResponse>(404).Produces<ErrorResponse>(409);
    }

    private static async Task<IResult> EnableAsync(HttpContext context, CredentialStore store, IOptions<ObjectStorageOptions> options)
    {
        var caller = context.Caller();
        RequireAdmin(caller, "enable");
        var (account, created) = await store.EnableAsync(ObjectStorageScope.Of(caller), context.RequestAborted);
        var intro = created
            ? $"Object storage enabled for {ScopeName(caller)}."
            : $"Object storage is already enabled for {ScopeName(caller)}; these are its current keys.";
        return Json(Model(account, options.Value, intro));
    }

    private static async Task<IResult> CredentialsAsync(HttpContext context, CredentialStore store, IOptions<ObjectStorageOptions> options)
    {
        var account = await RequireEnabledAsync(context, store);
        return Json(Model(account, options.Value, $"Object storage credentials for {ScopeName(context.Caller())}."));
    }

    private static async Task<IResult> RotateAsync(HttpContext context, CredentialStore store, IOptions<ObjectStorageOptions> options)
    {
        var caller = context.Caller();
        RequireAdmin(caller, "rotate the keys of");
        var account = await store.RotateAsync(ObjectStorageScope.Of(caller), context.RequestAborted) ?? throw NotEnabled();
        return Json(Model(account, options.Value,
            "New object storage keys. The old ones stopped working for every member.", "Update rclone with: tp object-storage configure rclone"));
    }

    private static async Task<IResult> DisableAsync(HttpContext context, CredentialStore store, [FromServices] IBucketCatalog buckets)
    {
        var caller = context.Caller();
        RequireAdmin(caller, "disable");
        var scope = ObjectStorageScope.Of(caller);
        _ = await RequireEnabledAsync(context, store);
        // Refused while buckets exist, so no stray command loses data. A bucket made through S3 in the
        // instant between this look and the disable is kept (the keys are gone, the data is not) and
        // shows again on the next enable.
        var existing = await buckets.ListAsync(scope, context.RequestAborted);
        if (existing.Count > 0)
            throw ApiError.Conflict("buckets_exist",
                $"Object storage still has {existing.Count} bucket(s): {string.Join(", ", existing.Select(b => b.Name))}. " +
                "Delete them first (tp object-storage bucket delete NAME); disabling never deletes data.");
        if (!await store.DisableAsync(scope, context.RequestAborted))
            throw NotEnabled();
        return Json(new MessageResponse { Message = $"Object storage disabled for {ScopeName(caller)}. Its keys no longer work." });
    }

    private static async Task<IResult> AwsConfigAsync(HttpContext context, CredentialStore store, IOptions<ObjectStorageOptions> options)
    {
        var account = await RequireEnabledAsync(context, store);
        var config = ClientConfigs.Aws(account, options.Value, ProfileName);
        return Json(config with
        {
            Message = $"Add the [{ProfileName}] section to ~/.aws/credentials and the [profile {ProfileName}] section to ~/.aws/config, " +
                      $"then: aws --profile {ProfileName} s3 ls",
        });
    }

    private static async Task<IResult> RcloneConfigAsync(HttpContext context, CredentialStore store, IOptions<ObjectStorageOptions> options)
    {
        var account = await RequireEnabledAsync(context, store);
        var config = ClientConfigs.Rclone(account, options.Value, ProfileName);
        return Json(config with { Message = $"Add the [{ProfileName}] section to ~/.config/rclone/rclone.conf, then: rclone lsd {ProfileName}:" });
    }

    private static async Task<IResult> ListBucketsAsync(HttpContext context, CredentialStore store, [FromServices] IBucketCatalog buckets)
    {
        var account = await RequireEnabledAsync(context, store);
        var list = (await buckets.ListAsync(account.ScopeId, context.RequestAborted)).OrderBy(b => b.Name, StringComparer.Ordinal).ToList();
        string message;
        if (list.Count == 0)
        {
            message = "No buckets. Create one with: tp object-storage bucket create NAME";
        }
        else
        {
            var table = new TextTable("BUCKET", "CREATED", "OBJECTS", "SIZE");
            foreach (var b in list)
                table.Add(b.Name, Time.Iso(b.CreatedAt.ToUnixTimeMilliseconds()), b.ObjectCount.ToString(CultureInfo.InvariantCulture), Size(b.SizeBytes));
            message = table.ToString();
        }
        return Json(new BucketListResponse
        {
            Buckets = list.Select(b => b.Name).ToList(),
            BucketDetails = list.Select(b => new BucketDetails
            {
                Name = b.Name, CreatedAt = Time.Iso(b.CreatedAt.ToUnixTimeMilliseconds()), ObjectCount = b.ObjectCount, SizeBytes = b.SizeBytes,
            }).ToList(),
            Message = message,
        });
    }

    private static async Task<IResult> CreateBucketAsync(string bucket_name, HttpContext context, CredentialStore store, [FromServices] IBucketCatalog buckets)
    {
        var account = await RequireEnabledAsync(context, store);
        if (buckets.NameProblem(bucket_name) is { } problem)
            throw ApiError.Validation(["path", "bucket_name"], "value_error", problem);
        var outcome = await buckets.CreateAsync(account.ScopeId, bucket_name, context.RequestAborted);
        return outcome switch
        {
            BucketCreateOutcome.Created => Json(new MessageResponse { Message = $"Bucket {bucket_name} created. Use it as s3://{bucket_name} (aws) or tp:{bucket_name} (rclone)." },
                StatusCodes.Status201Created),
            BucketCreateOutcome.AlreadyOwnedByYou => throw ApiError.Conflict("bucket_already_owned_by_you", $"You already have a bucket named {bucket_name}."),
            _ => throw ApiError.Conflict("bucket_already_exists", $"The bucket name {bucket_name} is taken; bucket names are global. Pick another."),
        };
    }

    private static async Task<IResult> DeleteBucketAsync(string bucket_name, HttpContext context, CredentialStore store, [FromServices] IBucketCatalog buckets)
    {
        var account = await RequireEnabledAsync(context, store);
        var outcome = await buckets.DeleteAsync(account.ScopeId, bucket_name, context.RequestAborted);
        return outcome switch
        {
            BucketDeleteOutcome.Deleted => Results.NoContent(),
            BucketDeleteOutcome.NotEmpty => throw ApiError.Conflict("bucket_not_empty",
                $"Bucket {bucket_name} is not empty: it holds objects or unfinished multipart uploads. Delete its objects " +
                $"(aws --profile tp s3 rm --recursive s3://{bucket_name}) and abort its uploads (aws --profile tp s3api list-multipart-uploads " +
                $"--bucket {bucket_name}, then aws --profile tp s3api abort-multipart-upload --bucket {bucket_name} --key KEY --upload-id ID)."),
            _ => throw ApiError.NotFound("bucket_not_found", $"No bucket named {bucket_name}."),
        };
    }

    private static async Task<StorageAccount> RequireEnabledAsync(HttpContext context, CredentialStore store) =>
        await store.GetAsync(ObjectStorageScope.Of(context.Caller()), context.RequestAborted) ?? throw NotEnabled();

    private static ApiError NotEnabled() =>
        ApiError.NotFound("object_storage_not_enabled", "Object storage is not enabled. Run: tp object-storage enable");

    /// <summary>A user without an organization administers their own object storage.</summary>
    private static void RequireAdmin(Principal caller, string action)
    {
        if (caller.OrgId is not null && caller.Role != "admin")
            throw ApiError.Forbidden($"Only an admin of {caller.OrgName} can {action} object storage; you are a {caller.Role}.");
    }

    private static string ScopeName(Principal caller) => caller.OrgId is null ? caller.Email : $"organization {caller.OrgName}";

    private static ObjectStorageCredentials Model(StorageAccount account, ObjectStorageOptions options, string intro,
        string hint = "Set up rclone with: tp object-storage configure rclone")
    {
        // tp prints the message and then the keys, endpoint and region from their own fields, so the
        // message holds only what comes before them: the intro, then one hint.
        var message = intro + " " + hint;
        return new ObjectStorageCredentials
        {
            OrgId = account.ScopeId,
            AccessKeyId = account.AccessKeyId,
            SecretAccessKey = account.SecretAccessKey,
            Endpoint = options.EndpointForClients,
            Region = options.Region,
            ProfileId = null,
            IamUsername = account.IamUsername,
            Status = "active",
            CreatedAt = Time.Iso(account.CreatedAt),
            UpdatedAt = Time.Iso(account.UpdatedAt),
            Message = message,
        };
    }

    internal static string Size(long bytes) => bytes switch
    {
        < 1_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e3:0.##} KB"),
        < 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.##} MB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.##} GB"),
    };

    private static IResult Json<T>(T value, int status = StatusCodes.Status200OK) => Results.Json(value, ApiJson.Options, statusCode: status);
}
