using System.Security.Cryptography;
using System.Text;
using OpenPool.Engine.ObjectStorage.S3;
using OpenPool.Engine.ObjectStorage.S3.Auth;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>
/// The decoding streams on their own: any split of the wire bytes into reads and any caller
/// buffer size give the same payload, and the last payload bytes come out only once everything
/// after them (final chunk, trailers, hash) has been verified.
/// </summary>
public sealed class SigV4StreamTests
{
    /// <summary>Hands out at most <c>max</c> bytes per read, as a slow network does.</summary>
    private sealed class Trickle(byte[] bytes, int max) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, max)], cancellationToken);
    }

    private static readonly SigV4TestSigner.Signed Signing = new(
        new string('0', 64), SigV4.SigningKey("secret", "20250102", "us-east-1"), "20250102T030405Z", SigV4.Scope("20250102", "us-east-1"));

    private static ChunkSigning ChunkSigning => new(Signing.SigningKey, Signing.AmzDate, Signing.Scope, Signing.Signature);

    private static byte[] Data(int n)
    {
        var bytes = new byte[n];
        new Random(n).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> ReadAll(Stream stream, int readSize)
    {
        using var output = new MemoryStream();
        var buffer = new byte[readSize];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
            output.Write(buffer, 0, n);
        return output.ToArray();
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(1000, 1)]
    [InlineData(100_000, 65536)]
    [InlineData(17, 100_000)]
    public async Task Signed_chunks_with_trailers_decode_for_any_read_pattern(int innerMax, int readSize)
    {
        var data = Data(50_000);
        var wire = SigV4TestSigner.ChunkedBody(data, 8192, Signing, [("x-amz-checksum-sha256", "abc="), ("x-amz-checksum-crc32", "def=")]);
        var trailers = new Dictionary<string, string>();
        using var stream = new AwsChunkedStream(new Trickle(wire, innerMax), ChunkSigning, trailers: true, data.Length, trailers);

        Assert.Equal(data, await ReadAll(stream, readSize));
        Assert.Equal("abc=", trailers["x-amz-checksum-sha256"]);
        Assert.Equal("def=", trailers["x-amz-checksum-crc32"]);
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(4096, 4096)]
    public async Task Unsigned_chunks_decode_for_any_read_pattern(int innerMax, int readSize)
    {
        var data = Data(20_001);
        var wire = SigV4TestSigner.ChunkedBody(data, 4000, null, [("x-amz-checksum-crc32", "xyz=")]);
        var trailers = new Dictionary<string, string>();
        using var stream = new AwsChunkedStream(new Trickle(wire, innerMax), null, trailers: true, data.Length, trailers);
        Assert.Equal(data, await ReadAll(stream, readSize));
        Assert.Equal("xyz=", trailers["x-amz-checksum-crc32"]);
    }

    [Fact]
    public async Task The_last_data_bytes_wait_for_the_final_chunk_and_trailer_signatures()
    {
        var data = Data(8192);
        var wire = SigV4TestSigner.ChunkedBody(data, 8192, Signing, [("x-amz-checksum-crc32", "AAAAAA==")]);
        var text = System.Text.Encoding.Latin1.GetString(wire).Replace("AAAAAA==", "BBBBBB==", StringComparison.Ordinal);
        using var stream = new AwsChunkedStream(new MemoryStream(System.Text.Encoding.Latin1.GetBytes(text)), ChunkSigning, true, data.Length, []);

        var buffer = new byte[8191];
        await stream.ReadExactlyAsync(buffer); // all but the last byte: nothing past the chunk verified yet
        var e = await Assert.ThrowsAsync<S3Exception>(() => ReadAll(stream, 10));
        Assert.Equal("SignatureDoesNotMatch", e.Code);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    public async Task A_signed_hash_is_checked_before_the_last_bytes_are_handed_over(int innerMax)
    {
        var data = Data(5000);
        using var good = new Sha256VerifyingStream(new Trickle(data, innerMax), Convert.ToHexStringLower(SHA256.HashData(data)), data.Length);
        Assert.Equal(data, await ReadAll(good, 333));

        var wrong = SigV4.HexSha256("something else");
        using var bad = new Sha256VerifyingStream(new Trickle(data, innerMax), wrong, data.Length);
        var e = await Assert.ThrowsAsync<S3Exception>(() => ReadAll(bad, 333));
        Assert.Equal("XAmzContentSHA256Mismatch", e.Code);
    }

    [Fact]
    public async Task A_body_shorter_than_its_content_length_is_IncompleteBody()
    {
        var data = Data(100);
        using var stream = new Sha256VerifyingStream(new MemoryStream(data), Convert.ToHexStringLower(SHA256.HashData(data)), 200);
        var e = await Assert.ThrowsAsync<S3Exception>(() => ReadAll(stream, 64));
        Assert.Equal("IncompleteBody", e.Code);
    }

    [Fact]
    public async Task Bytes_after_the_final_chunk_are_refused()
    {
        var wire = SigV4TestSigner.ChunkedBody(Data(10), 10, null).Concat("junk"u8.ToArray()).ToArray();
        using var stream = new AwsChunkedStream(new MemoryStream(wire), null, false, 10, []);
        var e = await Assert.ThrowsAsync<S3Exception>(() => ReadAll(stream, 64));
        Assert.Equal("InvalidRequest", e.Code);
    }

    [Theory]
    [InlineData("ffffffffffffffff")] // above long.MaxValue
    [InlineData("7fffffffffffffff")]
    [InlineData("10000001")]         // just past the largest chunk taken
    public async Task An_oversized_chunk_is_refused_with_its_size_as_sent(string size)
    {
        var wire = Encoding.ASCII.GetBytes(size + "\r\nhello\r\n0\r\n\r\n");
        using var stream = new AwsChunkedStream(new MemoryStream(wire), null, false, null, []);
        var e = await Assert.ThrowsAsync<S3Exception>(() => ReadAll(stream, 64));
        Assert.Equal(400, e.Status);
        Assert.Contains("0x" + size, e.Message);
    }
}
