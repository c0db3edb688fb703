using System.Formats.Tar;
using System.IO.Compression;
using System.IO.Enumeration;

namespace OpenPool.Client;

/// <summary>
/// Packs a project directory as a .tar.gz the way <c>tar --exclude</c> would with the job's ignore
/// list: a pattern without '/' matches any path component ("__pycache__", "*.pyc", ".venv"); a
/// pattern with '/' matches a path from the project root ("data/raw"). A trailing '/' is ignored.
/// </summary>
public static class ProjectArchive
{
    /// <summary>Writes the archive of <paramref name="directory"/> to <paramref name="destination"/>.</summary>
    public static async Task WriteAsync(string directory, IReadOnlyList<string> ignore, Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ignore);
        var root = Path.GetFullPath(directory);
        var patterns = ignore.Select(p => p.Trim().TrimEnd('/')).Where(p => p.Length > 0).Select(p => p.StartsWith("./", StringComparison.Ordinal) ? p[2..] : p).ToList();
        await using var gzip = new GZipStream(destination, CompressionLevel.Fastest, leaveOpen: true);
        await using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true);
        await AddDirectoryAsync(tar, root, root, patterns, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether a project-relative path (with '/') is left out by the patterns.</summary>
    public static bool IsIgnored(string relativePath, IReadOnlyList<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        ArgumentNullException.ThrowIfNull(patterns);
        var components = relativePath.Split('/');
        foreach (var raw in patterns)
        {
            var pattern = raw.Trim().TrimEnd('/');
            if (pattern.Length == 0)
                continue;
            if (pattern.Contains('/', StringComparison.Ordinal))
            {
                if (FileSystemName.MatchesSimpleExpression(pattern, relativePath) || relativePath.StartsWith(pattern + "/", StringComparison.Ordinal))
                    return true;
            }
            else if (components.Any(c => FileSystemName.MatchesSimpleExpression(pattern, c, ignoreCase: false)))
            {
                return true;
            }
        }
        return false;
    }

    private static async Task AddDirectoryAsync(TarWriter tar, string root, string directory, List<string> patterns, CancellationToken ct)
    {
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(root, entry.FullName).Replace('\\', '/');
            if (IsIgnored(relative, patterns))
                continue;
            if (entry is DirectoryInfo sub && entry.LinkTarget is null)
            {
                await tar.WriteEntryAsync(entry.FullName, "./" + relative + "/", ct).ConfigureAwait(false);
                await AddDirectoryAsync(tar, root, sub.FullName, patterns, ct).ConfigureAwait(false);
            }
            else
            {
                await tar.WriteEntryAsync(entry.FullName, "./" + relative, ct).ConfigureAwait(false);
            }
        }
    }
}
