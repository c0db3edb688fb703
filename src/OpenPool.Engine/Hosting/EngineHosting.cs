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
        var apiUrls = string.IsNullOrWhiteSpace(explicitUrls) ? EngineOptions.DefaultUrl : explicitUrls;
        // The API's addresses are Kestrel listeners set in code, beside the S3 endpoint's own
        // (ObjectStorage:Url): once there are any, Kestrel binds only those, and warns (category
        // Microsoft.AspNetCore.Server.Kestrel, whose other messages are errors) that it ignored the
        // urls setting, which it read before any of this ran. The warning is expected, so not shown.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Error);

        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        // The host logs a failed start (a port in use) as an error with its stack trace, before
        // Program prints the one line an operator needs. A background service that dies still shows:
        // stopping the host for it is logged as critical, with the exception.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("OpenPool", builder.Configuration.GetValue("Logging:LogLevel:OpenPool", LogLevel.Warning));

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = 1024 * 1024;
            foreach (var url in apiUrls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                ListenOn(kestrel, url);
            kestrel.AddServerHeader = false;
        });
        builder.Services.ConfigureHttpJsonOptions(json => ApiJson.Configure(json.SerializerOptions));

        var options = EngineOptions.From(builder.Configuration);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(_ =>
        {
            DataDirectory.Secure(options); // before SQLite creates a file there
            return options.PostgresConnectionString is { } postgres ? Database.Postgres(postgres) : Database.Sqlite(options.DatabasePath!);
        });
    }

    /// <summary>A <c>--urls</c> entry as Kestrel reads one: http(s)://host:port with localhost, *, + or an IP.</summary>
    private static void ListenOn(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, string url)
    {
        var address = BindingAddress.Parse(url);
        var https = address.Scheme.Equals("https", StringComparison.OrdinalIgnoreCase);
        Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> configure = listen =>
        {
            if (https)
                listen.UseHttps();
        };
        if (address.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            kestrel.ListenLocalhost(address.Port, configure);
        else if (System.Net.IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip))
            kestrel.Listen(ip, address.Port, configure);
        else
            kestrel.ListenAnyIP(address.Port, configure);
    }

    public static void AddAccounts(this IServiceCollection services)
    {
        services.AddSingleton<AccountStore>();
        services.AddEngineAuthentication();
        services.AddSingleton<SshKeyStore>();
        services.AddSingleton<Idempotency>();
        services.AddSingleton<AdminBootstrap>();
        services.AddHostedService(sp => sp.GetRequiredService<AdminBootstrap>());
    }

    /// <summary>Migrates the database and says, once the engine listens, where and with which admin key.</summary>
    public static async Task PrepareEngineAsync(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<EngineOptions>();
        var db = app.Services.GetRequiredService<Database>();
        await Migrator.MigrateAsync(db, app.Services.GetRequiredService<TimeProvider>());
        var bootstrap = app.Services.GetRequiredService<AdminBootstrap>();

        // The "listening on" lines come last: whoever waits for them (scripts, tests) has by then
        // seen everything printed before, the one-time admin key included.
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            Console.WriteLine($"Data directory: {options.DataDir}; database: {options.DatabaseDescription}");
            if (bootstrap.CreatedKey is { } adminKey)
            {
                Console.WriteLine($"Created the operator account {Bootstrap.AdminEmail}. Its admin API key (shown once) is:");
                Console.WriteLine($"  {adminKey}");
            }
            Console.WriteLine($"Admin key file: {options.AdminKeyPath}");
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            var s3 = app.Services.GetService<ObjectStorage.S3.S3EndpointAddress>();
            s3?.Bound();
            if (s3?.BoundUrl is { } s3Url)
                Console.WriteLine($"OpenPool S3 endpoint listening on {s3Url}");
            foreach (var address in addresses)
            {
                // The S3 endpoint's listener says so itself (ObjectStorage/S3/S3Services.cs).
                if (s3 is { Port: > 0 } && BindingAddress.Parse(address).Port == s3.Port)
                    continue;
                Console.WriteLine($"OpenPool engine listening on {address}");
            }
        });
    }
}

/// <summary>
/// Creates the operator account on a fresh database, but only once the server has bound its
/// addresses (hosted services' StartedAsync runs after the server started, before ApplicationStarted):
/// an engine that cannot listen (port in use) must not leave an account and an admin.key behind
/// whose key it never showed.
/// </summary>
internal sealed class AdminBootstrap(AccountStore accounts, EngineOptions options) : IHostedLifecycleService
{
    public string? CreatedKey { get; private set; }

    public async Task StartedAsync(CancellationToken cancellationToken) =>
        CreatedKey = await Bootstrap.EnsureAdminAsync(accounts, options, cancellationToken);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
