// S3 ETags are MD5s: the test computes one to compare.
#pragma warning disable CA5351
using System.Net;
using System.Text.Json;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;

namespace OpenPool.Engine.Tests.ObjectStorage;

/// <summary>What a crash leaves, and what streaming costs in memory, on a real engine process.</summary>
public sealed class S3DurabilityTests
{
    [Fact]
    public async Task A_SIGKILL_mid_upload_leaves_the_earlier_object_visible_and_no_partial_blob()
    {
        await using var engine = await S3Engine.StartAsync();
        var tenant = await engine.TenantAsync("lab-a");
        var earlier = RandomNumberGenerator.GetBytes(4096);
        using (var s3 = engine.Client(tenant))
        {
            await s3.PutBucketAsync("durable");
            await s3.PutObjectAsync(new PutObjectRequest { BucketName = "durable", Key = "k", InputStream = new MemoryStream(earlier) });
        }

        // A PutObject of the same key whose body stops half way, then the engine dies.
        var tmp = Path.Combine(engine.DataDir, "objects", "tmp");
        var upload = Task.Run(async () =>
        {
            using var s3 = engine.Client(tenant);
            var body = new StallingStream(32 * 1024 * 1024, stallAfter: 8 * 1024 * 1024);
            try
            {
                await s3.PutObjectAsync(new PutObjectRequest { BucketName = "durable", Key = "k", InputStream = body, AutoCloseStream = false, Headers = { ContentLength = body.Length } });
            }
            catch (Exception)
            {
                // The engine is gone: the client fails, as it must.
            }
        });
        // The temporary file grows while the body streams in: once it holds bytes, the upload is mid-way.
        while (!Directory.EnumerateFiles(tmp).Any(f => new FileInfo(f).Length > 1024 * 1024))
        {
            Assert.False(upload.IsCompleted, "the upload ended before the engine could be killed");
            await Task.Delay(50);
        }
        await engine.KillAndRestartAsync();
        await upload;

        using (var s3 = engine.Client(tenant))
        {
            using var get = await s3.GetObjectAsync("durable", "k");
            using var read = new MemoryStream();
            await get.ResponseStream.CopyToAsync(read);
            Assert.True(earlier.AsSpan().SequenceEqual(read.ToArray()), "after the crash GET must return the earlier version");
        }
        // The half-written temporary file is only temporary: no committed blob holds it.
        Assert.Single(Directory.EnumerateFiles(Path.Combine(engine.DataDir, "objects", "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Stored_bytes_a_SIGKILL_kept_from_the_meter_are_counted_again_when_the_engine_restarts()
    {
        // A flush interval longer than the test: the meter's running count never reaches the database.
        string[] args = ["--ObjectStorage:MeterFlushSeconds", "3600"];
        await using var engine = await S3Engine.StartAsync(args);
        var tenant = await engine.TenantAsync("lab-a");
        using (var s3 = engine.Client(tenant))
        {
            await s3.PutBucketAsync("metered");
            await s3.PutObjectAsync(new PutObjectRequest { BucketName = "metered", Key = "a", InputStream = new MemoryStream(new byte[3_000_000]) });
            var upload = await s3.InitiateMultipartUploadAsync("metered", "unfinished");
            await s3.UploadPartAsync(new UploadPartRequest
            {
                BucketName = "metered", Key = "unfinished", UploadId = upload.UploadId, PartNumber = 1, InputStream = new MemoryStream(new byte[2_000_000]),
            });
        }
        await engine.KillAndRestartAsync(args);

        using var user = engine.Engine.Client(tenant.ApiKey);
        var me = JsonDocument.Parse(await user.GetStringAsync("/user/info")).RootElement.GetProperty("message").GetString()!;
        // The object and the unfinished upload's part are both billed storage.
        Assert.Contains($"Object storage:   {OpenPool.Engine.ObjectStorage.Management.ManagementApi.Size(5_000_000)} stored", me);
    }

    [Fact]
    public async Task Uploads_and_downloads_stream_without_holding_the_object_in_memory()
    {
        await using var engine = await S3Engine.StartAsync();
        var tenant = await engine.TenantAsync("lab-a");
        using var s3 = engine.Client(tenant);
        await s3.PutBucketAsync("stream");
        // Warm up the paths first, so the measure below is what the big object adds.
        await s3.PutObjectAsync(new PutObjectRequest { BucketName = "stream", Key = "warm", InputStream = new MemoryStream(new byte[1024 * 1024]) });
        (await s3.GetObjectAsync("stream", "warm")).Dispose();
        var before = PeakRss(engine.Engine.Pid);

        // The size: 2 GiB up and back, its bytes checked on the way back.
        const long size = 2L * 1024 * 1024 * 1024;
        var put = await s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = "stream", Key = "big", InputStream = new StallingStream(size, stallAfter: long.MaxValue), AutoCloseStream = false,
            Headers = { ContentLength = size },
        });
        using (var get = await s3.GetObjectAsync("stream", "big"))
        {
            Assert.Equal(HttpStatusCode.OK, get.HttpStatusCode);
            Assert.Equal(size, get.ContentLength);
            var buffer = new byte[1024 * 1024];
            using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
            long total = 0;
            int read;
            while ((read = await get.ResponseStream.ReadAsync(buffer)) > 0)
            {
                Assert.True(StallingStream.IsPatternAt(total, buffer.AsSpan(0, read)), $"the bytes at offset {total} came back changed");
                md5.AppendData(buffer, 0, read);
                total += read;
            }
            Assert.Equal(size, total);
            // A single PUT's ETag is the quoted MD5 of what the engine received.
            Assert.Equal($"\"{Convert.ToHexStringLower(md5.GetHashAndReset())}\"", put.ETag);
        }
        var growth = PeakRss(engine.Engine.Pid) - before;
        Assert.True(growth < 64L * 1024 * 1024, $"the engine's peak RSS grew by {growth / (1024 * 1024)} MiB for a 2 GiB object");
    }

    /// <summary>The process's peak resident set (VmHWM), in bytes.</summary>
    private static long PeakRss(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    /// <summary>
    /// A body of <c>length</c> bytes, generated as read (the byte at offset p is p mod 251, so a
    /// shifted or dropped buffer shows), that blocks forever after <c>stallAfter</c> bytes.
    /// </summary>
    private sealed class StallingStream(long length, long stallAfter) : Stream
    {
        private const int Period = 251;
        private static readonly byte[] Pattern = Enumerable.Range(0, Period * 4200).Select(i => (byte)(i % Period)).ToArray();

        public static bool IsPatternAt(long offset, ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var start = (int)(offset % Period);
                var n = Math.Min(bytes.Length, Pattern.Length - start);
                if (!bytes[..n].SequenceEqual(Pattern.AsSpan(start, n)))
                    return false;
                bytes = bytes[n..];
                offset += n;
            }
            return true;
        }

        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= stallAfter)
                await Task.Delay(Timeout.Infinite, cancellationToken);
            var n = (int)Math.Min(buffer.Length, Math.Min(length, stallAfter) - _position);
            if (n <= 0)
                return 0;
            for (var done = 0; done < n;)
            {
                var start = (int)(_position % Period);
                var chunk = Math.Min(n - done, Pattern.Length - start);
                Pattern.AsSpan(start, chunk).CopyTo(buffer.Span[done..]);
                done += chunk;
                _position += chunk;
            }
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
