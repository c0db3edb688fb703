using System.Net;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using OpenPool.Engine.Data;
using OpenPool.Engine.Jobs;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>
/// Signed links are good for their purpose's configured lifetime from now at most. The links here
/// are signed with the engine's real secret (as someone who learned to sign would), for a job that
/// does not exist: a link that passes verification answers 404, one refused answers 403.
/// </summary>
public abstract class SignedUrlTests(Backend backend) : IDisposable
{
    private readonly EngineFactory _engine = new(backend, new() { ["Jobs:UploadUrlMinutes"] = "15", ["Jobs:DownloadUrlMinutes"] = "60" });

    public void Dispose() => _engine.Dispose();

    [Fact]
    public async Task A_link_the_engine_made_verifies()
    {
        var urls = _engine.Services.GetRequiredService<SignedUrls>();
        var query = await urls.SignAsync(SignedUrls.Download, "j-none/out.txt", TimeSpan.FromMinutes(60));
        var response = await _engine.CreateClient().GetAsync($"/job/download/j-none?path=out.txt&{query}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData("download", 61)]
    [InlineData("download", 60 * 24 * 365 * 100)]
    [InlineData("upload", 16)]
    [InlineData("upload", 60)]
    public async Task A_validly_signed_link_expiring_beyond_its_lifetime_is_refused(string purpose, int minutes)
    {
        var expires = DateTimeOffset.UtcNow.AddMinutes(minutes).ToUnixTimeSeconds();
        var path = purpose == SignedUrls.Download ? "/job/download/j-none?path=out.txt&" : "/job/upload/j-none?";
        var subject = purpose == SignedUrls.Download ? "j-none/out.txt" : "j-none";
        var signature = await ForgeAsync(purpose, subject, expires);

        using var request = new HttpRequestMessage(purpose == SignedUrls.Download ? HttpMethod.Get : HttpMethod.Put, $"{path}expires={expires}&sig={signature}")
        {
            Content = purpose == SignedUrls.Upload ? new ByteArrayContent([1, 2, 3]) : null,
        };
        var response = await _engine.CreateClient().SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("forbidden", (await response.Json()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_same_forgery_within_the_lifetime_would_pass_so_the_refusals_are_about_the_expiry()
    {
        var expires = DateTimeOffset.UtcNow.AddMinutes(59).ToUnixTimeSeconds();
        var signature = await ForgeAsync(SignedUrls.Download, "j-none/out.txt", expires);
        var response = await _engine.CreateClient().GetAsync($"/job/download/j-none?path=out.txt&expires={expires}&sig={signature}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    /// <summary>A signature made with the secret from the engine's database, for any expiry.</summary>
    private async Task<string> ForgeAsync(string purpose, string subject, long expires)
    {
        var urls = _engine.Services.GetRequiredService<SignedUrls>();
        await urls.SignAsync(SignedUrls.Upload, "j-warmup", TimeSpan.FromMinutes(1)); // the secret exists once a link was made
        var db = _engine.Services.GetRequiredService<Database>();
        var secret = await db.ReadAsync(c => c.ExecuteScalarAsync<string>("SELECT value FROM engine_settings WHERE name = 'url_signing_key'"));
        return Convert.ToHexStringLower(HMACSHA256.HashData(Convert.FromHexString(secret!), Encoding.UTF8.GetBytes($"{purpose}\n{subject}\n{expires}")));
    }
}

public sealed class SignedUrlsOnSqlite() : SignedUrlTests(Backend.Sqlite);

public sealed class SignedUrlsOnPostgres() : SignedUrlTests(Backend.Postgres);
