namespace OpenPool.Engine.Providers.Simulated.Ssh;

internal static class SimulatedSshServices
{
    /// <summary>SSH logins into simulated nodes; options are the <c>Simulated:Ssh…</c> keys.</summary>
    public static void AddSimulatedSsh(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<SimulatedSshOptions>(configuration.GetSection("Simulated"));
        services.AddSingleton<NodeLogins>();
    }
}
