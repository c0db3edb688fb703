using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace OpenPool.Engine.Providers.Simulated.Ssh;

/// <summary>
/// Makes an ed25519 key pair from a seed, in OpenSSH's own file formats (<c>openssh-key-v1</c>,
/// unencrypted, and the <c>.pub</c> line), with the OpenSSL libcrypto that .NET itself loads on
/// Linux. A node's host key is known inside the claim: spawning ssh-keygen costs about 15 ms of a
/// busy 2-core host per node, which alone would hold claims below a hundred per second.
/// </summary>
internal static class Ed25519HostKey
{
    private const int NidEd25519 = 1087; // OpenSSL's NID_ED25519
    private const string KeyType = "ssh-ed25519";
    private const string Library = "libcrypto.so.3";
    private static bool _unavailable;

    /// <summary>
    /// The key pair whose private key is <paramref name="seed"/> (32 bytes): the same seed gives the
    /// same key, so a node's host key can be known (its fingerprint reported) before its file is
    /// written, and written later, by another engine process too. Null where libcrypto cannot.
    /// </summary>
    public static (string PrivateKey, string PublicKey)? FromSeed(ReadOnlySpan<byte> seed, string comment)
    {
        if (seed.Length != 32)
            throw new ArgumentException("an ed25519 seed is 32 bytes", nameof(seed));
        if (_unavailable)
            return null;
        var copy = seed.ToArray();
        var publicKey = new byte[32];
        try
        {
            var key = NewRawPrivateKey(NidEd25519, IntPtr.Zero, copy, 32);
            if (key == IntPtr.Zero)
                return null;
            try
            {
                nuint publicLength = 32;
                if (RawPublicKey(key, publicKey, ref publicLength) != 1 || publicLength != 32)
                    return null;
            }
            finally
            {
                FreeKey(key);
            }
            return (PrivateKeyFile(copy, publicKey, comment), PublicKeyLine(publicKey, comment));
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
            return null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(copy);
        }
    }

    private static string PublicKeyLine(byte[] publicKey, string comment) => $"{KeyType} {Convert.ToBase64String(PublicBlob(publicKey))} {comment}\n";

    private static byte[] PublicBlob(byte[] publicKey)
    {
        var blob = new MemoryStream();
        WriteString(blob, Encoding.ASCII.GetBytes(KeyType));
        WriteString(blob, publicKey);
        return blob.ToArray();
    }

    /// <summary>OpenSSH's PROTOCOL.key layout with cipher and KDF "none", wrapped in its PEM-like armour.</summary>
    private static string PrivateKeyFile(byte[] seed, byte[] publicKey, string comment)
    {
        var secret = new MemoryStream();
        // Two equal check words: a decryption with a wrong passphrase shows as a mismatch.
        var check = RandomNumberGenerator.GetBytes(4);
        secret.Write(check);
        secret.Write(check);
        WriteString(secret, Encoding.ASCII.GetBytes(KeyType));
        WriteString(secret, publicKey);
        WriteString(secret, [.. seed, .. publicKey]); // ed25519's "private key" is the seed followed by the public key
        WriteString(secret, Encoding.UTF8.GetBytes(comment));
        for (byte pad = 1; secret.Length % 8 != 0; pad++)
            secret.WriteByte(pad);

        var file = new MemoryStream();
        file.Write("openssh-key-v1\0"u8);
        WriteString(file, "none"u8.ToArray());
        WriteString(file, "none"u8.ToArray());
        WriteString(file, []);
        WriteUInt32(file, 1);
        WriteString(file, PublicBlob(publicKey));
        var secretBytes = secret.ToArray();
        WriteString(file, secretBytes);
        CryptographicOperations.ZeroMemory(secretBytes);

        var encoded = Convert.ToBase64String(file.ToArray());
        var text = new StringBuilder("-----BEGIN OPENSSH PRIVATE KEY-----\n");
        for (var at = 0; at < encoded.Length; at += 70)
            text.Append(encoded, at, Math.Min(70, encoded.Length - at)).Append('\n');
        return text.Append("-----END OPENSSH PRIVATE KEY-----\n").ToString();
    }

    private static void WriteString(Stream stream, byte[] bytes)
    {
        WriteUInt32(stream, (uint)bytes.Length);
        stream.Write(bytes);
    }

    private static void WriteUInt32(Stream stream, uint value)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, value);
        stream.Write(word);
    }

    [DllImport(Library, EntryPoint = "EVP_PKEY_new_raw_private_key")]
    private static extern IntPtr NewRawPrivateKey(int type, IntPtr engine, byte[] key, nuint length);

    [DllImport(Library, EntryPoint = "EVP_PKEY_get_raw_public_key")]
    private static extern int RawPublicKey(IntPtr key, byte[] buffer, ref nuint length);

    [DllImport(Library, EntryPoint = "EVP_PKEY_free")]
    private static extern void FreeKey(IntPtr key);
}
