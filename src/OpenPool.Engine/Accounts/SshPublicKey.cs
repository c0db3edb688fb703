using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace OpenPool.Engine.Accounts;

/// <summary>
/// An OpenSSH public key line (<c>type base64 [comment]</c>) checked the way sshd would read it: the
/// blob decodes, names the same type as the line, carries well-formed key material of a sane size,
/// and nothing trails it. The fingerprint is OpenSSH's <c>SHA256:…</c> of the blob.
/// </summary>
internal sealed record SshPublicKey(string Type, string Blob, string? Comment, string Fingerprint)
{
    public string Line => Comment is null ? $"{Type} {Blob}" : $"{Type} {Blob} {Comment}";

    public static bool TryParse(string text, out SshPublicKey? key, out string error)
    {
        key = null;
        var parts = text.Trim().Split((char[]?)null, 3, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2)
        {
            error = "Not an OpenSSH public key: expected '<type> <base64> [comment]' (the contents of a .pub file)";
            return false;
        }
        var (type, encoded) = (parts[0], parts[1]);
        if (type.Contains("PRIVATE", StringComparison.OrdinalIgnoreCase) || text.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            error = "This is a private key. Send the public key (the .pub file) and keep the private key secret";
            return false;
        }
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(encoded);
        }
        catch (FormatException)
        {
            error = "The key data is not valid base64";
            return false;
        }
        var reader = new BlobReader(blob);
        if (!reader.TryReadString(out var blobType) || Encoding.ASCII.GetString(blobType) != type)
        {
            error = $"The key data does not match its declared type '{type}'";
            return false;
        }
        var valid = type switch
        {
            "ssh-ed25519" => reader.TryReadString(out var point) && point.Length == 32,
            "ssh-rsa" => reader.TryReadString(out var exponent) && exponent.Length is > 0 and <= 8 &&
                         reader.TryReadString(out var modulus) && ModulusBits(modulus) is >= 2048 and <= 16384,
            "ecdsa-sha2-nistp256" => ReadEcdsa(reader, "nistp256", 65),
            "ecdsa-sha2-nistp384" => ReadEcdsa(reader, "nistp384", 97),
            "ecdsa-sha2-nistp521" => ReadEcdsa(reader, "nistp521", 133),
            _ => false,
        };
        if (!valid || !reader.AtEnd)
        {
            error = type is "ssh-ed25519" or "ssh-rsa" or "ecdsa-sha2-nistp256" or "ecdsa-sha2-nistp384" or "ecdsa-sha2-nistp521"
                ? $"The {type} key data is malformed" + (type == "ssh-rsa" ? " (RSA keys must be 2048 bits or more)" : "")
                : $"Unsupported key type '{type}'. Use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521";
            return false;
        }
        var fingerprint = "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');
        key = new SshPublicKey(type, encoded, parts.Length > 2 ? parts[2].Trim() : null, fingerprint);
        error = "";
        return true;
    }

    private static bool ReadEcdsa(BlobReader reader, string curve, int pointLength) =>
        reader.TryReadString(out var name) && Encoding.ASCII.GetString(name) == curve &&
        reader.TryReadString(out var point) && point.Length == pointLength && point[0] == 0x04;

    private static int ModulusBits(byte[] mpint)
    {
        var span = mpint.AsSpan();
        while (span.Length > 0 && span[0] == 0)
            span = span[1..];
        return span.Length == 0 ? 0 : ((span.Length - 1) * 8) + (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)span[0]));
    }

    /// <summary>Reads SSH wire-format strings (uint32 length, then bytes).</summary>
    private sealed class BlobReader(byte[] blob)
    {
        private int _offset;

        public bool AtEnd => _offset == blob.Length;

        public bool TryReadString(out byte[] value)
        {
            value = [];
            if (blob.Length - _offset < 4)
                return false;
            var length = BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(_offset));
            if (length > blob.Length - _offset - 4)
                return false;
            value = blob.AsSpan(_offset + 4, (int)length).ToArray();
            _offset += 4 + (int)length;
            return true;
        }
    }
}
