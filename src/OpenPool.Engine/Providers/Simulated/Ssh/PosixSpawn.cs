using System.Runtime.InteropServices;

namespace OpenPool.Engine.Providers.Simulated.Ssh;

/// <summary>
/// Starts a program whose descriptors 0, 1, … are ones the engine chose (an accepted socket among
/// them), in a session of its own, with default signal handling. .NET's <c>Process</c> can only give a
/// child pipes it makes itself, so this calls glibc's posix_spawn directly.
/// </summary>
internal static class PosixSpawn
{
    private const short SetSignalDefaults = 0x04, SetSignalMask = 0x08, SetSession = 0x80; // glibc's POSIX_SPAWN_* values
    private const int DuplicateCloseOnExec = 1030; // F_DUPFD_CLOEXEC
    private const int CloseOnExecFlag = 0x80000; // O_CLOEXEC
    private const int NoHang = 1; // WNOHANG
    // Larger than glibc's posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336) and sigset_t (128) on every Linux ABI.
    private const int OpaqueSize = 1024;

    private static bool _closeFromMissing;

    /// <summary>
    /// Starts <paramref name="argv"/>[0] (an absolute path) with <paramref name="descriptors"/>[i] as
    /// its descriptor i and no other descriptor of the engine's; the caller keeps (and closes) its own.
    /// </summary>
    /// <returns>The child's pid; the caller must reap it (<see cref="TryReap"/>).</returns>
    /// <exception cref="IOException">posix_spawn failed; the message has the errno.</exception>
    public static int Start(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, IReadOnlyList<int> descriptors)
    {
        // A source descriptor numbered below the targets would be overwritten by an earlier dup2
        // before it is read, so every source is first copied above them.
        var raised = new List<int>(descriptors.Count);
        var fileActions = Marshal.AllocHGlobal(OpaqueSize);
        var attributes = Marshal.AllocHGlobal(OpaqueSize);
        var emptySet = Marshal.AllocHGlobal(OpaqueSize);
        var fullSet = Marshal.AllocHGlobal(OpaqueSize);
        var strings = new List<IntPtr>();
        try
        {
            foreach (var fd in descriptors)
            {
                var copy = Fcntl(fd, DuplicateCloseOnExec, descriptors.Count + 10);
                if (copy < 0)
                    throw new IOException($"fcntl(F_DUPFD_CLOEXEC) failed (errno {Marshal.GetLastPInvokeError()})");
                raised.Add(copy);
            }
            Check(FileActionsInit(fileActions), "posix_spawn_file_actions_init");
            Check(AttributesInit(attributes), "posix_spawnattr_init");
            try
            {
                for (var target = 0; target < raised.Count; target++)
                    Check(AddDup2(fileActions, raised[target], target), "posix_spawn_file_actions_adddup2");
                AddCloseFrom(fileActions, raised.Count);
                Check(SignalEmptySet(emptySet), "sigemptyset");
                Check(SignalFillSet(fullSet), "sigfillset");
                // The engine's runtime ignores SIGPIPE and blocks some signals on its threads; a login
                // and everything it starts must see the defaults a shell on a machine has.
                Check(SetSignalMaskAttribute(attributes, emptySet), "posix_spawnattr_setsigmask");
                Check(SetSignalDefaultAttribute(attributes, fullSet), "posix_spawnattr_setsigdefault");
                Check(SetFlags(attributes, SetSignalDefaults | SetSignalMask | SetSession), "posix_spawnattr_setflags");

                var args = new IntPtr[argv.Count + 1];
                for (var i = 0; i < argv.Count; i++)
                    strings.Add(args[i] = Marshal.StringToCoTaskMemUTF8(argv[i]));
                var env = new IntPtr[environment.Count + 1];
                var index = 0;
                foreach (var (name, value) in environment)
                    strings.Add(env[index++] = Marshal.StringToCoTaskMemUTF8($"{name}={value}"));
                var error = Spawn(out var pid, argv[0], fileActions, attributes, args, env);
                if (error != 0)
                    throw new IOException($"posix_spawn of {argv[0]} failed (errno {error})");
                return pid;
            }
            finally
            {
                _ = FileActionsDestroy(fileActions);
                _ = AttributesDestroy(attributes);
            }
        }
        finally
        {
            foreach (var copy in raised)
                _ = Close(copy);
            foreach (var text in strings)
                Marshal.FreeCoTaskMem(text);
            Marshal.FreeHGlobal(fileActions);
            Marshal.FreeHGlobal(attributes);
            Marshal.FreeHGlobal(emptySet);
            Marshal.FreeHGlobal(fullSet);
        }
    }

