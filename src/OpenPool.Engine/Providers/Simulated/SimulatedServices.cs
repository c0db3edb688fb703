using OpenPool.Engine.Hosting;
using OpenPool.Engine.Providers.Simulated.Ssh;

namespace OpenPool.Engine.Providers.Simulated;

internal static class SimulatedServices
{
    public static void AddSimulatedCloud(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<SimulatedOptions>(configuration.GetSection("Simulated"));
        services.AddSingleton<NodeSandbox>();
        services.AddSingleton<NodeFiles>();
        services.AddSimulatedSsh(configuration);
        services.AddSingleton<SimulatedCloud>();
        services.AddSingleton<ICloudProvider>(sp => sp.GetRequiredService<SimulatedCloud>());
        services.AddHostedService<SimulatedNodesStartup>();
    }
}

/// <summary>At start: says once how jobs are confined and whether nodes take SSH logins, clears what a crash left of uploads, and listens again for running nodes.</summary>
internal sealed class SimulatedNodesStartup(SimulatedCloud cloud, NodeSandbox sandbox, NodeLogins logins) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        cloud.RemoveInterruptedUploads();
        NodeSandbox.CloseInheritedDescriptorsOnExec();
        if (sandbox.Mode == Jobs.SandboxMode.None)
            Console.WriteLine("Job sandbox: none (Jobs:Sandbox=None): jobs run as the engine's user and can read its files; use this only on a single-user machine.");
        else if (sandbox.Problem is { } problem)
            Console.WriteLine($"Job sandbox: unavailable, {problem}; only the operator can push jobs until it is fixed (or set Jobs:Sandbox=None on a single-user machine).");
        if (logins.Problem is { } sshProblem)
            Console.WriteLine($"SSH: unavailable, {sshProblem}; GET /ssh says so until it is fixed.");
        else
            await cloud.ReopenLoginsAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
