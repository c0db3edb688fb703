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

    private sealed class Writer(FileSystemBlobStore store, string id, string tmpPath) : BlobWriter
    {
        private readonly FileStream _file = new(tmpPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0, Options = FileOptions.Asynchronous,
        });
        private bool _committed;

        public override string BlobId => id;

        public override Stream Stream => _file;

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
}
