using OpenPool.Engine.ObjectStorage.Management;
using OpenPool.Engine.ObjectStorage.S3;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.ObjectStorage;

/// <summary>
/// Object storage (spec §2.8, §4.4; DESIGN §7): the TensorPool management API on the engine's
/// listener, and the S3 endpoint on a listener of its own, authenticated by SigV4.
/// </summary>
internal static class ObjectStorageServices
{
    public static void AddObjectStorage(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<ObjectStorageOptions>(builder.Configuration.GetSection("ObjectStorage"));
        builder.AddObjectStorageManagement();
        builder.AddSigV4Authentication();
        builder.AddS3Endpoint();
    }

    public static void MapObjectStorage(this WebApplication app)
    {
        app.MapObjectStorageManagement();
        app.MapS3Endpoint();
    }
}
