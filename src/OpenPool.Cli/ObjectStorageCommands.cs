using System.CommandLine;
using OpenPool.Contracts;
using static OpenPool.Cli.CliApp;

namespace OpenPool.Cli;

/// <summary><c>openpool object-storage …</c>, mirroring <c>tp object-storage</c> (spec §7) plus rotate-keys and configure aws.</summary>
internal static class ObjectStorageCommands
{
    public static Command Build(Runner run)
    {
        var enable = new Command("enable", "Enable object storage for your organization and show its S3 credentials");
        enable.SetAction(run(async (c, p, ct) =>
        {
            var keys = await c.Client.EnableObjectStorageAsync(ct);
            c.Print(keys, KeysText(keys, keys.Message));
            return 0;
        }));

        var disable = new Command("disable", "Disable object storage (refused while buckets exist); its keys stop working");
        disable.SetAction(run(async (c, p, ct) =>
        {
            if (!c.Confirm("Disable object storage? Its keys stop working for every member."))
                return 1;
            var answer = await c.Client.DisableObjectStorageAsync(ct);
            c.Print(answer, answer.Message);
            return 0;
        }));

        var credentials = Show(run, "credentials", "Show the S3 credentials", (c, p, ct) => c.Client.GetObjectStorageCredentialsAsync(ct), k => KeysText(k, null));

        var rotate = new Command("rotate-keys", "Replace the S3 keys; the old ones stop working at once for every member");
        rotate.SetAction(run(async (c, p, ct) =>
        {
            if (!c.Confirm("Rotate the object storage keys? The current ones stop working at once, for every member."))
                return 1;
            var keys = await c.Client.RotateObjectStorageKeysAsync(ct);
            c.Print(keys, KeysText(keys, keys.Message));
            return 0;
        }));

        var print = new Option<bool>("--print") { Description = "Print the sections instead of writing them" };
        var awsCredentials = new Option<string?>("--credentials-file") { Description = "Default: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials" };
        var awsConfig = new Option<string?>("--config-file") { Description = "Default: $AWS_CONFIG_FILE or ~/.aws/config" };
        var aws = new Command("aws", "Write the tp profile for the AWS CLI (aws --profile tp s3 ls)") { awsCredentials, awsConfig, print };
        aws.SetAction(run(async (c, p, ct) =>
        {
            var config = await c.Client.GetObjectStorageAwsConfigAsync(ct);
            if (p.GetValue(print) || c.Json)
            {
                c.Print(config, config.CredentialsFile + "\n" + config.ConfigFile);
                return 0;
            }
            var credentialsPath = p.GetValue(awsCredentials) ?? Environment.GetEnvironmentVariable("AWS_SHARED_CREDENTIALS_FILE") ?? Home(".aws", "credentials");
            var configPath = p.GetValue(awsConfig) ?? Environment.GetEnvironmentVariable("AWS_CONFIG_FILE") ?? Home(".aws", "config");
            IniFile.UpsertFile(credentialsPath, config.CredentialsFile);
            IniFile.UpsertFile(configPath, config.ConfigFile);
            c.Print(config, $"Wrote profile {config.ProfileName} to {credentialsPath} and {configPath}. Try: aws --profile {config.ProfileName} s3 ls");
            return 0;
        }));

        var rcloneFile = new Option<string?>("--config") { Description = "Default: $RCLONE_CONFIG or ~/.config/rclone/rclone.conf" };
        var rclone = new Command("rclone", "Write the tp remote for rclone (rclone lsd tp:)") { rcloneFile, print };
        rclone.SetAction(run(async (c, p, ct) =>
        {
            var config = await c.Client.GetObjectStorageRcloneConfigAsync(ct);
            if (p.GetValue(print) || c.Json)
            {
                c.Print(config, config.RcloneConfig);
                return 0;
            }
            var path = p.GetValue(rcloneFile) ?? Environment.GetEnvironmentVariable("RCLONE_CONFIG")
                ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg ? xdg : Home(".config"), "rclone", "rclone.conf");
            IniFile.UpsertFile(path, config.RcloneConfig);
            c.Print(config, $"Wrote remote {config.RemoteName} to {path}. Try: rclone lsd {config.RemoteName}:");
            return 0;
        }));
        var configure = Group("configure", "Set up a tool to use object storage", aws, rclone);

        var name = new Argument<string>("bucket_name");
        var list = Show(run, "list", "List buckets", (c, p, ct) => c.Client.ListBucketsAsync(ct), r => r.Message).WithAlias("ls");
        var create = new Command("create", "Create a bucket") { name };
        create.SetAction(run(async (c, p, ct) =>
        {
            var answer = await c.Client.CreateBucketAsync(p.GetValue(name)!, ct);
            c.Print(answer, answer.Message);
            return 0;
        }));
        var delete = new Command("delete", "Delete an empty bucket") { name };
        delete.Aliases.Add("rm");
        delete.SetAction(run(async (c, p, ct) =>
        {
            var bucket = p.GetValue(name)!;
            await c.Client.DeleteBucketAsync(bucket, ct);
            c.Print(new MessageResponse { Message = $"Bucket {bucket} deleted." }, $"Bucket {bucket} deleted.");
            return 0;
        }));
        var bucket = Group("bucket", "Create, list and delete buckets", list, create, delete);

        return Group("object-storage", "S3-compatible object storage for your organization", enable, disable, credentials, rotate, configure, bucket);
    }

    /// <summary>What tp prints for keys: the message, then the fields.</summary>
    private static string KeysText(ObjectStorageCredentials keys, string? message) =>
        (string.IsNullOrEmpty(message) ? "" : message + "\n") +
        $"Access Key ID:     {keys.AccessKeyId}\nSecret Access Key: {keys.SecretAccessKey}\nEndpoint:          {keys.Endpoint}\nRegion:            {keys.Region}";

    private static string Home(params string[] parts) =>
        Path.Combine([Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), .. parts]);
}

/// <summary>
/// Puts an INI section into a config file the way tp does for its profiles: the section of that name is
/// replaced where it stands (up to the next section header), or appended; everything else is kept.
/// </summary>
internal static class IniFile
{
    public static string Upsert(string existing, string section)
    {
        var header = section.TrimStart().Split('\n', 2)[0].Trim();
        var lines = existing.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').ToList();
        var body = section.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n').Split('\n');
        var start = lines.FindIndex(l => l.Trim() == header);
        if (start < 0)
        {
            var kept = string.Join('\n', lines).TrimEnd('\n');
            return (kept.Length == 0 ? "" : kept + "\n\n") + string.Join('\n', body) + "\n";
        }
        var end = start + 1;
        while (end < lines.Count && !lines[end].TrimStart().StartsWith('['))
            end++;
        // The blank line that separated the old section from the next stays.
        var replacement = body.ToList();
        if (end < lines.Count)
            replacement.Add("");
        lines.RemoveRange(start, end - start);
        lines.InsertRange(start, replacement);
        return string.Join('\n', lines).TrimEnd('\n') + "\n";
    }

    /// <summary>Upserts into the file, creating it (owner-only: it holds a secret) and its directory.</summary>
    public static void UpsertFile(string path, string section)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var existing = File.Exists(full) ? File.ReadAllText(full) : "";
        var temp = full + ".openpool-tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        // No byte-order mark: botocore and the AWS SDK inside rclone refuse a file that starts with one.
        using (var writer = new StreamWriter(temp, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), options))
            writer.Write(Upsert(existing, section));
        File.Move(temp, full, overwrite: true);
    }
}
