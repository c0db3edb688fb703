using System.Formats.Tar;
using System.IO.Compression;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// Rewrites an uploaded project (a gzipped tar the tenant made) into a plain tar holding only what
/// may be unpacked: directories, regular files and symbolic links, with permission bits only (no
/// setuid, setgid or sticky), names inside the project (no absolute names, no <c>..</c>, nothing
/// through a link the archive made), hard links only to files it already holds, nothing the job's
/// ignore rules leave out, and no more than the unpacked-size limit. The result is fed to a
/// <c>tar -x</c> that runs inside the node's sandbox as the node's user, so even a mistake here could
/// not write outside what that user may write.
/// </summary>
internal static class ProjectArchive
{
    /// <summary>Entries an archive may hold at most; each costs a file on the node.</summary>
    public const int MaxEntries = 200_000;

    private const UnixFileMode PermissionBits = (UnixFileMode)0x1FF; // rwxrwxrwx

    /// <summary>Copies the archive's safe entries to <paramref name="destination"/> as an uncompressed tar.</summary>
    /// <returns>One line per entry that was left out for a reason the job's owner should see.</returns>
    /// <exception cref="JobStartException">The archive is not a gzipped tar, or unpacks beyond the limits.</exception>
    public static async Task<IReadOnlyList<string>> SanitizeAsync(Stream gzippedTar, Stream destination, Func<string, bool, bool> isIgnored,
        long maxUnpackedBytes, CancellationToken ct)
    {
        var notes = new List<string>();
        var written = new HashSet<string>(StringComparer.Ordinal);
        var links = new HashSet<string>(StringComparer.Ordinal);
        var ignoredDirectories = new HashSet<string>(StringComparer.Ordinal);
        long unpacked = 0;
        var entries = 0;
        try
        {
            await using var gzip = new GZipStream(gzippedTar, CompressionMode.Decompress, leaveOpen: true);
            await using var reader = new TarReader(gzip, leaveOpen: true);
            await using var writer = new TarWriter(destination, TarEntryFormat.Pax, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
            {
                if (++entries > MaxEntries)
                    throw new JobStartException($"The project holds more than {MaxEntries} entries; add what the job does not need to 'ignore'.");
                var name = Normalize(entry.Name);
                if (name is null)
                {
                    if (!IsRoot(entry.Name))
                        notes.Add($"skipped {Printable(entry.Name)}: a name outside the project");
                    continue;
                }
                var isDirectory = entry.EntryType == TarEntryType.Directory;
                if (ParentsOf(name).Any(links.Contains))
                {
                    notes.Add($"skipped {Printable(name)}: its path goes through a symbolic link in the archive");
                    continue;
                }
                if (ParentsOf(name).Any(ignoredDirectories.Contains) || isIgnored(name, isDirectory))
                {
                    if (isDirectory)
                        ignoredDirectories.Add(name);
                    continue;
                }

                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        // The owner must be able to write into its own directories, or later entries fail.
                        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, name)
                        {
                            Mode = (entry.Mode & PermissionBits) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
                            ModificationTime = entry.ModificationTime,
                        }, ct);
                        written.Add(name);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        unpacked += entry.Length;
                        if (unpacked > maxUnpackedBytes)
                            throw new JobStartException(
                                $"The project unpacks to more than {maxUnpackedBytes / (1024 * 1024)} MB (Jobs:MaxUnpackedBytes); add large files to 'ignore'.");
                        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name)
                        {
                            Mode = entry.Mode & PermissionBits,
                            ModificationTime = entry.ModificationTime,
                            DataStream = entry.DataStream is { } data ? new KnownLengthStream(data, entry.Length) : null,
                        }, ct);
                        written.Add(name);
                        break;
                    case TarEntryType.SymbolicLink:
                        // A project's own links (a venv's python, a link to /usr/bin/python3) stay links,
                        // as tar -x keeps them; nothing later in the archive may be written through one.
                        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, name)
                        {
                            LinkName = entry.LinkName,
                            ModificationTime = entry.ModificationTime,
                        }, ct);
                        links.Add(name);
                        written.Add(name);
                        break;
                    case TarEntryType.HardLink:
                        var target = Normalize(entry.LinkName);
                        if (target is null || !written.Contains(target) || links.Contains(target))
                        {
                            notes.Add($"skipped {Printable(name)}: a hard link to a file that is not in the project");
                            continue;
                        }
                        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target }, ct);
                        written.Add(name);
                        break;
                    default:
                        notes.Add($"skipped {Printable(name)}: {Describe(entry.EntryType)} entries are not unpacked");
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw new JobStartException("The uploaded project is not a valid .tar.gz archive: " + FirstLine(ex.Message));
        }
        // TarWriter writes nothing at all for no entries, which tar refuses; an empty project is an
        // archive of just its end (two zero blocks).
        if (written.Count == 0)
            await destination.WriteAsync(new byte[1024], ct);
        return notes;
    }

    /// <summary>The entry's path inside the project ('/'-separated, no '.' parts), or null for the root or a name that leaves it.</summary>
    internal static string? Normalize(string name)
    {
        var parts = new List<string>();
        foreach (var part in name.Replace('\\', '/').Split('/'))
        {
            if (part.Length == 0 || part == ".")
                continue;
            if (part == ".." || part.Contains('\0', StringComparison.Ordinal))
                return null;
            parts.Add(part);
        }
        if (name.StartsWith('/'))
            return null; // an absolute name is not the project's, whatever it would resolve to
        return parts.Count == 0 ? null : string.Join('/', parts);
    }

    private static bool IsRoot(string name) => name.Trim('/').Split('/').All(p => p is "" or ".");

    private static IEnumerable<string> ParentsOf(string name)
    {
        for (var slash = name.IndexOf('/', StringComparison.Ordinal); slash > 0; slash = name.IndexOf('/', slash + 1))
            yield return name[..slash];
    }

    private static string Describe(TarEntryType type) => type switch
    {
        TarEntryType.CharacterDevice => "character device",
        TarEntryType.BlockDevice => "block device",
        TarEntryType.Fifo => "named pipe",
        _ => type.ToString(),
    };

    /// <summary>A name as it can be shown in the job's output: control characters escaped.</summary>
    private static string Printable(string name) =>
        string.Concat(name.Select(c => char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString()));

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    /// <summary>
    /// An entry's data as it streams out of the upload, presented as seekable with its known length:
    /// TarWriter will not copy an unseekable entry into an unseekable archive (the pipe to tar), though
    /// it only needs the length, which the entry's header already gave.
    /// </summary>
    private sealed class KnownLengthStream(Stream inner, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set
            {
                if (value != _position)
                    throw new NotSupportedException("an upload's entry is read once, in order");
            }
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, (int)Math.Min(count, length - _position));
            _position += read;
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, length - _position)], cancellationToken);
            _position += read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) =>
            origin == SeekOrigin.Current && offset == 0 ? _position : throw new NotSupportedException("an upload's entry is read once, in order");

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
