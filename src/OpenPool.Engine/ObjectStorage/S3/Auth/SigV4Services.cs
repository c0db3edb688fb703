namespace OpenPool.Engine.ObjectStorage.S3.Auth;

internal static class SigV4Services
{
    public static void AddSigV4Authentication(this WebApplicationBuilder builder)
    {
    }
}
