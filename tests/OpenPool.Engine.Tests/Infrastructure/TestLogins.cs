using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Jobs;
using OpenPool.Engine.Providers.Simulated;
using OpenPool.Engine.Providers.Simulated.Ssh;

namespace OpenPool.Engine.Tests.Infrastructure;

internal static class TestLogins
{
    /// <summary>
    /// Node logins that are off (no sshd where they look): for tests that build the simulated cloud by
    /// hand over many nodes, which must not bind ports or make host keys they never release.
    /// </summary>
    public static NodeLogins Off(NodeSandbox sandbox, IOptions<JobsOptions> jobs, EngineOptions engine) =>
        new(Options.Create(new SimulatedSshOptions { Sshd = "/nonexistent/sshd" }), sandbox, jobs, engine, NullLogger<NodeLogins>.Instance);
}
