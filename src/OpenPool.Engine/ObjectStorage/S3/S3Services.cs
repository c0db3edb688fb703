namespace OpenPool.Engine.ObjectStorage.S3;

internal static class S3Services
{
    public static void AddS3Endpoint(this WebApplicationBuilder builder)
    {
    }

    public static void MapS3Endpoint(this WebApplication app)
    {
    }
}
