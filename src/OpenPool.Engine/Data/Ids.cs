using System.Security.Cryptography;

namespace OpenPool.Engine.Data;

/// <summary>Ids carry their kind as a prefix (req_, c-, i-, …) and enough randomness not to be guessed.</summary>
internal static class Ids
{
    private const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

    public static string Request() => "req_" + Random(20);
    public static string Cluster() => "c-" + Random(12);
    public static string Instance() => "i-" + Random(12);
    public static string User() => "u-" + Random(12);
    public static string Org() => "o-" + Random(12);
    public static string ApiKey() => "ak-" + Random(12);
    public static string SshKey() => "key_" + Random(12);
    public static string Volume() => "s-" + Random(12);

    public static string Random(int length) => RandomNumberGenerator.GetString(Alphabet, length);
}
