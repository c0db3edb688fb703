using System.Runtime.InteropServices;
using OpenPool.Engine.Data;

namespace OpenPool.Engine.ObjectStorage.Blobs;

/// <summary>
/// Blobs as files under one root: <c>tmp/</c> for blobs being written, <c>blobs/xy/&lt;id&gt;</c> for
/// committed ones. A write goes to a temporary file, is fsynced, then renamed into place (rename is
/// atomic on one filesystem) and the directory fsynced, so a crash leaves either nothing under the id
/// or the whole blob. Ids are checked against the engine's own alphabet before they touch a path.
/// </summary>
internal sealed class FileSystemBlobStore : IBlobStore
{
    private const int IdLength = 26;
    private readonly string _blobs;
    private readonly string _tmp;

    public FileSystemBlobStore(string root)
    {
        Root = Path.GetFullPath(root);
        _blobs = Path.Combine(Root, "blobs");
        _tmp = Path.Combine(Root, "tmp");
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_tmp);
    }

    public string Root { get; }

    public BlobWriter Create()
    {
        var id = "b" + Ids.Random(IdLength - 1);
        return new Writer(this, id, Path.Combine(_tmp, id + ".tmp"));
    }

    public Stream OpenRead(string blobId) =>
        new FileStream(PathOf(blobId), new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read | FileShare.Delete, BufferSize = 0, Options = FileOptions.Asynchronous | FileOptions.SequentialScan });

    public void Delete(string blobId)
    {
        try
        {
            File.Delete(PathOf(blobId));
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    public IEnumerable<string> ListCommitted(DateTimeOffset olderThan)
    {
        foreach (var dir in Directory.EnumerateDirectories(_blobs))
        {
            foreach (var file in Directory.EnumerateFiles(dir))
            {
                var name = Path.GetFileName(file);
                if (IsBlobId(name) && File.GetLastWriteTimeUtc(file) < olderThan.UtcDateTime)
                    yield return name;
            }
        }
    }

    public int RemoveAbandonedTemporaries(DateTimeOffset olderThan)
    {
        var removed = 0;
        foreach (var file in Directory.EnumerateFiles(_tmp))
        {
            if (File.GetLastWriteTimeUtc(file) >= olderThan.UtcDateTime)
                continue;
            try
            {
                File.Delete(file);
                removed++;
            }
            catch (IOException)
            {
            }
        }
        return removed;
    }

    private string PathOf(string blobId)
    {
        if (!IsBlobId(blobId))
            throw new ArgumentException("Not a blob id.", nameof(blobId));
        return Path.Combine(_blobs, blobId.Substring(1, 2), blobId);
    }

    private static bool IsBlobId(string value) =>
        value.Length == IdLength && value[0] == 'b' && value.All(ch => ch is (>= 'a' and <= 'z') or (>= '0' and <= '9'));

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    /// <summary>Makes a rename durable: the directory entry, not only the file, must reach the disk.</summary>
    private static void SyncDirectory(string dir)
    {
        // .NET opens no directory handles, so libc's open(O_RDONLY) does.
        if (!OperatingSystem.IsLinux())
            return;
        var fd = open(dir, 0);
        if (fd < 0)
            return;
        _ = fsync(fd);
        _ = close(fd);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int sync_file_range(int fd, long offset, long nbytes, uint flags);

    private const uint SyncFileRangeWrite = 2; // SYNC_FILE_RANGE_WRITE: start writeback, do not wait

    private sealed class Writer(FileSystemBlobStore store, string id, string tmpPath) : BlobWriter
    {
        private readonly FileStream _file = new(tmpPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0, Options = FileOptions.Asynchronous,
        });
        private WritebackStream? _stream;
        private bool _committed;

        public override string BlobId => id;

        public override Stream Stream => _stream ??= new WritebackStream(_file);

        public override async Task CommitAsync(CancellationToken ct)
        {
            await _file.FlushAsync(ct);
            _file.Flush(flushToDisk: true);
            await _file.DisposeAsync();
            var final = store.PathOf(id);
            var dir = Path.GetDirectoryName(final)!;
            Directory.CreateDirectory(dir);
            File.Move(tmpPath, final);
            SyncDirectory(dir);
            _committed = true;
        }

        public override async ValueTask DisposeAsync()
        {
            await _file.DisposeAsync();
            if (!_committed)
            {
                try
                {
                    File.Delete(tmpPath);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    /// <summary>
    /// Writes through to the blob's file and, every few megabytes, asks the kernel to start writing
    /// what came before to the disk. The commit's fsync then waits for the last stretch only, instead
    /// of the whole object sitting in the page cache until the end (a 1 GiB upload's fsync otherwise
    /// costs as long again as its transfer). Writeback is only started, never waited for, so a slow
    /// disk does not slow the transfer until the kernel's own dirty limits would.
    /// </summary>
    private sealed class WritebackStream(FileStream file) : Stream
    {
        private const long WritebackEvery = 8 * 1024 * 1024;
        private long _written;
        private long _flushedUpTo;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => file.Length;
        public override long Position { get => file.Position; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            file.Write(buffer);
            Advance(buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await file.WriteAsync(buffer, cancellationToken);
            Advance(buffer.Length);
        }

        private void Advance(int count)
        {
            _written += count;
            if (!OperatingSystem.IsLinux() || _written - _flushedUpTo < WritebackEvery)
                return;
            // Best effort: a filesystem that refuses it (EINVAL, ESPIPE) just leaves it all to fsync.
            _ = sync_file_range((int)file.SafeFileHandle.DangerousGetHandle(), _flushedUpTo, _written - _flushedUpTo, SyncFileRangeWrite);
            _flushedUpTo = _written;
        }

        public override void Flush() => file.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => file.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
