using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Providers.Simulated;

internal static class SimulatedServices
{
    public static void AddSimulatedCloud(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<SimulatedOptions>(configuration.GetSection("Simulated"));
        services.AddSingleton<ICloudProvider, SimulatedCloud>();
    }
}
