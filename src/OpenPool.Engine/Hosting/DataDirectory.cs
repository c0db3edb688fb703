namespace OpenPool.Engine.Hosting;

/// <summary>
/// The data directory holds secrets at rest (the database with its key hashes and signing key,
/// admin.key), so it is owner-only: the directory 0700 and the engine's files in it 0600. Applied at
/// every start, so a directory made by hand (0755) or by an older engine (a 0644 database) is fixed.
/// </summary>
internal static class DataDirectory
{
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static void Secure(EngineOptions options)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(options.DataDir);
            return;
        }
        // Whatever the engine makes from here on is its owner's only; the few files a node's user must
        // read (its passwd, its job scripts) are opened up one by one where they are made.
        _ = NativeUmask(0x3F); // 077
        Directory.CreateDirectory(options.DataDir, OwnerOnlyDirectory);
        File.SetUnixFileMode(options.DataDir, OwnerOnlyDirectory);
        // The engine's own files sit at the top; the subdirectories (the simulated nodes) belong to
        // tenants' jobs, which keep their own modes, behind the directory's 0700.
        foreach (var file in Directory.EnumerateFiles(options.DataDir))
            File.SetUnixFileMode(file, OwnerOnlyFile);
        if (options.DatabasePath is { } database)
            SecureDatabaseFile(database);
    }

    /// <summary>
    /// SQLite creates the -wal and -shm files with the database file's mode, so the database file is
    /// made 0600 before SQLite first opens it (an empty file is a valid new database).
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void SecureDatabaseFile(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path))
            new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = OwnerOnlyFile }).Dispose();
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
            if (File.Exists(file))
                File.SetUnixFileMode(file, OwnerOnlyFile);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "umask")]
    private static extern uint NativeUmask(uint mask);
}
