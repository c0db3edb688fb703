using System.Security.Cryptography;
using System.Text;

namespace OpenPool.Engine.Accounts;

/// <summary>
/// API keys are <c>tpk_</c> + 32 random bytes. Only a SHA-256 of a key is stored: a key has 256 bits
/// of entropy, so a fast hash is enough (no password stretching needed) and lookups stay cheap.
/// </summary>
internal static class ApiKeys
{
    public const string Prefix = "tpk_";

    public static string NewKey() =>
        Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Constant-time comparison of two hex hashes, so timing says nothing about a near miss.</summary>
    public static bool HashesEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    /// <summary>What may be shown of a key later: enough to recognise it, too little to use it.</summary>
    public static string Display(string key) => key[..Math.Min(key.Length, 10)] + "…";
}
