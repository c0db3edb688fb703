using System.Net;
using System.Net.Http.Json;
using OpenPool.Client;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Client.Tests;

/// <summary>The SDK's object storage calls against the in-process engine (spec §2.8).</summary>
public sealed class ObjectStorageClientTests : IDisposable
{
    private readonly EngineFactory _engine = new();

    public void Dispose() => _engine.Dispose();

    private OpenPoolClient Client(string key) =>
        new(_engine.CreateClient(), new OpenPoolClientOptions { Endpoint = new Uri("http://localhost/"), ApiKey = key });

    private async Task<string> KeyAsync(string email, string org, string role)
    {
        var response = await _engine.Admin().PostAsJsonAsync("/admin/users", new { email, org_name = org, role });
        response.EnsureSuccessStatusCode();
        return (await response.Json()).GetProperty("api_key").GetString()!;
    }

    [Fact]
    public async Task Enable_rotate_buckets_and_disable_round_trip_through_the_sdk()
    {
        var admin = Client(await KeyAsync("admin@lab.example", "lab", "admin"));
        var member = Client(await KeyAsync("member@lab.example", "lab", "member"));

        var notYet = await Assert.ThrowsAsync<OpenPoolException>(() => admin.GetObjectStorageCredentialsAsync());
        Assert.Equal(HttpStatusCode.NotFound, notYet.Status);
        Assert.Equal("object_storage_not_enabled", notYet.ErrorCode);

        var forbidden = await Assert.ThrowsAsync<OpenPoolException>(() => member.EnableObjectStorageAsync());
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.Status);

        var keys = await admin.EnableObjectStorageAsync();
        Assert.Matches("^OPKI[A-Z0-9]{16}$", keys.AccessKeyId);
        Assert.Equal(keys.SecretAccessKey, (await admin.EnableObjectStorageAsync()).SecretAccessKey);
        Assert.Equal(keys.AccessKeyId, (await member.GetObjectStorageCredentialsAsync()).AccessKeyId);

        var rotated = await admin.RotateObjectStorageKeysAsync();
        Assert.NotEqual(keys.AccessKeyId, rotated.AccessKeyId);
        Assert.Contains(rotated.AccessKeyId, (await member.GetObjectStorageAwsConfigAsync()).CredentialsFile);
        Assert.Contains(rotated.SecretAccessKey, (await member.GetObjectStorageRcloneConfigAsync()).RcloneConfig);

        Assert.Contains("sdk-bucket", (await member.CreateBucketAsync("sdk-bucket")).Message);
        var list = await member.ListBucketsAsync();
        Assert.Equal(["sdk-bucket"], list.Buckets);
        Assert.Equal("sdk-bucket", list.BucketDetails.Single().Name);
        var taken = await Assert.ThrowsAsync<OpenPoolException>(() => member.CreateBucketAsync("sdk-bucket"));
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        var invalid = await Assert.ThrowsAsync<OpenPoolException>(() => member.CreateBucketAsync("Not_Valid"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.Status);

        var busy = await Assert.ThrowsAsync<OpenPoolException>(() => admin.DisableObjectStorageAsync());
        Assert.Equal(HttpStatusCode.Conflict, busy.Status);
        Assert.Contains("sdk-bucket", busy.Message);

        await member.DeleteBucketAsync("sdk-bucket");
        var missing = await Assert.ThrowsAsync<OpenPoolException>(() => member.DeleteBucketAsync("sdk-bucket"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.False(string.IsNullOrEmpty((await admin.DisableObjectStorageAsync()).Message));
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<OpenPoolException>(() => member.ListBucketsAsync())).Status);
    }
}
