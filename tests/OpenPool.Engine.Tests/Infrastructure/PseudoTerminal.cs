using System.Runtime.InteropServices;
using System.Text;

namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>
/// A program run on a pseudo-terminal the test owns, as a user runs it in a terminal emulator: the
/// program is a session leader whose controlling terminal is the pty's slave (so it gets SIGWINCH
/// when the window changes), and the test holds the master: it types with <see cref="Type"/>, reads
/// everything the program draws, and sets the window size. Independent of the engine's code: glibc's
/// posix_openpt and posix_spawn, called directly.
/// </summary>
internal sealed class PseudoTerminal : IDisposable
{
    private const int ReadWrite = 2, NoControllingTerminal = 0x100, CloseOnExec = 0x80000; // O_RDWR, O_NOCTTY, O_CLOEXEC
    private const ulong SetWindowSize = 0x5414; // TIOCSWINSZ
    private const short SetSignalDefaults = 0x04, SetSignalMask = 0x08, SetSession = 0x80; // glibc's POSIX_SPAWN_*
    private const int Interrupted = 4; // EINTR
    private const int OpaqueSize = 1024; // above glibc's posix_spawn_file_actions_t, posix_spawnattr_t and sigset_t

    private readonly int _master;
    private readonly int _pid;
    private readonly StringBuilder _screen = new();
    private readonly Thread _reader;
    private readonly Task<int> _exit;
    private int _cursor;
    private bool _disposed;

    private PseudoTerminal(int master, int pid)
    {
        _master = master;
        _pid = pid;
        _reader = new Thread(ReadAll) { IsBackground = true, Name = "pty reader" };
        _reader.Start();
        _exit = Task.Factory.StartNew(WaitForExit, TaskCreationOptions.LongRunning);
    }

    /// <summary>Starts <paramref name="argv"/> (argv[0] found on the test's PATH) on a new pty of <paramref name="rows"/> × <paramref name="columns"/>.</summary>
    public static PseudoTerminal Start(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, ushort rows, ushort columns)
    {
        var master = OpenMaster(ReadWrite | NoControllingTerminal | CloseOnExec);
        if (master < 0)
            throw new IOException($"posix_openpt failed (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (GrantSlave(master) != 0 || UnlockSlave(master) != 0)
                throw new IOException($"grantpt/unlockpt failed (errno {Marshal.GetLastPInvokeError()})");
            var name = new byte[256];
            if (SlaveName(master, name, (nuint)name.Length) != 0)
                throw new IOException("ptsname_r failed");
            var slave = Encoding.ASCII.GetString(name, 0, Array.IndexOf(name, (byte)0));
            Resize(master, rows, columns);
            return new PseudoTerminal(master, Spawn(argv, environment, slave));
        }
        catch
        {
            _ = Close(master);
            throw;
        }
    }

    /// <summary>The program's exit code (128 + the signal when a signal ended it).</summary>
    public Task<int> Exited => _exit;

    /// <summary>Everything the program wrote to the terminal so far.</summary>
    public string Screen
    {
        get
        {
            lock (_screen)
                return _screen.ToString();
        }
    }

    /// <summary>Sends keys as a user types them (no newline is added: a Return is "\r").</summary>
    public void Type(string keys)
    {
        var bytes = Encoding.UTF8.GetBytes(keys);
        var written = 0;
        while (written < bytes.Length)
        {
            var n = Write(_master, bytes[written..], bytes.Length - written);
            if (n < 0 && Marshal.GetLastPInvokeError() == Interrupted)
                continue;
            if (n <= 0)
                throw new IOException($"write to the pty failed (errno {Marshal.GetLastPInvokeError()})");
            written += (int)n;
        }
    }

    /// <summary>Changes the window size, as a terminal emulator does when its window is resized (the kernel sends SIGWINCH).</summary>
    public void Resize(ushort rows, ushort columns) => Resize(_master, rows, columns);

