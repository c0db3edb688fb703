using System.IO.Hashing;
using System.Security.Cryptography;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>The checksums S3 accepts beside Content-MD5 (x-amz-checksum-*), as incremental hashes.</summary>
internal static class Checksums
{
    public static readonly string[] Algorithms = ["CRC32", "CRC32C", "SHA1", "SHA256"];

    public static string HeaderOf(string algorithm) => "x-amz-checksum-" + algorithm.ToLowerInvariant();

    public static string? Normalize(string? algorithm) =>
        algorithm is null ? null : Algorithms.FirstOrDefault(a => a.Equals(algorithm, StringComparison.OrdinalIgnoreCase));

    public static IChecksum Create(string algorithm) => algorithm switch
    {
        "CRC32" => new NonCrypto(new Crc32()),
        "CRC32C" => new NonCrypto(new Crc32(Crc32ParameterSet.Crc32C)),
        "SHA1" => new Crypto(IncrementalHash.CreateHash(HashAlgorithmName.SHA1)),
        "SHA256" => new Crypto(IncrementalHash.CreateHash(HashAlgorithmName.SHA256)),
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm)),
    };

    internal interface IChecksum
    {
        void Append(ReadOnlySpan<byte> data);
        byte[] Final();
    }

    // CRCs go on the wire big-endian (S3 base64-encodes the 32-bit value in network order);
    // System.IO.Hashing emits them little-endian.
    private sealed class NonCrypto(NonCryptographicHashAlgorithm hash) : IChecksum
    {
        public void Append(ReadOnlySpan<byte> data) => hash.Append(data);

        public byte[] Final()
        {
            var bytes = hash.GetCurrentHash();
            Array.Reverse(bytes);
            return bytes;
        }
    }

    private sealed class Crypto(IncrementalHash hash) : IChecksum
    {
        public void Append(ReadOnlySpan<byte> data) => hash.AppendData(data);
        public byte[] Final() => hash.GetHashAndReset();
    }
}
