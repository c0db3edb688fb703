using System.Security.Cryptography;
using System.Text;
using Dapper;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.Jobs;

/// <summary>
/// Links a client can use without its key (the project upload, pull's downloads): the path and an
/// expiry signed with a secret every replica shares (kept in the database), checked in constant time.
/// </summary>
internal sealed class SignedUrls(Database db, TimeProvider clock)
{
    private byte[]? _secret;

    public async Task<string> SignAsync(string purpose, string subject, TimeSpan lifetime)
    {
        var expires = clock.GetUtcNow().Add(lifetime).ToUnixTimeSeconds();
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(await SecretAsync(), Encoding.UTF8.GetBytes($"{purpose}\n{subject}\n{expires}")));
        return $"expires={expires}&sig={signature}";
    }

    public async Task<bool> VerifyAsync(string purpose, string subject, string? expires, string? signature)
    {
        if (!long.TryParse(expires, out var expiresAt) || signature is null || expiresAt < clock.GetUtcNow().ToUnixTimeSeconds())
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
