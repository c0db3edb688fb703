using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using OpenPool.Engine.ObjectStorage;
using OpenPool.Engine.ObjectStorage.S3;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// A real Kestrel on loopback with only the SigV4 scheme in front of one catch-all endpoint: PUT
/// keeps the decoded body in memory, GET returns it, and every request is recorded (the decoded
/// body's SHA-256, trailers, claims) so tests can check what the handler let through.
/// </summary>
internal sealed class SigV4TestHost : IAsyncDisposable
{
    public const string AccessKey = "AKIDOPENPOOLTEST0001";
    public const string SecretKey = "s3cr3t/Key+With=Odd/Chars0123456789abcd";
    public const string ScopeId = "org-sigv4";

    private readonly WebApplication _app;

    public sealed record Seen(
        string Method, string Path, string ContentSha256, string? DecodedSha256, long DecodedLength,
        IReadOnlyDictionary<string, string> Trailers, string? ScopeId, string? AccessKeyId, string? ContentEncoding,
        long? ContentLength, S3Exception? Error);

    private SigV4TestHost(WebApplication app, FakeTimeProvider clock)
    {
        _app = app;
        Clock = clock;
    }

    public FakeTimeProvider Clock { get; }

    public string Url { get; private set; } = "";

    public ConcurrentQueue<Seen> Requests { get; } = new();

    public ConcurrentDictionary<string, byte[]> Objects { get; } = new();

    /// <summary>The access key of AWS's published SigV4 examples.</summary>
    public const string ExampleAccessKey = "AKIAIOSFODNN7EXAMPLE";
    public const string ExampleSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    public static async Task<SigV4TestHost> StartAsync(string region = "us-east-1", DateTimeOffset? now = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var clock = new FakeTimeProvider(now ?? DateTimeOffset.UtcNow);
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.Configure<ObjectStorageOptions>(o => o.Region = region);
        builder.Services.AddSingleton<IS3CredentialSource>(new Credentials());
        builder.AddSigV4Authentication();
        builder.Services.AddAuthorization();
        var app = builder.Build();
        var host = new SigV4TestHost(app, clock);
        app.UseAuthentication();
        app.UseAuthorization();
        app.Map("/{**path}", host.HandleAsync)
            .RequireAuthorization(p => p.AddAuthenticationSchemes(S3Claims.Scheme).RequireAuthenticatedUser());
        await app.StartAsync();
        host.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return host;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var payload = context.Features.Get<IS3PayloadFeature>();
        var scope = context.User.FindFirst(S3Claims.ScopeId)?.Value;
        var akid = context.User.FindFirst(S3Claims.AccessKeyId)?.Value;
        var path = context.Request.Path.Value ?? "/";
        var encoding = context.Request.Headers.ContentEncoding.ToString();
        var contentLength = context.Request.ContentLength;
        using var body = new MemoryStream();
        try
        {
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        }
        catch (S3Exception e)
        {
            Requests.Enqueue(new Seen(context.Request.Method, path, payload?.ContentSha256 ?? "", null, body.Length,
                new Dictionary<string, string>(payload?.Trailers ?? new Dictionary<string, string>()), scope, akid, encoding, contentLength, e));
            await S3ErrorXml.WriteAsync(context, e);
            return;
        }
        var bytes = body.ToArray();
        Requests.Enqueue(new Seen(context.Request.Method, path, payload?.ContentSha256 ?? "",
            Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes.Length,
            new Dictionary<string, string>(payload?.Trailers ?? new Dictionary<string, string>()), scope, akid, encoding, contentLength, null));

        if (HttpMethods.IsPut(context.Request.Method))
        {
            Objects[path] = bytes;
            context.Response.Headers.ETag = "\"" + ETag(bytes) + "\"";
            return;
        }
        if (HttpMethods.IsGet(context.Request.Method) && Objects.TryGetValue(path, out var stored))
        {
            context.Response.ContentType = "application/octet-stream";
            context.Response.Headers.ETag = "\"" + ETag(stored) + "\"";
            context.Response.ContentLength = stored.Length;
            await context.Response.Body.WriteAsync(stored, context.RequestAborted);
            return;
        }
        if (HttpMethods.IsGet(context.Request.Method))
            await S3ErrorXml.WriteAsync(context, new S3Exception(404, "NoSuchKey", "The specified key does not exist."));
    }

    // S3's ETag is the MD5 of the object; clients compare it, so the host answers the real one.
#pragma warning disable CA5351
    private static string ETag(byte[] bytes) => Convert.ToHexStringLower(MD5.HashData(bytes));
#pragma warning restore CA5351

    public Seen Last() => Requests.Last();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class Credentials : IS3CredentialSource
    {
        public Task<S3Credential?> FindAsync(string accessKeyId, CancellationToken ct) =>
            Task.FromResult(accessKeyId switch
            {
                AccessKey => new S3Credential(AccessKey, SecretKey, ScopeId),
                ExampleAccessKey => new S3Credential(ExampleAccessKey, ExampleSecretKey, "org-example"),
                _ => null,
            });
    }
}
