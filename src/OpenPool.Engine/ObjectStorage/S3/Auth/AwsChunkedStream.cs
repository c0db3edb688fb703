using System.Security.Cryptography;
using System.Text;

namespace OpenPool.Engine.ObjectStorage.S3.Auth;

/// <summary>What signs the chunks of a <c>STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]</c> upload.</summary>
internal sealed record ChunkSigning(byte[] SigningKey, string AmzDate, string Scope, string SeedSignature);

/// <summary>
/// Decodes an aws-chunked request body (<c>hex-size[;chunk-signature=…]\r\n data \r\n … 0…\r\n
/// [trailers]\r\n</c>) as it is read. Memory is one small line buffer whatever the chunk size: data
/// streams through while it is hashed, and a chunk's last bytes are handed over only once its
/// signature (chained from the previous one) is verified and, when it was the last data chunk, the
/// final chunk and trailers too. So a consumer that stores the payload only after reading it to the
/// end never keeps bytes the signature does not cover. Every framing error, truncation or bad
/// signature is an <see cref="S3Exception"/> thrown from the read.
/// </summary>
internal sealed class AwsChunkedStream : ReadOnlyDecodingStream
{
    /// <summary>A chunk header is <c>hex;chunk-signature=64hex</c>: anything near this long is not one.</summary>
    internal const int MaxHeaderLine = 4096;

    /// <summary>One trailer line (a checksum is under 100 bytes); bounds what a hostile client can make us hold.</summary>
    internal const int MaxTrailerLine = 16 * 1024;

    internal const int MaxTrailers = 32;

    /// <summary>
    /// Chunks stream, so size costs no memory; the cap refuses lengths no client sends (SDKs use
    /// 8 KiB–16 MiB) before they turn into arithmetic on absurd numbers.
    /// </summary>
    internal const long MaxChunkSize = 256L * 1024 * 1024;

    private enum State { Header, Data, Done }

    private readonly Stream _inner;
    private readonly ChunkSigning? _signing;
    private readonly bool _trailers;
    private readonly long? _decodedLength;
    private readonly Dictionary<string, string> _trailerSink;
    private readonly byte[] _buffer = new byte[MaxTrailerLine];
    private int _pos;
    private int _len;
    private bool _innerEnded;

    private State _state = State.Header;
    private long _chunkRemaining;
    private string? _chunkSignature;
    private string _previousSignature;
    private readonly IncrementalHash? _chunkHash;
    private long _decoded;

    public AwsChunkedStream(Stream inner, ChunkSigning? signing, bool trailers, long? decodedLength, Dictionary<string, string> trailerSink)
    {
        _inner = inner;
        _signing = signing;
        _trailers = trailers;
        _decodedLength = decodedLength;
        _trailerSink = trailerSink;
        _previousSignature = signing?.SeedSignature ?? "";
        if (signing is not null)
            _chunkHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
            return 0;
        while (_state == State.Header)
            await ReadChunkHeaderAsync(cancellationToken);
        if (_state == State.Done)
            return 0;

        var want = (int)Math.Min(buffer.Length, _chunkRemaining);
        int n;
        if (_len > _pos)
        {
            n = Math.Min(want, _len - _pos);
            _buffer.AsSpan(_pos, n).CopyTo(buffer.Span);
            _pos += n;
        }
        else
        {
            // Large reads bypass the line buffer: chunk data goes straight into the caller's memory.
            n = await _inner.ReadAsync(buffer[..want], cancellationToken);
            if (n == 0)
                throw SigV4Errors.IncompleteBody();
        }
        _chunkHash?.AppendData(buffer.Span[..n]);
        _chunkRemaining -= n;
        _decoded += n;
        if (_chunkRemaining == 0)
        {
            await EndChunkAsync(cancellationToken);
            // Looking at the next header now means the last data bytes are returned only once the
            // final chunk and trailers have been verified as well.
            await ReadChunkHeaderAsync(cancellationToken);
        }
        return n;
    }

    private async ValueTask ReadChunkHeaderAsync(CancellationToken ct)
    {
        var line = await ReadLineAsync(MaxHeaderLine, ct);
        var semicolon = line.IndexOf(';');
        var sizeText = (semicolon < 0 ? line : line[..semicolon]).Trim();
        if (sizeText.Length == 0 || sizeText.Length > 16 || !sizeText.All(char.IsAsciiHexDigit))
            throw SigV4Errors.MalformedChunk("a chunk size is not hexadecimal");
        // Unsigned: sixteen hex digits can exceed long.MaxValue, and a negative size would be nonsense to report.
        var unsigned = ulong.Parse(sizeText, System.Globalization.NumberStyles.AllowHexSpecifier);
        if (unsigned > MaxChunkSize)
            throw SigV4Errors.MalformedChunk($"a chunk of 0x{sizeText} bytes is larger than {MaxChunkSize}");
        var size = (long)unsigned;
        if (_decodedLength is { } declared && _decoded + size > declared)
            throw SigV4Errors.MalformedChunk("the chunks are longer than x-amz-decoded-content-length");

        _chunkSignature = null;
        if (semicolon >= 0)
        {
            foreach (var extension in line[(semicolon + 1)..].Split(';'))
            {
                var eq = extension.IndexOf('=');
                if (eq > 0 && extension[..eq].Trim() == "chunk-signature")
                    _chunkSignature = extension[(eq + 1)..].Trim();
            }
        }
        if (_signing is not null && _chunkSignature is null)
            throw SigV4Errors.MalformedChunk("a chunk has no chunk-signature");

        _chunkRemaining = size;
        _state = State.Data;
        if (size == 0)
            await FinishAsync(ct);
    }

