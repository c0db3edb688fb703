using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Data.Sqlite;
using OpenPool.Bench.Harness;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Bench.Figures;

/// <summary>
/// The S3 endpoint as AWSSDK.S3 sees it: big-object throughput against copying the same bytes on
/// the same disk, small-object PUTs beside the machine's raw SQLite commit rate, listing latency
/// with a million objects over a bucket with only the page, and the engine's RSS while a 2 GiB
/// object goes up and comes back. Every engine is a real process; every client call is the SDK's.
/// </summary>
internal static class S3Figures
{
    private const int Buffer = 1024 * 1024; // the engine's own chunk (OverlappedCopy.ChunkBytes), so both sides move bytes alike
    private const long GiB = 1024L * 1024 * 1024;

    public static async Task RunAsync(Report report, bool quick)
    {
        // Peak use is the RSS figure's: a 2 GiB source and its 2 GiB blob (the throughput figure peaks at 4 x 1 GiB).
        var free = new DriveInfo(Path.GetTempPath()).AvailableFreeSpace;
        var needed = (quick ? 5 : 6) * GiB;
        if (free < needed)
            throw new InvalidOperationException($"{Path.GetTempPath()} has {free / GiB} GiB free; the s3 figures need {needed / GiB} GiB");

        await Guarded(report, () => ThroughputAsync(report, quick), "s3_put_vs_disk_ratio", "s3_get_vs_disk_ratio", "s3_put_presigned_vs_disk_ratio", "s3_get_presigned_vs_disk_ratio");
        await Guarded(report, () => SmallPutsAsync(report, quick), "s3_small_put_per_s");
        await Guarded(report, () => ListingAsync(report, quick), "s3_list_1m_vs_empty_ratio", "s3_list_1m_vs_page_only_ratio");
        await Guarded(report, () => MemoryAsync(report, quick), "s3_rss_growth_mb_2gib");
    }

    /// <summary>One figure failing to measure must not take the group's others with it.</summary>
    private static async Task Guarded(Report report, Func<Task> figure, params string[] names)
    {
        try
        {
            await figure();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            foreach (var name in names)
                report.Broken(name, ex);
        }
    }

    // ---- s3_put_vs_disk_ratio, s3_get_vs_disk_ratio ------------------------------------------

