using OpenPool.Engine.Hosting;

namespace OpenPool.Engine.Accounts;

/// <summary>
/// First start on an empty database: an operator org, an admin user and an admin key. The key is
/// printed once and written to <c>&lt;data-dir&gt;/admin.key</c> readable by the owner only; it is never
/// stored in clear anywhere else.
/// </summary>
internal static class Bootstrap
{
    public const string AdminEmail = "admin@openpool.local";
    public const string AdminOrg = "operators";

    public static async Task<string?> EnsureAdminAsync(AccountStore accounts, EngineOptions options, CancellationToken ct)
    {
        if (await accounts.CountUsersAsync(ct) > 0)
            return null;
        string key;
        try
        {
            (_, key) = await accounts.CreateUserAsync(AdminEmail, AdminOrg, "admin", isOperator: true, ct);
        }
        catch (Http.ApiError error) when (error.Error == "user_exists")
        {
            return null; // another replica starting on the same fresh database got there first
        }
        catch (Exception ex) when (Data.Database.IsUniqueViolation(ex))
        {
            return null;
        }
        var path = options.AdminKeyPath;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Create the file with owner-only permissions before the secret is written into it.
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            fileOptions.UnixCreateMode = DataDirectory.OwnerOnlyFile;
        await using (var stream = new FileStream(path, fileOptions))
        await using (var writer = new StreamWriter(stream))
            await writer.WriteLineAsync(key);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, DataDirectory.OwnerOnlyFile);
        return key;
    }
}