    private async ValueTask EndChunkAsync(CancellationToken ct)
    {
        var crlf = await ReadLineAsync(MaxHeaderLine, ct);
        if (crlf.Length != 0)
            throw SigV4Errors.MalformedChunk("chunk data is longer than its declared size");
        VerifyChunkSignature();
        _state = State.Header;
    }

    private void VerifyChunkSignature()
    {
        if (_signing is null || _chunkHash is null)
            return;
        var hash = Convert.ToHexStringLower(_chunkHash.GetHashAndReset());
        var stringToSign = SigV4.ChunkStringToSign(_signing.AmzDate, _signing.Scope, _previousSignature, hash);
        var expected = SigV4.Sign(_signing.SigningKey, stringToSign);
        if (!SigV4.SignatureEquals(expected, _chunkSignature!))
            throw SigV4Errors.SignatureDoesNotMatch([new("StringToSign", stringToSign), new("SignatureProvided", _chunkSignature!)]);
        _previousSignature = expected;
    }

    private async ValueTask FinishAsync(CancellationToken ct)
    {
        VerifyChunkSignature();
        if (_trailers)
            await ReadTrailersAsync(ct);
        else if ((await ReadLineAsync(MaxHeaderLine, ct)).Length != 0)
            throw SigV4Errors.MalformedChunk("the final chunk is not followed by an empty line");

        if (_decodedLength is { } declared && _decoded != declared)
            throw SigV4Errors.IncompleteBody($"The decoded body is {_decoded} bytes; x-amz-decoded-content-length says {declared}.");
        await EnsureEndAsync(ct);
        _state = State.Done;
    }

    private async ValueTask ReadTrailersAsync(CancellationToken ct)
    {
        string? trailerSignature = null;
        var canonical = new StringBuilder();
        while (true)
        {
            var line = await ReadLineAsync(MaxTrailerLine, ct);
            if (line.Length == 0)
                break;
            var colon = line.IndexOf(':');
            if (colon <= 0)
                throw SigV4Errors.MalformedChunk("a trailing header has no name");
            var name = line[..colon].Trim().ToLowerInvariant();
            var value = line[(colon + 1)..].Trim();
            if (name == "x-amz-trailer-signature")
            {
                trailerSignature = value;
                continue;
            }
            if (_trailerSink.Count >= MaxTrailers)
                throw SigV4Errors.MalformedChunk("too many trailing headers");
            // A name twice would let one value be checked and the other believed.
            if (!_trailerSink.TryAdd(name, value))
                throw S3Errors.MalformedTrailer();
            canonical.Append(name).Append(':').Append(value).Append('\n');
        }
        if (_signing is null)
            return;
        if (trailerSignature is null)
            throw SigV4Errors.MalformedChunk("the trailing headers have no x-amz-trailer-signature");
        var stringToSign = SigV4.TrailerStringToSign(_signing.AmzDate, _signing.Scope, _previousSignature, SigV4.HexSha256(canonical.ToString()));
        var expected = SigV4.Sign(_signing.SigningKey, stringToSign);
        if (!SigV4.SignatureEquals(expected, trailerSignature))
            throw SigV4Errors.SignatureDoesNotMatch([new("StringToSign", stringToSign), new("SignatureProvided", trailerSignature)]);
    }

    /// <summary>After the framing only line ends may follow (some clients end with an extra CRLF).</summary>
    private async ValueTask EnsureEndAsync(CancellationToken ct)
    {
        var extra = 0;
        while (true)
        {
            if (_pos == _len && !await FillAsync(ct))
                return;
            while (_pos < _len)
            {
                if (_buffer[_pos] is not ((byte)'\r' or (byte)'\n') || ++extra > 64)
                    throw SigV4Errors.MalformedChunk("bytes follow the final chunk");
                _pos++;
            }
        }
    }

    /// <summary>One line without its CRLF (a bare LF is accepted), at most <paramref name="max"/> bytes.</summary>
    private async ValueTask<string> ReadLineAsync(int max, CancellationToken ct)
    {
        var scanned = 0;
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _pos + scanned, _len - _pos - scanned);
            if (newline >= 0)
            {
                var end = newline > _pos && _buffer[newline - 1] == '\r' ? newline - 1 : newline;
                var line = Encoding.ASCII.GetString(_buffer, _pos, end - _pos);
                _pos = newline + 1;
                return line;
            }
            scanned = _len - _pos;
            if (scanned >= max)
                throw SigV4Errors.MalformedChunk($"a line is longer than {max} bytes");
            if (!await FillAsync(ct))
                throw SigV4Errors.IncompleteBody();
        }
    }

    /// <summary>Reads more of the inner body behind what is buffered; false at its end.</summary>
    private async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_innerEnded)
            return false;
        if (_pos > 0)
        {
            Buffer.BlockCopy(_buffer, _pos, _buffer, 0, _len - _pos);
            _len -= _pos;
            _pos = 0;
        }
        if (_len == _buffer.Length)
            throw SigV4Errors.MalformedChunk("a line is too long");
        var n = await _inner.ReadAsync(_buffer.AsMemory(_len), ct);
        if (n == 0)
        {
            _innerEnded = true;
            return false;
        }
        _len += n;
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _chunkHash?.Dispose();
        base.Dispose(disposing);
    }
}
