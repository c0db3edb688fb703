using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using OpenPool.Engine.Accounts;
using OpenPool.Engine.Data;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.Hosting;

internal static class EngineHosting
{
    /// <summary>Defaults for running by hand: loopback port 8000, quiet request logging, the wire's JSON.</summary>
    public static void AddEngineHosting(this WebApplicationBuilder builder)
    {
        var explicitUrls = builder.Configuration["urls"] ?? builder.Configuration["ASPNETCORE_URLS"];
        if (string.IsNullOrWhiteSpace(explicitUrls))
            builder.WebHost.UseUrls(EngineOptions.DefaultUrl);

        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("OpenPool", builder.Configuration.GetValue("Logging:LogLevel:OpenPool", LogLevel.Warning));

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = 1024 * 1024;
            kestrel.AddServerHeader = false;
        });
        builder.Services.ConfigureHttpJsonOptions(json => ApiJson.Configure(json.SerializerOptions));

        var options = EngineOptions.From(builder.Configuration);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(_ =>
        {
            Directory.CreateDirectory(options.DataDir);
            if (options.PostgresConnectionString is { } postgres)
                return Database.Postgres(postgres);
            Directory.CreateDirectory(Path.GetDirectoryName(options.DatabasePath)!);
            return Database.Sqlite(options.DatabasePath!);
        });
    }

    public static void AddAccounts(this IServiceCollection services)
    {
        services.AddSingleton<AccountStore>();
        services.AddSingleton<SshKeyStore>();
        services.AddSingleton<Idempotency>();
    }

    /// <summary>Migrates the database, creates the first admin, and says where the engine listens.</summary>
    public static async Task PrepareEngineAsync(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<EngineOptions>();
        var db = app.Services.GetRequiredService<Database>();
        await Migrator.MigrateAsync(db, app.Services.GetRequiredService<TimeProvider>());
        var adminKey = await Bootstrap.EnsureAdminAsync(app.Services.GetRequiredService<AccountStore>(), options, CancellationToken.None);

        // The "listening on" lines come last: whoever waits for them (scripts, tests) has by then
        // seen everything printed before, the one-time admin key included.
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            Console.WriteLine($"Data directory: {options.DataDir}; database: {options.DatabaseDescription}");
            if (adminKey is not null)
            {
                Console.WriteLine($"Created the operator account {Bootstrap.AdminEmail}. Its admin API key (shown once) is:");
                Console.WriteLine($"  {adminKey}");
            }
            Console.WriteLine($"Admin key file: {options.AdminKeyPath}");
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            foreach (var address in addresses)
                Console.WriteLine($"OpenPool engine listening on {address}");
        });
    }
}
