using System.Diagnostics;
using System.IO.Enumeration;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OpenPool.Engine.Providers.Simulated;

/// <summary>
/// Reads a tree that a tenant controls (a job's working directory) without ever leaving it: every
/// path is resolved by the kernel beneath an open directory (openat2 with RESOLVE_BENEATH), so a
/// symbolic link, a <c>..</c> or a directory swapped for a link while we look cannot lead elsewhere,
/// and walking never follows a link at all (no loops). The engine reads these files with its own
/// rights, which is why no path check of our own is trusted here.
/// </summary>
internal sealed class BeneathDirectory : IDisposable
{
    private readonly SafeFileHandle _root;

    private BeneathDirectory(SafeFileHandle root) => _root = root;

    /// <summary>
    /// Opens <paramref name="relative"/> beneath <paramref name="trustedParent"/> (a directory only the
    /// engine can change), refusing any symbolic link on the way; null when it is not a directory there.
    /// </summary>
    public static BeneathDirectory? Open(string trustedParent, string relative)
    {
        using var parent = OpenAt(AtFdCwd, trustedParent, Flags.Directory | Flags.NoFollow, 0);
        if (parent is null)
            return null;
        var root = OpenAt(parent, relative, Flags.Directory | Flags.NoFollow, Resolve.Beneath | Resolve.NoSymlinks | Resolve.NoMagicLinks);
        return root is null ? null : new BeneathDirectory(root);
    }

    /// <summary>Opens a regular file for reading, resolving links only as long as they stay inside; null otherwise.</summary>
    public FileStream? OpenFile(string relative)
    {
        // O_NONBLOCK: opening a named pipe must not hang the request; it is refused below anyway.
        var handle = OpenAt(_root, relative, Flags.NonBlock, Resolve.Beneath | Resolve.NoMagicLinks);
        if (handle is null)
            return null;
        if (!IsRegularFile(handle))
        {
            handle.Dispose();
            return null;
        }
        return new FileStream(handle, FileAccess.Read, 81920);
    }

    /// <summary>
    /// Every file and symbolic link beneath the root, and every directory, as '/'-separated relative
    /// paths; links are listed, never followed. Stops after <paramref name="maxEntries"/>
    /// entries or <paramref name="budget"/>, whichever comes first (<c>Complete</c> is false then).
    /// </summary>
    public (List<string> Files, HashSet<string> Directories, bool Complete) Walk(int maxEntries, TimeSpan budget, CancellationToken ct)
    {
        var files = new List<string>();
        var directories = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push("");
        var clock = Stopwatch.StartNew();
        var seen = 0;
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            var relative = pending.Pop();
            using var directory = relative.Length == 0
                ? null
                : OpenAt(_root, relative, Flags.Directory | Flags.NoFollow, Resolve.Beneath | Resolve.NoSymlinks | Resolve.NoMagicLinks);
            if (relative.Length > 0 && directory is null)
                continue; // replaced by something else since it was listed
            var fd = (directory ?? _root).DangerousGetHandle().ToInt32();
            // The /proc/self/fd link names the very directory we opened, whatever its path says now.
            var enumerable = new FileSystemEnumerable<(string Name, bool IsDirectory, bool IsLink)>($"/proc/self/fd/{fd}",
                (ref FileSystemEntry e) => (e.FileName.ToString(), e.IsDirectory, (e.Attributes & FileAttributes.ReparsePoint) != 0),
                new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = true, ReturnSpecialDirectories = false });
            foreach (var (name, isDirectory, isLink) in enumerable)
            {
                if (++seen > maxEntries || clock.Elapsed > budget)
                    return (files, directories, false);
                var path = relative.Length == 0 ? name : relative + "/" + name;
                if (isDirectory && !isLink)
                {
                    directories.Add(path);
                    pending.Push(path);
                }
                else
                {
                    files.Add(path);
                }
            }
        }
        return (files, directories, true);
    }

    public void Dispose() => _root.Dispose();

    private static bool IsRegularFile(SafeFileHandle handle)
    {
        var buffer = new byte[256];
        if (Statx(handle.DangerousGetHandle().ToInt32(), "", AtEmptyPath, StatxType, buffer) != 0)
            return false;
        var mode = BitConverter.ToUInt16(buffer, 28); // struct statx: stx_mode
        return (mode & 0xF000) == 0x8000; // S_IFREG
    }

    private static SafeFileHandle? OpenAt(SafeFileHandle directory, string path, Flags flags, Resolve resolve) =>
        OpenAt(directory.DangerousGetHandle().ToInt32(), path, flags, resolve);

    private static SafeFileHandle? OpenAt(int directoryFd, string path, Flags flags, Resolve resolve)
    {
        var how = new OpenHow { Flags = (ulong)(NativeFlags(flags) | OCloexec), Mode = 0, Resolve = (ulong)resolve };
        var fd = OpenAt2(OpenAt2Syscall, directoryFd, path.Length == 0 ? "." : path, ref how, (nuint)Marshal.SizeOf<OpenHow>());
        return fd < 0 ? null : new SafeFileHandle((IntPtr)fd, ownsHandle: true);
    }

    // O_ flag values differ between architectures; the engine runs on x64 and arm64.
    private static int NativeFlags(Flags flags)
    {
        var arm = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        var value = 0;
        if (flags.HasFlag(Flags.Directory))
            value |= arm ? 0x4000 : 0x10000;
        if (flags.HasFlag(Flags.NoFollow))
            value |= arm ? 0x8000 : 0x20000;
        if (flags.HasFlag(Flags.NonBlock))
            value |= 0x800;
        return value;
    }

    [Flags]
    private enum Flags
    {
        None = 0,
        Directory = 1,
        NoFollow = 2,
        NonBlock = 4,
    }

    [Flags]
    private enum Resolve : ulong
    {
        NoMagicLinks = 0x02,
        NoSymlinks = 0x04,
        Beneath = 0x08,
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    private const int AtFdCwd = -100;
    private const int OCloexec = 0x80000;
    private const long OpenAt2Syscall = 437; // the same number on every architecture
    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern int OpenAt2(long number, int directoryFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, ref OpenHow how, nuint size);

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int directoryFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
