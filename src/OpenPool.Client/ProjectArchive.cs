using System.Formats.Tar;
using System.IO.Compression;
using OpenPool.Engine.Jobs;

namespace OpenPool.Client;

/// <summary>
/// Packs a project directory as a .tar.gz, leaving out what the job's ignore list leaves out with
/// <c>.gitignore</c> rules, the same rules the engine applies when it unpacks: "name" at any depth,
/// "/name" or "a/b" from the project root, "dir/" directories only, "!pattern" re-includes, "**" any
/// number of directories; nothing below an ignored directory is visited or re-included.
/// </summary>
public static class ProjectArchive
{
    /// <summary>Writes the archive of <paramref name="directory"/> to <paramref name="destination"/>.</summary>
    public static async Task WriteAsync(string directory, IReadOnlyList<string> ignore, Stream destination, CancellationToken cancellationToken = default)
    {
        var rules = IgnoreRules.Parse(ignore);
        var root = Path.GetFullPath(directory);
        await using var gzip = new GZipStream(destination, CompressionLevel.Fastest, leaveOpen: true);
        await using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true);
        await AddDirectoryAsync(tar, root, root, rules, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether a project-relative path (with '/') is left out by the patterns, itself or through one
    /// of its parent directories. A symbolic link is not a directory here.
    /// </summary>
    public static bool IsIgnored(string relativePath, bool isDirectory, IReadOnlyList<string> patterns) =>
        IgnoreRules.Parse(patterns).IsIgnoredWithParents(relativePath, isDirectory);

    private static async Task AddDirectoryAsync(TarWriter tar, string root, string directory, IgnoreRules rules, CancellationToken ct)
    {
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(root, entry.FullName).Replace('\\', '/');
            var isDirectory = entry is DirectoryInfo && entry.LinkTarget is null;
            // The parent was kept (ignored directories are not entered), as IsIgnored expects.
            if (rules.IsIgnored(relative, isDirectory))
                continue;
            if (isDirectory)
            {
                await tar.WriteEntryAsync(entry.FullName, "./" + relative + "/", ct).ConfigureAwait(false);
                await AddDirectoryAsync(tar, root, entry.FullName, rules, ct).ConfigureAwait(false);
            }
            else
            {
                await tar.WriteEntryAsync(entry.FullName, "./" + relative, ct).ConfigureAwait(false);
            }
        }
    }
}
