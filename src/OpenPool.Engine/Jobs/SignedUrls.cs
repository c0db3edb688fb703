using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Jobs;

/// <summary>
/// Links a client can use without its key (the project upload, pull's downloads): the path and an
/// expiry signed with a secret every replica shares (kept in the database), checked in constant time.
/// A link is good for at most its purpose's configured lifetime from now, whatever expiry it carries:
/// one signed with a longer life (a bug, a leaked signing path, a lifetime the operator has since
/// shortened) is refused rather than trusted until its far-off date.
/// </summary>
internal sealed class SignedUrls(Database db, TimeProvider clock, IOptions<JobsOptions> options)
{
    public const string Upload = "upload";
    public const string Download = "download";

    // Replicas' clocks may differ a little; a link made on one must still work on another.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    private byte[]? _secret;

    public async Task<string> SignAsync(string purpose, string subject, TimeSpan lifetime)
    {
        if (MaxLifetime(purpose) is not { } max || lifetime > max)
            throw new ArgumentOutOfRangeException(nameof(lifetime), $"A {purpose} link lives at most its configured lifetime.");
        var expires = clock.GetUtcNow().Add(lifetime).ToUnixTimeSeconds();
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(await SecretAsync(), Encoding.UTF8.GetBytes($"{purpose}\n{subject}\n{expires}")));
        return $"expires={expires}&sig={signature}";
    }

    public async Task<bool> VerifyAsync(string purpose, string subject, string? expires, string? signature)
    {
        var now = clock.GetUtcNow();
        if (MaxLifetime(purpose) is not { } max)
            return false;
        if (!long.TryParse(expires, NumberStyles.None, CultureInfo.InvariantCulture, out var expiresAt) || signature is null
            || expiresAt < now.ToUnixTimeSeconds()
            || expiresAt > now.Add(max + ClockSkew).ToUnixTimeSeconds())
            return false;
        var expected = HMACSHA256.HashData(await SecretAsync(), Encoding.UTF8.GetBytes($"{purpose}\n{subject}\n{expiresAt}"));
        byte[] given;
        try
        {
            given = Convert.FromHexString(signature);
        }
        catch (FormatException)
        {
            return false;
        }
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }

    /// <summary>The configured lifetime of a purpose's links; an unknown purpose gets none, so nothing verifies.</summary>
    private TimeSpan? MaxLifetime(string purpose) => purpose switch
    {
        Upload => TimeSpan.FromMinutes(options.Value.UploadUrlMinutes),
        Download => TimeSpan.FromMinutes(options.Value.DownloadUrlMinutes),
        _ => null,
    };

    private async Task<byte[]> SecretAsync()
    {
        if (_secret is not null)
            return _secret;
        var candidate = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var stored = await db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO engine_settings (name, value) VALUES ('url_signing_key', @candidate) ON CONFLICT DO NOTHING", new { candidate }, t);
            return await c.ExecuteScalarAsync<string>("SELECT value FROM engine_settings WHERE name = 'url_signing_key'", transaction: t);
        });
        return _secret = Convert.FromHexString(stored!);
    }
}
