using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Http;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.ObjectStorage.Blobs;

namespace OpenPool.Engine.ObjectStorage.S3;

internal static class S3Services
{
    public static void AddS3Endpoint(this WebApplicationBuilder builder)
    {
        var address = new S3EndpointAddress();
        builder.Services.AddSingleton(address);
        builder.Services.AddSingleton<IBucketCatalog, BucketCatalog>();
        builder.Services.AddSingleton<ObjectStore>();
        builder.Services.AddSingleton<S3Endpoint>();
        builder.Services.AddSingleton<MultipartStore>();
        builder.Services.TryAddSingleton<IBlobStore>(sp =>
        {
            var root = sp.GetRequiredService<IOptions<ObjectStorageOptions>>().Value.Root;
            return new FileSystemBlobStore(string.IsNullOrWhiteSpace(root) ? Path.Combine(sp.GetRequiredService<EngineOptions>().DataDir, "objects") : root);
        });
        builder.Services.AddSingleton<MatcherPolicy, S3ListenerPolicy>();
        builder.Services.AddHostedService<S3Sweeper>();

        var url = builder.Configuration["ObjectStorage:Url"];
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            address.Listen(kestrel, string.IsNullOrWhiteSpace(url) ? ObjectStorageOptions.DefaultUrl : url);
            // A presigned link's response-content-disposition often names a file in UTF-8 (S3 sends it
            // so); Kestrel refuses non-ASCII header values unless told an encoding. No other header
            // of the engine's carries text a user chose, so only this one is widened.
            kestrel.ResponseHeaderEncodingSelector = name =>
                string.Equals(name, "Content-Disposition", StringComparison.OrdinalIgnoreCase) ? System.Text.Encoding.UTF8 : null;
        });
    }

    public static void MapS3Endpoint(this WebApplication app)
    {
        var address = app.Services.GetRequiredService<S3EndpointAddress>();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            address.Bound();
            // With port 0 the configured URL is not where clients can reach the endpoint: the
            // options' Url becomes the bound one, so EndpointForClients (credentials, configure
            // commands) tells the truth when no PublicUrl is set.
            var options = app.Services.GetRequiredService<IOptions<ObjectStorageOptions>>().Value;
            if (address.BoundUrl is { } bound)
                options.Url = bound; // Hosting/EngineHosting.cs prints it, before the API's line that starters wait for
        });
        var endpoint = app.Services.GetRequiredService<S3Endpoint>();
        app.Map("/{**path}", (HttpContext context) => endpoint.HandleAsync(context))
            .WithMetadata(S3EndpointMetadata.Instance)
            .WithErrorFormat(S3ErrorFormat.Instance)
            .WithoutIdempotencyKeys()
            .RequireAuthorization(policy => policy.AddAuthenticationSchemes(S3Claims.Scheme).RequireAuthenticatedUser().RequireClaim(S3Claims.ScopeId))
            // Uploads stream up to 5 GiB (PutObject, UploadPart); every other body the endpoint reads is bounded where it is read.
            .DisableRequestSizeLimit()
            .ExcludeFromDescription();
    }
}
