using OpenPool.Engine.Accounts;
using OpenPool.Engine.Billing;
using OpenPool.Engine.Clusters;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Http;
using OpenPool.Engine.Jobs;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.OpenApi;
using OpenPool.Engine.Providers.Simulated;
using OpenPool.Engine.Requests;
using OpenPool.Engine.Storage;

try
{
    var builder = WebApplication.CreateBuilder(args);

    builder.AddEngineHosting();
    builder.Services.AddAccounts();
    builder.Services.AddBilling(builder.Configuration);
    builder.Services.AddRequests(builder.Configuration);
    builder.Services.AddClusters(builder.Configuration);
    builder.Services.AddStorage(builder.Configuration);
    builder.Services.AddJobs(builder.Configuration);
    builder.Services.AddSimulatedCloud(builder.Configuration);
    builder.AddObjectStorage();
    builder.Services.AddEngineOpenApi();

    var app = builder.Build();

    app.UseExpectContinueGuard();
    app.UseJsonErrors();
    app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15) });
    app.UseRouting();
    app.UseEngineAuth();
    app.UseIdempotencyKeys();

    app.MapAccounts();
    app.MapUsers();
    app.MapRequests();
    app.MapClusters();
    app.MapStorage();
    app.MapJobs();
    app.MapJobSockets();
    app.MapSimulated();
    app.MapObjectStorage();
    app.MapEngineOpenApi();

    await app.PrepareEngineAsync();
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (StartupFailure.Describe(ex) is { } problem)
{
    Console.Error.WriteLine($"openpool: {problem}");
    return 2;
}

/// <summary>Entry point; public so integration tests can host the engine in process.</summary>
public partial class Program;
