using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Requests;

internal static class RequestsServices
{
    public static void AddRequests(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<RequestOptions>(configuration.GetSection("Requests"));
        services.AddSingleton<RequestStore>();
        services.AddSingleton<RequestSignals>();
        services.AddHostedService<PostgresChangeFeed>();
        services.AddSingleton<RequestWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<RequestWorker>());
        services.AddSingleton<RetentionSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<RetentionSweeper>());
    }
}