    /// <summary>Collects the child if it has exited (so it leaves no zombie); true when it is gone.</summary>
    public static bool TryReap(int pid)
    {
        var result = WaitPid(pid, out _, NoHang);
        // -1 is ECHILD: someone else reaped it (an engine started with SIGCHLD ignored reaps everything).
        return result == pid || result < 0;
    }

    /// <summary>A pipe whose two ends are close-on-exec (a child gets one only through <see cref="Start"/>).</summary>
    public static (int Read, int Write) Pipe()
    {
        var fds = new int[2];
        if (Pipe2(fds, CloseOnExecFlag) != 0)
            throw new IOException($"pipe2 failed (errno {Marshal.GetLastPInvokeError()})");
        return (fds[0], fds[1]);
    }

    /// <summary>A copy of <paramref name="fd"/> the engine owns (close-on-exec), to close with <see cref="CloseDescriptor"/>.</summary>
    public static int Duplicate(int fd)
    {
        var copy = Fcntl(fd, DuplicateCloseOnExec, 3);
        return copy >= 0 ? copy : throw new IOException($"fcntl(F_DUPFD_CLOEXEC) failed (errno {Marshal.GetLastPInvokeError()})");
    }

    public static void CloseDescriptor(int fd) => _ = Close(fd);

    public static int Signal(int pid, int signal) => Kill(pid, signal);

    private static void AddCloseFrom(IntPtr fileActions, int lowest)
    {
        // Everything the engine opens is close-on-exec already; closefrom also covers a descriptor a
        // library opened without it. glibc before 2.34 lacks it.
        if (_closeFromMissing)
            return;
        try
        {
            Check(AddCloseFromNp(fileActions, lowest), "posix_spawn_file_actions_addclosefrom_np");
        }
        catch (EntryPointNotFoundException)
        {
            _closeFromMissing = true;
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
            throw new IOException($"{call} failed ({result})");
    }

    [DllImport("libc", EntryPoint = "posix_spawn")]
    private static extern int Spawn(out int pid, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr fileActions, IntPtr attributes, IntPtr[] argv, IntPtr[] envp);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static extern int FileActionsInit(IntPtr fileActions);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static extern int FileActionsDestroy(IntPtr fileActions);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static extern int AddDup2(IntPtr fileActions, int fd, int newFd);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    private static extern int AddCloseFromNp(IntPtr fileActions, int lowest);

    [DllImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static extern int AttributesInit(IntPtr attributes);

    [DllImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static extern int AttributesDestroy(IntPtr attributes);

    [DllImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static extern int SetFlags(IntPtr attributes, short flags);

    [DllImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static extern int SetSignalMaskAttribute(IntPtr attributes, IntPtr set);

    [DllImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static extern int SetSignalDefaultAttribute(IntPtr attributes, IntPtr set);

    [DllImport("libc", EntryPoint = "sigemptyset")]
    private static extern int SignalEmptySet(IntPtr set);

    [DllImport("libc", EntryPoint = "sigfillset")]
    private static extern int SignalFillSet(IntPtr set);

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, int argument);

    [DllImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static extern int Pipe2([Out] int[] fds, int flags);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static extern int WaitPid(int pid, out int status, int options);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
