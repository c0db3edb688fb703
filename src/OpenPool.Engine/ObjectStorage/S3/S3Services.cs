namespace OpenPool.Engine.ObjectStorage.S3;

internal static class S3Services
{
    public static void AddS3Endpoint(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IBucketCatalog, BucketCatalog>();
    }

    public static void MapS3Endpoint(this WebApplication app)
    {
    }
}
