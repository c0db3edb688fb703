namespace OpenPool.Engine.ObjectStorage.Management;

internal static class ManagementServices
{
    public static void AddObjectStorageManagement(this WebApplicationBuilder builder)
    {
    }

    public static void MapObjectStorageManagement(this WebApplication app)
    {
    }
}
