using OpenPool.Engine.Requests;

namespace OpenPool.Engine.Clusters;

internal static class ClustersServices
{
    public static void AddClusters(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(InstanceCatalog.From(configuration));
        services.AddSingleton<ClusterStore>();
        services.AddSingleton<IRequestHandler, ClaimHandler>();
        services.AddSingleton<IRequestHandler, ReleaseHandler>();
        services.AddSingleton<IRequestHandler, EditHandler>();
    }
}