    /// <summary>
    /// Waits until <paramref name="text"/> appears in what the program wrote after the previous match,
    /// and moves past it; fails with the screen so far when it does not come within <paramref name="timeout"/>.
    /// </summary>
    public async Task<string> WaitForAsync(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            string screen;
            lock (_screen)
                screen = _screen.ToString();
            var at = screen.IndexOf(text, _cursor, StringComparison.Ordinal);
            if (at >= 0)
            {
                var seen = screen[_cursor..(at + text.Length)];
                _cursor = at + text.Length;
                return seen;
            }
            if (DateTime.UtcNow > deadline || (_exit.IsCompleted && !_reader.IsAlive))
                Assert.Fail($"\"{text}\" did not appear on the terminal{(_exit.IsCompleted ? $" (the program exited with {_exit.Result})" : "")}; after the last match it showed:\n{Printable(screen[_cursor..])}");
            await Task.Delay(20);
        }
    }

    /// <summary>What the program wrote after the last match, so far (for asserting what did not appear).</summary>
    public string SinceLastMatch
    {
        get
        {
            lock (_screen)
                return _screen.ToString()[_cursor..];
        }
    }

    /// <summary>Escape sequences and control characters made visible, for failure messages.</summary>
    public static string Printable(string text) =>
        string.Concat(text.Select(c => c is '\n' or '\t' || !char.IsControl(c) ? c.ToString() : $"\\x{(int)c:x2}"));

    private void ReadAll()
    {
        var buffer = new byte[16 * 1024];
        var decoder = new UTF8Encoding(false).GetDecoder();
        var chars = new char[buffer.Length + 4];
        while (true)
        {
            var n = Read(_master, buffer, buffer.Length);
            if (n < 0 && Marshal.GetLastPInvokeError() == Interrupted)
                continue;
            if (n <= 0)
                return; // EIO: every holder of the slave (the program) has closed it
            var count = decoder.GetChars(buffer, 0, (int)n, chars, 0);
            lock (_screen)
                _screen.Append(chars, 0, count);
        }
    }

    private int WaitForExit()
    {
        while (true)
        {
            var result = WaitPid(_pid, out var status, 0);
            if (result == _pid)
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
            if (result < 0 && Marshal.GetLastPInvokeError() != Interrupted)
                throw new IOException($"waitpid failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }

    private static void Resize(int master, ushort rows, ushort columns)
    {
        var size = new WindowSize { Rows = rows, Columns = columns };
        if (Ioctl(master, SetWindowSize, ref size) != 0)
            throw new IOException($"TIOCSWINSZ failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>
    /// posix_spawn in a new session whose descriptors 0-2 are the slave, opened by the child after
    /// setsid (glibc runs setsid before the file actions), so it becomes the controlling terminal.
    /// </summary>
    private static int Spawn(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, string slave)
    {
        var actions = Marshal.AllocHGlobal(OpaqueSize);
        var attributes = Marshal.AllocHGlobal(OpaqueSize);
        var empty = Marshal.AllocHGlobal(OpaqueSize);
        var full = Marshal.AllocHGlobal(OpaqueSize);
        var strings = new List<IntPtr>();
        try
        {
            Check(FileActionsInit(actions), "posix_spawn_file_actions_init");
            Check(AttributesInit(attributes), "posix_spawnattr_init");
            try
            {
                Check(AddOpen(actions, 0, slave, ReadWrite, 0), "posix_spawn_file_actions_addopen");
                Check(AddDup2(actions, 0, 1), "posix_spawn_file_actions_adddup2");
                Check(AddDup2(actions, 0, 2), "posix_spawn_file_actions_adddup2");
                Check(AddCloseFrom(actions, 3), "posix_spawn_file_actions_addclosefrom_np");
                Check(SignalEmptySet(empty), "sigemptyset");
                Check(SignalFillSet(full), "sigfillset");
                Check(SetSignalMaskAttribute(attributes, empty), "posix_spawnattr_setsigmask");
                Check(SetSignalDefaultAttribute(attributes, full), "posix_spawnattr_setsigdefault");
                Check(SetFlags(attributes, SetSignalDefaults | SetSignalMask | SetSession), "posix_spawnattr_setflags");
                var args = new IntPtr[argv.Count + 1];
                for (var i = 0; i < argv.Count; i++)
                    strings.Add(args[i] = Marshal.StringToCoTaskMemUTF8(argv[i]));
                var env = new IntPtr[environment.Count + 1];
                var index = 0;
                foreach (var (name, value) in environment)
                    strings.Add(env[index++] = Marshal.StringToCoTaskMemUTF8($"{name}={value}"));
                var error = PosixSpawn(out var pid, argv[0], actions, attributes, args, env);
                return error == 0 ? pid : throw new IOException($"posix_spawn of {argv[0]} failed (errno {error})");
            }
            finally
            {
                _ = FileActionsDestroy(actions);
                _ = AttributesDestroy(attributes);
            }
        }
        finally
        {
            foreach (var text in strings)
                Marshal.FreeCoTaskMem(text);
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(attributes);
            Marshal.FreeHGlobal(empty);
            Marshal.FreeHGlobal(full);
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
            throw new IOException($"{call} failed ({result})");
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (!_exit.IsCompleted)
            _ = Kill(_pid, 9);
        _exit.Wait(TimeSpan.FromSeconds(10));
        _reader.Join(TimeSpan.FromSeconds(10)); // ends with the program: its slave closes
        _ = Close(_master);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct WindowSize
    {
        public ushort Rows;
        public ushort Columns;
        public ushort XPixels;
        public ushort YPixels;
    }

    [DllImport("libc", EntryPoint = "posix_openpt", SetLastError = true)]
    private static extern int OpenMaster(int flags);

    [DllImport("libc", EntryPoint = "grantpt", SetLastError = true)]
    private static extern int GrantSlave(int fd);

    [DllImport("libc", EntryPoint = "unlockpt", SetLastError = true)]
    private static extern int UnlockSlave(int fd);

    [DllImport("libc", EntryPoint = "ptsname_r")]
    private static extern int SlaveName(int fd, byte[] buffer, nuint length);

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int Ioctl(int fd, ulong request, ref WindowSize size);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint Write(int fd, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static extern int WaitPid(int pid, out int status, int options);

    [DllImport("libc", EntryPoint = "posix_spawnp")]
    private static extern int PosixSpawn(out int pid, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr actions, IntPtr attributes, IntPtr[] argv, IntPtr[] envp);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static extern int FileActionsInit(IntPtr actions);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static extern int FileActionsDestroy(IntPtr actions);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    private static extern int AddOpen(IntPtr actions, int fd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mode);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static extern int AddDup2(IntPtr actions, int fd, int newFd);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    private static extern int AddCloseFrom(IntPtr actions, int lowest);

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
}
