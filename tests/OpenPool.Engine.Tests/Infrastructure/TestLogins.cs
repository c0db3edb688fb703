using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Data;
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
    public static NodeLogins Off(NodeSandbox sandbox, NodeFiles files, IOptions<JobsOptions> jobs, EngineOptions engine) =>
        new(Options.Create(new SimulatedSshOptions { Sshd = "/nonexistent/sshd" }), sandbox, files, jobs, engine, NullLogger<NodeLogins>.Instance);

    /// <summary>A simulated cloud as the engine builds it, with logins off (see <see cref="Off"/>).</summary>
    public static SimulatedCloud Cloud(Database db, SimulatedOptions simulated, EngineOptions engine, TimeProvider clock)
    {
        var jobs = Options.Create(new JobsOptions());
        var sandbox = new NodeSandbox(engine, jobs);
        var files = new NodeFiles(db, new InstanceCatalog(InstanceCatalog.Defaults(), 16), engine);
        return new SimulatedCloud(db, Options.Create(simulated), engine, clock, sandbox, jobs, Off(sandbox, files, jobs, engine), files);
    }
}
