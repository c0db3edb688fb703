using System.Buffers;

namespace OpenPool.Engine.ObjectStorage.S3;

/// <summary>
/// Moves an object's bytes between two streams in 1 MiB chunks, reading chunk n+1 while chunk n is
/// hashed and written. On an upload the read side decodes and verifies the SigV4 chunk signatures
/// and the write side computes the ETag's MD5, so the two run on separate cores instead of one
/// after the other; on a download, the blob read overlaps with the socket write.
/// </summary>
internal static class OverlappedCopy
{
    /// <summary>Large enough that per-chunk costs (a task, a syscall) vanish, small enough for two per transfer.</summary>
    public const int ChunkBytes = 1024 * 1024;

    /// <summary>
    /// Copies <paramref name="length"/> bytes (or, when null, everything up to the end of
    /// <paramref name="source"/>), passing each chunk to <paramref name="observe"/> before it is
    /// written. Returns how many bytes were copied, which is less than <paramref name="length"/>
    /// when the source ended early (the caller decides what that means). <paramref name="tooLarge"/>
    /// runs, and is expected to throw, as soon as more than <paramref name="maxBytes"/> arrive.
    /// </summary>
    public static async Task<long> CopyAsync(
        Stream source, Stream destination, long? length, Action<byte[], int>? observe, CancellationToken ct,
        long maxBytes = long.MaxValue, Action? tooLarge = null)
    {
        // A small object gets a buffer of its own size, not two megabytes.
        var size = length is { } known ? (int)Math.Clamp(known, 1, ChunkBytes) : ChunkBytes;
        byte[][] buffers = [ArrayPool<byte>.Shared.Rent(size), ArrayPool<byte>.Shared.Rent(size)];
        var pending = Task.CompletedTask;
        long total = 0;
        try
        {
            for (var current = 0; ; current ^= 1)
            {
                var want = length is { } exact ? (int)Math.Min(size, exact - total) : size;
                if (want == 0)
                    break;
                var chunk = buffers[current];
                var read = await source.ReadAtLeastAsync(chunk.AsMemory(0, want), want, throwOnEndOfStream: false, ct);
                if (read == 0)
                    break;
                total += read;
                if (total > maxBytes)
                    tooLarge?.Invoke();
                await pending;
                pending = Task.Run(async () =>
                {
                    observe?.Invoke(chunk, read);
                    await destination.WriteAsync(chunk.AsMemory(0, read), ct);
                }, ct);
                if (read < want)
                    break;
            }
            await pending;
        }
        finally
        {
            // The buffers go back only once nothing writes from them.
            try
            {
                await pending;
            }
            catch (Exception)
            {
                // Already observed by the await above, or superseded by the exception leaving now.
            }
            ArrayPool<byte>.Shared.Return(buffers[0]);
            ArrayPool<byte>.Shared.Return(buffers[1]);
        }
        return total;
    }
}
