namespace OpenPool.Engine.Tests.Infrastructure;

/// <summary>A fresh directory per test, removed afterwards, so every test starts from an empty engine.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "openpool-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process killed mid-write may still hold a file for a moment; the OS temp cleaner gets it.
        }
    }
}
