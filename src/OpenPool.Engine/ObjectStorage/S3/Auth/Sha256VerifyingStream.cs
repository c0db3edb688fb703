using System.Security.Cryptography;

namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>
/// The request body of a signed-payload request: passes bytes through while hashing them, and
/// throws <c>XAmzContentSHA256Mismatch</c> before handing over the last bytes (when the length is
/// known) or at the end, so a consumer that commits only after reading to the end never keeps a
/// payload the signature does not cover.
/// </summary>
internal sealed class Sha256VerifyingStream(Stream inner, string expectedHex, long? contentLength) : ReadOnlyDecodingStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _verified;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_verified)
            return 0;
        if (buffer.Length == 0)
            return 0;
        var n = await inner.ReadAsync(buffer, cancellationToken);
        if (n > 0)
        {
            _hash.AppendData(buffer.Span[..n]);
            _read += n;
        }
        if (n == 0 || (contentLength is { } length && _read >= length))
        {
            if (n == 0 && contentLength is { } expected && _read < expected)
                throw SigV4Errors.IncompleteBody("You did not provide the number of bytes specified by the Content-Length HTTP header.");
            Verify();
        }
        return n;
    }

    private void Verify()
    {
        _verified = true;
        var computed = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (!string.Equals(computed, expectedHex, StringComparison.OrdinalIgnoreCase))
            throw SigV4Errors.ContentSha256Mismatch(expectedHex, computed);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _hash.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>A forward-only, read-only request body; synchronous reads go through the async path.</summary>
internal abstract class ReadOnlyDecodingStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
