using System.Text.RegularExpressions;

namespace OpenPool.Engine.Http;

/// <summary>The one naming rule for user-named resources (clusters, volumes): safe in CLI tables and shell arguments.</summary>
internal static partial class ResourceNames
{
    public static void Check(JsonBody body, string field, string? name)
    {
        if (name is not null && !Pattern().IsMatch(name))
            body.Reject(field, "string_pattern_mismatch",
                "Names are 1-64 characters: letters, digits, '.', '_' and '-', starting with a letter or digit");
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex Pattern();
}