    /// <summary>
    /// One 1 GiB object, single stream, in rounds. Uploads: AWSSDK.S3 PutObject from the file, and
    /// the same file PUT to a presigned URL by a plain HttpClient (UNSIGNED-PAYLOAD, what curl or a
    /// browser sends), against a copy of the file that is fsynced and renamed into place (the
    /// engine's blob commit: file fsync, rename, directory fsync). Downloads: GetObject and a plain
    /// GET of a presigned URL into a file, against a plain copy (neither fsyncs: a download does not).
    /// The order of each round's steps rotates. Dirty pages are flushed, untimed, after every step so
    /// one step's writeback does not land in the next. The SDK figures are the headline (the issue's
    /// clients are the SDKs); the presigned ones show how much of the gap is the SDK's own work.
    /// </summary>
    private static async Task ThroughputAsync(Report report, bool quick)
    {
        var rounds = quick ? 2 : 4;
        var size = GiB;
        using var work = new TempDir(); // the same filesystem as the engine's data directory (both under the temp dir)
        var source = Path.Combine(work.Path, "source.bin");
        var md5 = WriteRandomFile(source, size, seed: 1);
        await using var engine = await BenchEngine.StartAsync(null, "--Billing:InitialBalanceUsd=1000000");
        var tenant = await S3Tenant.CreateAsync(engine, "bench-throughput");
        using var s3 = await tenant.ClientAsync(connections: 1);
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        await WarmUpAsync(s3, "bench-throughput", work.Path);
        tenant.Forms.Reset();

        var download = Path.Combine(work.Path, "download.bin");
        var copy = Path.Combine(work.Path, "copy.bin");
        string Presign(HttpVerb verb) => s3.GetPreSignedURL(new GetPreSignedUrlRequest
        {
            BucketName = "bench-throughput", Key = "big/object.bin", Verb = verb, Expires = DateTime.UtcNow.AddHours(1), Protocol = Protocol.HTTP,
        });

        var puts = new Step[]
        {
            new("sdk", engine.Pid, async () =>
            {
                var put = await s3.PutObjectAsync(new PutObjectRequest { BucketName = "bench-throughput", Key = "big/object.bin", FilePath = source });
                CheckETag(put.ETag, md5);
            }),
            new("presigned", engine.Pid, async () =>
            {
                await using var file = File.OpenRead(source);
                using var content = new StreamContent(file, Buffer);
                using var put = await http.PutAsync(Presign(HttpVerb.PUT), content);
                put.EnsureSuccessStatusCode();
                CheckETag(put.Headers.ETag?.Tag, md5);
            }),
            new("copy", engine.Pid, () =>
            {
                CopyFile(source, copy, durable: true);
                File.Delete(copy);
                return Task.CompletedTask;
            }),
        };
        var gets = new Step[]
        {
            new("sdk", engine.Pid, async () =>
            {
                using (var get = await s3.GetObjectAsync("bench-throughput", "big/object.bin"))
                await using (var file = NewFile(download))
                    await get.ResponseStream.CopyToAsync(file, Buffer);
                CheckDownload(download, size);
            }),
            new("presigned", engine.Pid, async () =>
            {
                using (var get = await http.GetAsync(Presign(HttpVerb.GET), HttpCompletionOption.ResponseHeadersRead))
                {
                    get.EnsureSuccessStatusCode();
                    await using var body = await get.Content.ReadAsStreamAsync();
                    await using var file = NewFile(download);
                    await body.CopyToAsync(file, Buffer);
                }
                CheckDownload(download, size);
            }),
            new("copy", engine.Pid, () =>
            {
                CopyFile(source, copy, durable: false);
                File.Delete(copy);
                return Task.CompletedTask;
            }),
        };

        var compared = false;
        for (var round = 0; round < rounds; round++)
        {
            foreach (var step in Rotate(puts, round))
            {
                await step.RunAsync();
                SyncAll();
            }
            foreach (var step in Rotate(gets, round))
            {
                await step.RunAsync();
                if (step.Name != "copy")
                {
                    if (!compared && !SameBytes(source, download))
                        throw new InvalidOperationException($"The {step.Name} GET's bytes differ from the file that was put");
                    compared = true;
                    File.Delete(download);
                }
                SyncAll();
            }
        }
        await s3.DeleteObjectAsync("bench-throughput", "big/object.bin");

        string Rate(Step step) => $"{step.MegabytesPerSecond(rounds * size):0} MB/s, engine CPU {step.EngineSecondsPer(rounds):0.00} s per GiB";
        var (sdkPut, presignedPut, durableCopy) = (puts[0], puts[1], puts[2]);
        var (sdkGet, presignedGet, plainCopy) = (gets[0], gets[1], gets[2]);
        report.Add("s3_put_vs_disk_ratio", durableCopy.Seconds / sdkPut.Seconds,
            $"one 1 GiB object, single stream, {rounds} rounds, rotating the order of the steps: AWSSDK.S3 PutObject from the file {Rate(sdkPut)} " +
            $"(payload form the SDK chose: {tenant.Forms.Describe("PUT")}) over a file-to-file copy on the same disk {durableCopy.MegabytesPerSecond(rounds * size):0} MB/s; " +
            $"the same file PUT to a presigned URL by a plain HttpClient (UNSIGNED-PAYLOAD) {Rate(presignedPut)}, ratio {durableCopy.Seconds / presignedPut.Seconds:0.000}. " +
            $"The engine fsyncs the blob and its directory before answering, and so does the copy (fsync of the file, rename into place, fsync of the directory); " +
            $"{Buffer / 1024} KiB buffers; ETags checked against the file's MD5. MD5, which the ETag needs, runs at {Md5MegabytesPerSecond():0} MB/s on one core of this machine");
        report.Add("s3_get_vs_disk_ratio", plainCopy.Seconds / sdkGet.Seconds,
            $"the same object and rounds: AWSSDK.S3 GetObject into a file {Rate(sdkGet)} (request form: {tenant.Forms.Describe("GET")}) over a file-to-file copy " +
            $"{plainCopy.MegabytesPerSecond(rounds * size):0} MB/s; a plain HttpClient GET of a presigned URL into a file {Rate(presignedGet)}, ratio {plainCopy.Seconds / presignedGet.Seconds:0.000}; " +
            "nothing fsyncs (a download does not; flushed, untimed, after each step); the first download compared byte for byte with the file");
        report.Add("s3_put_presigned_vs_disk_ratio", durableCopy.Seconds / presignedPut.Seconds,
            "s3_put_vs_disk_ratio's rounds, the upload by a plain HttpClient to a presigned URL (UNSIGNED-PAYLOAD: no chunk signatures, no trailer); no mark, it separates the SDK's cost from the engine's");
        report.Add("s3_get_presigned_vs_disk_ratio", plainCopy.Seconds / presignedGet.Seconds,
            "s3_get_vs_disk_ratio's rounds, the download by a plain HttpClient from a presigned URL; no mark, it separates the SDK's cost from the engine's");
    }

