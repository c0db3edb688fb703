using System.Globalization;

namespace OpenPool.Engine.Data;

internal static class Time
{
    public static long Now(this TimeProvider clock) => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>ISO 8601 in UTC with a Z, as the TensorPool API writes timestamps.</summary>
    public static string Iso(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
