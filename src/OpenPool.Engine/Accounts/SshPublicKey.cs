using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace OpenPool.Engine.Accounts;

/// <summary>
/// An OpenSSH public key line (<c>type base64 [comment]</c>) checked the way sshd would read it: one
/// line, the blob decodes, names the same type as the line, carries well-formed key material (or a
/// well-formed certificate) of a sane size, and nothing trails it. The line goes into authorized_keys
/// and the comment into tables, so no control characters anywhere. The fingerprint is OpenSSH's
/// <c>SHA256:…</c>.
/// </summary>
internal sealed partial record SshPublicKey(string Type, string Blob, string? Comment, string Fingerprint)
{
    public string Line => Comment is null ? $"{Type} {Blob}" : $"{Type} {Blob} {Comment}";

    /// <summary>Every key type OpenSSH's sshd accepts in authorized_keys (DSA is gone from OpenSSH).</summary>
    private static readonly string[] PlainTypes =
    [
        "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    ];

    private const string CertSuffix = "-cert-v01@openssh.com";

    private static readonly string[] CertificateTypes =
        [.. PlainTypes.Select(t => t.EndsWith("@openssh.com", StringComparison.Ordinal) ? t.Replace("@openssh.com", CertSuffix, StringComparison.Ordinal) : t + CertSuffix)];

    private static bool IsKnownType(string type) => PlainTypes.Contains(type) || CertificateTypes.Contains(type);

    public static bool TryParse(string text, out SshPublicKey? key, out string error)
    {
        key = null;
        if (text.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            error = "This is a private key. Send the public key (the .pub file) and keep the private key secret";
            return false;
        }
        // A .pub file read as it is ends with a newline; anything else on another line is another key,
        // which would become another line of authorized_keys, so one entry holds exactly one key.
        var line = text.Trim(' ', '\t', '\r', '\n');
        if (line.Contains('\n') || line.Contains('\r'))
        {
            error = "Only one key per entry: this text has several lines. Add each key separately";
            return false;
        }
        if (line.Any(char.IsControl))
        {
            error = "The key line contains control characters";
            return false;
        }
        var parts = line.Split([' ', '\t'], 3, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2)
        {
            error = "Not an OpenSSH public key: expected '<type> <base64> [comment]' (the contents of a .pub file)";
            return false;
        }
        var (type, encoded) = (parts[0], parts[1]);
        if (!IsKnownType(type))
        {
            error = KeyAfterOptions().IsMatch(line)
                ? "authorized_keys options (such as no-pty or command=\"…\") are not supported: send only '<type> <base64> [comment]'"
                : $"Unsupported key type '{type}'. Use {string.Join(", ", PlainTypes)} or their -cert-v01@openssh.com certificates";
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
        byte[]? plainBlob = null;
        var valid = type.EndsWith(CertSuffix, StringComparison.Ordinal)
            ? ReadCertificate(reader, type, out plainBlob)
            : ReadKey(reader, type);
        if (!valid || !reader.AtEnd)
        {
            error = $"The {type} key data is malformed" + (type.StartsWith("ssh-rsa", StringComparison.Ordinal) ? " (RSA keys must be 2048 bits or more)" : "");
            return false;
        }
        // OpenSSH fingerprints a certificate by the key it certifies (ssh-keygen -lf).
        var fingerprint = "SHA256:" + Convert.ToBase64String(SHA256.HashData(plainBlob ?? blob)).TrimEnd('=');
        key = new SshPublicKey(type, encoded, parts.Length > 2 ? parts[2].Trim() : null, fingerprint);
        error = "";
        return true;
    }

    /// <summary>The key material that follows the type string, per type, as sshd's sshkey_from_blob reads it.</summary>
    private static bool ReadKey(BlobReader reader, string type) =>
        type switch
        {
            "ssh-ed25519" => reader.TryReadString(out var point) && point.Length == 32,
            "ssh-rsa" => reader.TryReadString(out var exponent) && exponent.Length is > 0 and <= 8 &&
                         reader.TryReadString(out var modulus) && ModulusBits(modulus) is >= 2048 and <= 16384,
            "ecdsa-sha2-nistp256" => ReadEcdsa(reader, "nistp256", 65),
            "ecdsa-sha2-nistp384" => ReadEcdsa(reader, "nistp384", 97),
            "ecdsa-sha2-nistp521" => ReadEcdsa(reader, "nistp521", 133),
            // Security keys add the FIDO application (usually "ssh:") the key is bound to.
            "sk-ssh-ed25519@openssh.com" => reader.TryReadString(out var skPoint) && skPoint.Length == 32 && ReadApplication(reader),
            "sk-ecdsa-sha2-nistp256@openssh.com" => ReadEcdsa(reader, "nistp256", 65) && ReadApplication(reader),
            _ => false,
        };

    /// <summary>
    /// An OpenSSH certificate (PROTOCOL.certkeys): nonce, the certified key's fields, then serial, type,
    /// key id, principals, validity, options, extensions, reserved, the CA key and its signature.
    /// <paramref name="plainBlob"/> is the certified key as a plain key blob, for its fingerprint.
    /// </summary>
    private static bool ReadCertificate(BlobReader reader, string type, out byte[]? plainBlob)
    {
        plainBlob = null;
        var plainType = type.Replace(CertSuffix, type.StartsWith("sk-", StringComparison.Ordinal) ? "@openssh.com" : "", StringComparison.Ordinal);
        if (!reader.TryReadString(out _)) // nonce
            return false;
        var keyStart = reader.Offset;
        if (!ReadKey(reader, plainType))
            return false;
        var keyFields = reader.Slice(keyStart, reader.Offset - keyStart);
        var valid = reader.TryReadUInt64(out _) && reader.TryReadUInt32(out var certType) && certType is 1 or 2 &&
                    reader.TryReadString(out _) && reader.TryReadString(out _) &&   // key id, principals
                    reader.TryReadUInt64(out _) && reader.TryReadUInt64(out _) &&   // valid after, valid before
                    reader.TryReadString(out _) && reader.TryReadString(out _) && reader.TryReadString(out _) && // options, extensions, reserved
                    reader.TryReadString(out var caKey) && caKey.Length > 0 && reader.TryReadString(out var signature) && signature.Length > 0;
        if (!valid)
            return false;
        var typeBytes = Encoding.ASCII.GetBytes(plainType);
        plainBlob = new byte[4 + typeBytes.Length + keyFields.Length];
        BinaryPrimitives.WriteUInt32BigEndian(plainBlob, (uint)typeBytes.Length);
        typeBytes.CopyTo(plainBlob, 4);
        keyFields.CopyTo(plainBlob, 4 + typeBytes.Length);
        return true;
    }

    private static bool ReadApplication(BlobReader reader) =>
        reader.TryReadString(out var application) && application.Length is > 0 and <= 256;

    // "no-pty ssh-ed25519 AAAA…", "command="x y" ssh-rsa AAAA…": a key type after some other text.
    [GeneratedRegex(@"^\S.*?[\s,""](ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+\s+AAAA")]
    private static partial Regex KeyAfterOptions();

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

        public int Offset => _offset;

        public byte[] Slice(int start, int length) => blob.AsSpan(start, length).ToArray();

        public bool TryReadUInt32(out uint value)
        {
            value = 0;
            if (blob.Length - _offset < 4)
                return false;
            value = BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(_offset));
            _offset += 4;
            return true;
        }

        public bool TryReadUInt64(out ulong value)
        {
            value = 0;
            if (blob.Length - _offset < 8)
                return false;
            value = BinaryPrimitives.ReadUInt64BigEndian(blob.AsSpan(_offset));
            _offset += 8;
            return true;
        }

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
