using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using OpenPool.Engine.Data;
using OpenPool.Engine.Hosting;
using OpenPool.Engine.Http;

namespace OpenPool.Engine.ObjectStorage.Management;

/// <summary>
/// Seals S3 secrets for the database. SigV4 needs the secret itself on the server, so it cannot be
/// hashed the way API keys are; AES-256-GCM with a key kept outside the database (a 0600 file in the
/// data directory, like admin.key) means a copied database or backup holds no usable secret. The
/// access key id is the associated data, so a sealed secret moved to another row does not open.
/// A fingerprint of the key sits in <c>engine_settings</c>: a replica holding another key (or none,
/// once one exists) is told so instead of failing every signature.
/// </summary>
internal sealed class CredentialSealer(EngineOptions engine, IOptions<ObjectStorageOptions> options, Database db) : IDisposable
{
    private const string FingerprintSetting = "object_storage_key_fingerprint";
    private const string Version = "v1:";
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _key;

    public void Dispose() => _gate.Dispose();

    public string KeyPath => options.Value.CredentialKeyFile is { Length: > 0 } path ? Path.GetFullPath(path) : Path.Combine(engine.DataDir, "object-storage.key");

    /// <summary>
    /// Loads the key, making it on first use. Called before any write that seals: making it writes to
    /// the database, which must not happen inside another write's transaction.
    /// </summary>
    public async Task EnsureKeyAsync(CancellationToken ct)
    {
        if (_key is not null)
            return;
        await _gate.WaitAsync(ct);
        try
        {
            _key ??= await LoadOrCreateAsync(create: true, ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>At startup: a key file that does not match the database's, or is missing once one exists, stops the engine with one line.</summary>
    public async Task CheckAtStartupAsync(CancellationToken ct)
    {
        try
        {
            await _gate.WaitAsync(ct);
            try
            {
                _key ??= await LoadOrCreateAsync(create: false, ct);
            }
            finally
            {
                _gate.Release();
            }
        }
        catch (ApiError error)
        {
            throw new EngineStartupException(error.Message);
        }
    }

    public string Seal(string accessKeyId, string secret)
    {
        var key = _key ?? throw new InvalidOperationException("EnsureKeyAsync first.");
        var plain = Encoding.UTF8.GetBytes(secret);
        var sealedBytes = new byte[NonceBytes + TagBytes + plain.Length];
        var nonce = sealedBytes.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagBytes);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceBytes + TagBytes), sealedBytes.AsSpan(NonceBytes, TagBytes), Encoding.ASCII.GetBytes(accessKeyId));
        return Version + Convert.ToBase64String(sealedBytes);
    }

    /// <summary>The secret, or null when the sealed text does not open with this key for this key id.</summary>
    public string? Open(string accessKeyId, string sealedText)
    {
        var key = _key ?? throw new InvalidOperationException("EnsureKeyAsync first.");
        if (!sealedText.StartsWith(Version, StringComparison.Ordinal))
            return null;
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(sealedText[Version.Length..]);
        }
        catch (FormatException)
        {
            return null;
        }
        if (bytes.Length < NonceBytes + TagBytes)
            return null;
        var plain = new byte[bytes.Length - NonceBytes - TagBytes];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(bytes.AsSpan(0, NonceBytes), bytes.AsSpan(NonceBytes + TagBytes), bytes.AsSpan(NonceBytes, TagBytes), plain, Encoding.ASCII.GetBytes(accessKeyId));
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
        return Encoding.UTF8.GetString(plain);
    }

    private async Task<byte[]?> LoadOrCreateAsync(bool create, CancellationToken ct)
    {
        var path = KeyPath;
        var known = await db.ReadAsync(c => c.ExecuteScalarAsync<string?>(
            "SELECT value FROM engine_settings WHERE name = @FingerprintSetting", new { FingerprintSetting }), ct);
        if (File.Exists(path))
        {
            var key = ReadKeyFile(path);
            var fingerprint = Fingerprint(key);
            if (known is null)
                known = await RecordAsync(fingerprint, ct);
            if (known != fingerprint)
                throw Unavailable($"{path} is not the key this database's object storage secrets were sealed with. " +
                                  "Every replica needs the same key file (ObjectStorage:CredentialKeyFile).");
            return key;
        }
        if (known is not null)
            throw Unavailable($"{path} is missing, but this database's object storage secrets were sealed with a key. " +
                              "Copy object-storage.key from the engine that made it, or point ObjectStorage:CredentialKeyFile at it.");
        if (!create)
            return null;

        var fresh = RandomNumberGenerator.GetBytes(32);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            fileOptions.UnixCreateMode = DataDirectory.OwnerOnlyFile;
        try
        {
            await using (var file = new FileStream(path, fileOptions))
                await file.WriteAsync(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(fresh) + "\n"), ct);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another caller in this process (or a replica sharing the file) wrote it first: use theirs.
            return await LoadOrCreateAsync(create: false, ct);
        }
        var winner = await RecordAsync(Fingerprint(fresh), ct);
        if (winner != Fingerprint(fresh))
        {
            // A replica with its own data directory made a key at the same moment and recorded it first.
            File.Delete(path);
            throw Unavailable($"Another replica made the object storage key first; copy its object-storage.key to {path}.");
        }
        return fresh;
    }

    private async Task<string> RecordAsync(string fingerprint, CancellationToken ct) =>
        (await db.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO engine_settings (name, value) VALUES (@FingerprintSetting, @fingerprint) ON CONFLICT DO NOTHING",
                new { FingerprintSetting, fingerprint }, t);
            return await c.ExecuteScalarAsync<string>("SELECT value FROM engine_settings WHERE name = @FingerprintSetting", new { FingerprintSetting }, t);
        }, ct))!;

    private static byte[] ReadKeyFile(string path)
    {
        try
        {
            var key = Convert.FromHexString(File.ReadAllText(path).Trim());
            if (key.Length == 32)
                return key;
        }
        catch (FormatException)
        {
        }
        throw Unavailable($"{path} does not hold a 32-byte key in hex.");
    }

    private static string Fingerprint(byte[] key) =>
        Convert.ToHexStringLower(SHA256.HashData([.. "openpool object storage key\n"u8, .. key]))[..16];

    private static ApiError Unavailable(string message) =>
        new(StatusCodes.Status503ServiceUnavailable, "object_storage_key_unavailable", "Object storage is unavailable: " + message);
}