    private static IEnumerable<Step> Rotate(Step[] steps, int round) => steps.Skip(round % steps.Length).Concat(steps.Take(round % steps.Length));

    private static void CheckETag(string? etag, string md5)
    {
        if (etag?.Trim('"') != md5)
            throw new InvalidOperationException($"The PUT answered ETag {etag}, the file's MD5 is {md5}");
    }

    private static void CheckDownload(string path, long size)
    {
        if (new FileInfo(path).Length != size)
            throw new InvalidOperationException($"The GET wrote {new FileInfo(path).Length} bytes, not {size}");
    }

    /// <summary>This machine's single-core MD5 rate over 256 MiB: the ceiling of any single-stream PUT, whose ETag is the body's MD5.</summary>
    private static double Md5MegabytesPerSecond()
    {
        var block = new byte[1024 * 1024];
        new Random(5).NextBytes(block);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 256; i++)
            md5.AppendData(block);
        md5.GetHashAndReset();
        return 256 * block.Length / clock.Elapsed.TotalSeconds / 1e6;
    }

    /// <summary>One way of moving the object, timed over every round, with the engine's CPU time it cost.</summary>
    private sealed class Step(string name, int enginePid, Func<Task> run)
    {
        public string Name => name;
        public double Seconds { get; private set; }
        public double EngineCpuSeconds { get; private set; }

        public async Task RunAsync()
        {
            var cpu = CpuUse.ProcessSeconds(enginePid);
            var clock = Stopwatch.StartNew();
            await run();
            Seconds += clock.Elapsed.TotalSeconds;
            EngineCpuSeconds += CpuUse.ProcessSeconds(enginePid) - cpu;
        }

        public double MegabytesPerSecond(long bytes) => bytes / Seconds / 1e6;

        public double EngineSecondsPer(int rounds) => EngineCpuSeconds / rounds;
    }

    // ---- s3_small_put_per_s -------------------------------------------------------------------

    /// <summary>
    /// 4 KiB PutObjects, each to a new key, from 32 concurrent callers on one SDK client with 32
    /// connections, for a fixed time after a warm-up; beside it this machine's raw SQLite commit rate
    /// (the claims figure's measurement) and a raw durable 4 KiB file write at the same concurrency.
    /// </summary>
    private static async Task SmallPutsAsync(Report report, bool quick)
    {
        const int concurrency = 32;
        var warmUp = TimeSpan.FromSeconds(quick ? 3 : 5);
        var measured = TimeSpan.FromSeconds(quick ? 10 : 30);
        await using var engine = await BenchEngine.StartAsync(null, "--Billing:InitialBalanceUsd=1000000");
        var tenant = await S3Tenant.CreateAsync(engine, "bench-small");
        using var s3 = await tenant.ClientAsync(connections: concurrency);
        var body = new byte[4096];
        new Random(4).NextBytes(body);

        var warm = await PutForAsync(s3, body, concurrency, warmUp, "warm");
        tenant.Forms.Reset();
        var cpu = CpuUse.Start(engine.Pid);
        var clock = Stopwatch.StartNew();
        var puts = await PutForAsync(s3, body, concurrency, measured, "m");
        var seconds = clock.Elapsed.TotalSeconds;
        var cpuPerPut = cpu.PerItem(puts, "PUT");
        var perSecond = puts / seconds;
        var stored = await engine.ScalarAsync("SELECT COUNT(*) FROM s3_objects WHERE bucket = 'bench-small'");
        if (stored != warm + puts)
            throw new InvalidOperationException($"{warm + puts} PUTs answered 200, the bucket holds {stored} objects");

        var raw = ClaimThroughput.RawSqliteCommitsPerSecond(quick ? 5000 : 20000);
        var durableFiles = await RawDurableWritesPerSecondAsync(concurrency, TimeSpan.FromSeconds(quick ? 3 : 10));
        var detail = $"4 KiB objects, each to a new key, {concurrency} concurrent callers on one AWSSDK.S3 client ({concurrency} connections), {measured.TotalSeconds:0} s " +
                     $"after {warmUp.TotalSeconds:0} s of warm-up: {puts} PUTs in {seconds:0.00} s, every one found in the database afterwards " +
                     $"(payload form: {tenant.Forms.Describe("PUT")}); {cpuPerPut}. Each PUT writes and fsyncs a blob, renames it, fsyncs its directory, then commits a row. " +
                     $"Beside it, this machine in the same run: raw SQLite commits {raw:0}/s (one connection, WAL, synchronous=NORMAL: no fsync per commit), " +
                     $"raw durable 4 KiB file writes (write, fsync, rename, fsync directory) from {concurrency} threads {durableFiles:0}/s";
        report.Add("s3_small_put_per_s", perSecond, detail);
        report.Add("s3_small_put_vs_sqlite_commits_ratio", perSecond / raw,
            $"s3_small_put_per_s ÷ the raw SQLite commit rate measured in the same run ({raw:0}/s); no mark: a PUT also makes its bytes durable (raw durable 4 KiB writes: {durableFiles:0}/s), which a commit with synchronous=NORMAL does not");
    }

    private static async Task<int> PutForAsync(AmazonS3Client s3, byte[] body, int concurrency, TimeSpan duration, string tag)
    {
        var deadline = Stopwatch.StartNew();
        var done = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            for (var n = 0; deadline.Elapsed < duration; n++)
            {
                await s3.PutObjectAsync(new PutObjectRequest { BucketName = "bench-small", Key = $"{tag}/{worker:D2}/{n:D7}", InputStream = new MemoryStream(body) });
                Interlocked.Increment(ref done);
            }
        })));
        return done;
    }

    /// <summary>What the disk does for a small durable file, without the endpoint: the same steps as the blob store's commit.</summary>
    private static async Task<double> RawDurableWritesPerSecondAsync(int concurrency, TimeSpan duration)
    {
        using var dir = new TempDir();
        var final = Path.Combine(dir.Path, "blobs");
        Directory.CreateDirectory(final);
        var body = new byte[4096];
        var clock = Stopwatch.StartNew();
        var done = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(() =>
        {
            for (var n = 0; clock.Elapsed < duration; n++)
            {
                var tmp = Path.Combine(dir.Path, $"{worker}-{n}.tmp");
                using (var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
                {
                    file.Write(body);
                    file.Flush(flushToDisk: true);
                }
                File.Move(tmp, Path.Combine(final, $"{worker}-{n}"));
                SyncDirectory(final);
                Interlocked.Increment(ref done);
            }
        })));
        return done / clock.Elapsed.TotalSeconds;
    }

    // ---- s3_list_1m_vs_empty_ratio ------------------------------------------------------------

    /// <summary>
    /// Two engines side by side. The big one's bucket holds 1,000,000 objects (100,000 quick), keys
    /// <c>shard-NNN/obj-NNNNNN</c>, 10,000 per shard; the small one's holds only the 1,001 keys of the
    /// page and the one after it, so both answer the same page, byte for byte: the figure is what the
    /// other objects cost, not what a 1,000-key page costs over an empty one. A third, truly empty
    /// bucket is timed too, for the record. The rows go straight into the stopped engines' databases
    /// with the engine's schema (migration 0009), copies of a real object's row, in one transaction:
    /// a listing reads only metadata, and a million PUTs would outlast the benchmark on two cores.
    /// Sequential ListObjectsV2 calls (max-keys 1000, the middle shard's prefix, a start-after
    /// half-way into it) on one connection each, in alternating batches.
    /// </summary>
    private static async Task ListingAsync(Report report, bool quick)
    {
        var objects = quick ? 100_000 : 1_000_000;
        const int perShard = 10_000;
        var middle = objects / perShard / 2;
        var prefix = $"shard-{middle:D3}/";
        var startAfter = $"{prefix}obj-005000";
        var firstKey = $"{prefix}obj-005001";
        var middleIndex = middle * perShard;

        await using var big = await BenchEngine.StartAsync(null, "--Billing:InitialBalanceUsd=1000000");
        await using var small = await BenchEngine.StartAsync(null, "--Billing:InitialBalanceUsd=1000000");
        var bigTenant = await S3Tenant.CreateAsync(big, "bench-list");
        var smallTenant = await S3Tenant.CreateAsync(small, "bench-list", "bench-empty");
        foreach (var tenant in new[] { bigTenant, smallTenant })
        {
            using var s3 = await tenant.ClientAsync(connections: 1);
            await s3.PutObjectAsync(new PutObjectRequest { BucketName = "bench-list", Key = "template", ContentBody = "a real object's row, copied" });
        }

        var seeding = Stopwatch.StartNew();
        await SeedAsync(big, 0, objects);
        var bigSeconds = seeding.Elapsed.TotalSeconds;
        await SeedAsync(small, middleIndex + 5001, middleIndex + 6002);
        var bigCount = await big.ScalarAsync("SELECT COUNT(*) FROM s3_objects WHERE bucket = 'bench-list'");
        var smallCount = await small.ScalarAsync("SELECT COUNT(*) FROM s3_objects WHERE bucket = 'bench-list'");

        using var bigS3 = await bigTenant.ClientAsync(connections: 1);
        using var smallS3 = await smallTenant.ClientAsync(connections: 1);
        var request = new ListObjectsV2Request { BucketName = "bench-list", Prefix = prefix, StartAfter = startAfter, MaxKeys = 1000 };
        var emptyRequest = new ListObjectsV2Request { BucketName = "bench-empty", Prefix = prefix, StartAfter = startAfter, MaxKeys = 1000 };
        var sides = new[]
        {
            new ListSide(bigS3, request, 1000),
            new ListSide(smallS3, request, 1000),
            new ListSide(smallS3, emptyRequest, 0),
        };
        foreach (var side in sides)
            await side.MeasureAsync(20, firstKey, keep: false); // warm-up

        var batches = quick ? 20 : 40;
        var perBatch = quick ? 10 : 25;
        for (var b = 0; b < batches; b++)
        {
            var order = b % 2 == 0 ? sides : Enumerable.Reverse(sides).ToArray();
            foreach (var side in order)
                await side.MeasureAsync(perBatch, firstKey, keep: true);
        }

        var bigMedian = Load.Percentile(sides[0].Ms, 50);
        var smallMedian = Load.Percentile(sides[1].Ms, 50);
        var emptyMedian = Load.Percentile(sides[2].Ms, 50);
        var method = $"ListObjectsV2 through AWSSDK.S3, max-keys 1000, prefix {prefix} (the middle shard), start-after {startAfter}, " +
                     $"{batches * perBatch} calls per bucket, sequential, alternating batches of {perBatch}. Rows seeded straight into the stopped engines' SQLite databases " +
                     $"with the engine's schema (migration 0009), copies of a real PUT's row, one INSERT … SELECT in one transaction ({bigSeconds:0.0} s for the big one); " +
                     "a listing reads only metadata" + (quick ? "; quick run: 100,000 objects, not 1,000,000" : "");
        report.Add("s3_list_1m_vs_empty_ratio", bigMedian / emptyMedian,
            $"as the issue defines it: the median page with {bigCount:N0} objects in the bucket, {bigMedian:0.0} ms (p90 {Load.Percentile(sides[0].Ms, 90):0.0}) for 1,000 keys, " +
            $"over the same request on an empty bucket, {emptyMedian:0.0} ms (p90 {Load.Percentile(sides[2].Ms, 90):0.0}) for none. It weighs a full page against an empty one, " +
            $"so it measures what 1,000 keys cost to send and parse more than what the other objects cost: s3_list_1m_vs_page_only_ratio measures that. {method}");
        report.Add("s3_list_1m_vs_page_only_ratio", bigMedian / smallMedian,
            $"the same 1,000-key truncated page from two buckets: {bigMedian:0.0} ms with {bigCount:N0} objects in the bucket over {smallMedian:0.0} ms " +
            $"(p90 {Load.Percentile(sides[1].Ms, 90):0.0}) with only the page's {smallCount:N0}; what the other objects cost a listing. {method}");
    }

    private sealed class ListSide(AmazonS3Client s3, ListObjectsV2Request request, int expected)
    {
        public List<double> Ms { get; } = [];

        public async Task MeasureAsync(int calls, string firstKey, bool keep)
        {
            for (var i = 0; i < calls; i++)
            {
                var clock = Stopwatch.StartNew();
                var page = await s3.ListObjectsV2Async(request);
                var ms = clock.Elapsed.TotalMilliseconds;
                var count = page.S3Objects?.Count ?? 0;
                if (count != expected || page.KeyCount != expected || (expected > 0 && (page.S3Objects![0].Key != firstKey || page.IsTruncated != true)))
                    throw new InvalidOperationException($"{request.BucketName}: expected a page of {expected} keys from {firstKey}, truncated; got {count} (KeyCount {page.KeyCount}, first {page.S3Objects?.FirstOrDefault()?.Key}, truncated {page.IsTruncated})");
                if (keep)
                    Ms.Add(ms);
            }
        }
    }

    /// <summary>Copies of the bucket's "template" row under keys [from, to) into the stopped engine's database, then restarts it.</summary>
    private static async Task SeedAsync(BenchEngine engine, int from, int to)
    {
        await engine.StopAsync();
        using (var connection = new SqliteConnection($"Data Source={engine.SqlitePath};Pooling=false"))
        {
            connection.Open();
            using var transaction = connection.BeginTransaction();
            using var seed = connection.CreateCommand();
            seed.Transaction = transaction;
            seed.CommandTimeout = 600;
            seed.CommandText = $"""
                WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to - 1})
                INSERT INTO s3_objects (bucket, key, size, etag, parts_count, content_type, content_encoding, content_disposition, content_language,
                                        cache_control, expires, user_metadata, checksum_algorithm, checksum_value, checksum_type, blob_id, last_modified)
                SELECT t.bucket, printf('shard-%03d/obj-%06d', i / {10_000}, i % {10_000}), t.size, t.etag, t.parts_count, t.content_type, t.content_encoding,
                       t.content_disposition, t.content_language, t.cache_control, t.expires, t.user_metadata, t.checksum_algorithm, t.checksum_value,
                       t.checksum_type, t.blob_id, t.last_modified - i
                FROM n, (SELECT * FROM s3_objects WHERE bucket = 'bench-list' AND key = 'template') t;
                UPDATE s3_buckets SET object_count = (SELECT COUNT(*) FROM s3_objects WHERE bucket = 'bench-list'),
                                      size_bytes = (SELECT SUM(size) FROM s3_objects WHERE bucket = 'bench-list')
                 WHERE name = 'bench-list';
                """;
            seed.ExecuteNonQuery();
            transaction.Commit();
        }
        await engine.RestartAsync();
    }

    // ---- s3_rss_growth_mb_2gib ----------------------------------------------------------------

    /// <summary>
    /// One engine; after a 64 MiB round trip (so the code paths are compiled and the pools exist),
    /// a 2 GiB object (1 GiB quick) is put from a file and got back, while the engine's VmRSS is
    /// sampled every 50 ms. The figure is the highest sample minus the one just before the upload.
    /// The download is read and discarded (counted and hashed), not written: the engine's side is
    /// what is measured, and it saves 2 GiB of disk.
    /// </summary>
    private static async Task MemoryAsync(Report report, bool quick)
    {
        var size = quick ? GiB : 2 * GiB;
        using var work = new TempDir();
        var source = Path.Combine(work.Path, "source.bin");
        var md5 = WriteRandomFile(source, size, seed: 2);
        await using var engine = await BenchEngine.StartAsync(null, "--Billing:InitialBalanceUsd=1000000");
        var tenant = await S3Tenant.CreateAsync(engine, "bench-memory");
        using var s3 = await tenant.ClientAsync(connections: 1);
        await WarmUpAsync(s3, "bench-memory", work.Path);
        await Task.Delay(1000);

        var before = engine.ResidentMegabytes();
        double peakUp = before, peakDown = before;
        var phase = 0; // 0 upload, 1 download
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var rss = engine.ResidentMegabytes();
                if (Volatile.Read(ref phase) == 0)
                    peakUp = Math.Max(peakUp, rss);
                else
                    peakDown = Math.Max(peakDown, rss);
                try
                {
                    await Task.Delay(50, stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });

        var clock = Stopwatch.StartNew();
        var put = await s3.PutObjectAsync(new PutObjectRequest { BucketName = "bench-memory", Key = "big.bin", FilePath = source });
        var upSeconds = clock.Elapsed.TotalSeconds;
        if (put.ETag.Trim('"') != md5)
            throw new InvalidOperationException($"PutObject answered ETag {put.ETag}, the file's MD5 is {md5}");
        Volatile.Write(ref phase, 1);
        clock.Restart();
        long read = 0;
        string downloadedMd5;
        using (var get = await s3.GetObjectAsync("bench-memory", "big.bin"))
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.MD5))
        {
            var buffer = new byte[Buffer];
            int n;
            while ((n = await get.ResponseStream.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                read += n;
            }
            downloadedMd5 = Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        var downSeconds = clock.Elapsed.TotalSeconds;
        var after = engine.ResidentMegabytes();
        await stop.CancelAsync();
        await sampler;
        if (read != size || downloadedMd5 != md5)
            throw new InvalidOperationException($"GetObject gave {read} bytes with MD5 {downloadedMd5}; put {size} with {md5}");
        File.Delete(source);
        await s3.DeleteObjectAsync("bench-memory", "big.bin");

        var peak = Math.Max(peakUp, peakDown);
        report.Add("s3_rss_growth_mb_2gib", peak - before,
            $"engine VmRSS sampled every 50 ms while one {size / GiB} GiB object went up (AWSSDK.S3 PutObject from a file, {tenant.Forms.Describe("PUT")}, {upSeconds:0.0} s) " +
            $"and came back (GetObject, read and hashed, {downSeconds:0.0} s; MD5 matched): {before:0} MB before, peak {peakUp:0} MB during the upload and " +
            $"{peakDown:0} MB during the download, {after:0} MB after; after a 64 MiB round trip to warm up" +
            (quick ? "; quick run: a 1 GiB object, not 2 GiB" : ""));
    }

    // ---- shared -------------------------------------------------------------------------------

    /// <summary>A 64 MiB round trip, not measured: compiles the paths and fills the pools the figures then use.</summary>
    private static async Task WarmUpAsync(AmazonS3Client s3, string bucket, string dir)
    {
        var file = Path.Combine(dir, "warm-up.bin");
        WriteRandomFile(file, 64L * 1024 * 1024, seed: 3);
        await s3.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "warm-up", FilePath = file });
        using (var get = await s3.GetObjectAsync(bucket, "warm-up"))
            await get.ResponseStream.CopyToAsync(Stream.Null);
        await s3.DeleteObjectAsync(bucket, "warm-up");
        File.Delete(file);
    }

    /// <summary>Writes <paramref name="size"/> pseudo-random bytes (incompressible, reproducible) and returns their MD5 (hex).</summary>
    private static string WriteRandomFile(string path, long size, int seed)
    {
        var random = new Random(seed);
        var buffer = new byte[1024 * 1024];
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using (var file = NewFile(path))
        {
            for (long written = 0; written < size; written += buffer.Length)
            {
                random.NextBytes(buffer);
                var n = (int)Math.Min(buffer.Length, size - written);
                file.Write(buffer, 0, n);
                md5.AppendData(buffer, 0, n);
            }
            file.Flush(flushToDisk: true);
        }
        return Convert.ToHexStringLower(md5.GetHashAndReset());
    }

    private static FileStream NewFile(string path) =>
        new(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0, Options = FileOptions.Asynchronous });

    /// <summary>
    /// Copies a file with the engine's buffer size; when <paramref name="durable"/>, as the blob store
    /// commits: into a temporary name, fsync, rename, fsync of the directory. Returns seconds taken.
    /// </summary>
    private static double CopyFile(string from, string to, bool durable)
    {
        var clock = Stopwatch.StartNew();
        var tmp = durable ? to + ".tmp" : to;
        var buffer = new byte[Buffer];
        using (var input = new FileStream(from, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.SequentialScan))
        using (var output = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
        {
            int n;
            while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
                output.Write(buffer, 0, n);
            if (durable)
                output.Flush(flushToDisk: true);
        }
        if (durable)
        {
            File.Move(tmp, to);
            SyncDirectory(Path.GetDirectoryName(to)!);
        }
        return clock.Elapsed.TotalSeconds;
    }

    private static bool SameBytes(string a, string b)
    {
        using var x = new FileStream(a, FileMode.Open, FileAccess.Read, FileShare.Read, Buffer);
        using var y = new FileStream(b, FileMode.Open, FileAccess.Read, FileShare.Read, Buffer);
        if (x.Length != y.Length)
            return false;
        var bx = new byte[Buffer];
        var by = new byte[Buffer];
        int n;
        while ((n = x.ReadAtLeast(bx, bx.Length, throwOnEndOfStream: false)) > 0)
        {
            if (y.ReadAtLeast(by, n, throwOnEndOfStream: false) != n || !bx.AsSpan(0, n).SequenceEqual(by.AsSpan(0, n)))
                return false;
        }
        return true;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc")]
    private static extern int close(int fd);

    [DllImport("libc")]
    private static extern void sync();

    /// <summary>fsync of a directory (what makes a rename durable); .NET opens no directory handles, so libc does.</summary>
    private static void SyncDirectory(string dir)
    {
        const int readOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY on Linux
        var fd = open(dir, readOnlyDirectory);
        if (fd < 0)
            throw new IOException($"open of {dir} failed: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (fsync(fd) != 0)
                throw new IOException($"fsync of {dir} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>Writes every dirty page back (untimed), so the next timed step starts on a quiet disk.</summary>
    private static void SyncAll() => sync();
}
