using System.Net.Sockets;

namespace OpenPool.Engine.Hosting;

internal static class StartupFailure
{
    /// <summary>One line for the failures an operator causes and can fix; null for real bugs, which keep their stack trace.</summary>
    public static string? Describe(Exception ex) => ex switch
    {
        EngineStartupException startup => startup.Message,
        IOException { InnerException: SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } } =>
            "cannot listen: the address is already in use (another engine running? pass --urls http://127.0.0.1:PORT)",
        IOException io when io.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase) =>
            "cannot listen: the address is already in use (another engine running? pass --urls http://127.0.0.1:PORT)",
        UnauthorizedAccessException access => $"cannot use the data directory: {access.Message}",
        Microsoft.Data.Sqlite.SqliteException sqlite => $"cannot open the database: {sqlite.Message}",
        _ => null,
    };
}
