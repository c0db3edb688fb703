namespace OpenPool.Engine.ObjectStorage.Management;

internal static class ManagementServices
{
    public static void AddObjectStorageManagement(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<CredentialSealer>();
        builder.Services.AddSingleton<CredentialStore>();
        builder.Services.AddSingleton<IS3CredentialSource>(sp => sp.GetRequiredService<CredentialStore>());
        builder.Services.AddSingleton<ObjectStorageMeter>();
        builder.Services.AddSingleton<IObjectStorageMeter>(sp => sp.GetRequiredService<ObjectStorageMeter>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ObjectStorageMeter>());
        builder.Services.AddHostedService<CredentialKeyCheck>();
    }

    public static void MapObjectStorageManagement(this WebApplication app) => app.MapManagementRoutes();
}

/// <summary>
/// A replica whose key file does not open this database's secrets refuses to start, with one line,
/// rather than answer every signed request with an error.
/// </summary>
internal sealed class CredentialKeyCheck(CredentialSealer sealer) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => sealer.CheckAtStartupAsync(cancellationToken);
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
