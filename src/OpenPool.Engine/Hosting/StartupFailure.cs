using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace OpenPool.Engine.Hosting;

internal static partial class StartupFailure
{
    /// <summary>One line for the failures an operator causes and can fix; null for real bugs, which keep their stack trace.</summary>
    public static string? Describe(Exception ex) => ex switch
    {
        EngineStartupException startup => startup.Message,
        IOException { InnerException: SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } } io => AddressInUse(io),
        IOException io when io.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase) => AddressInUse(io),
        UnauthorizedAccessException access => $"cannot use the data directory: {access.Message}",
        Microsoft.Data.Sqlite.SqliteException sqlite => $"cannot open the database: {sqlite.Message}",
        _ => null,
    };

    // Kestrel says "Failed to bind to address http://127.0.0.1:8000: address already in use."
    private static string AddressInUse(IOException io)
    {
        var match = BoundAddress().Match(io.Message);
        var address = match.Success ? match.Groups[1].Value : "the requested address";
        return $"cannot listen on {address}: address already in use (another engine running? pass --urls http://127.0.0.1:PORT)";
    }

    [GeneratedRegex(@"address (\S+?):? address already in use", RegexOptions.IgnoreCase)]
    private static partial Regex BoundAddress();
}
