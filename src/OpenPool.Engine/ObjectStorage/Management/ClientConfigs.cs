using OpenPool.Contracts;

namespace OpenPool.Engine.ObjectStorage.Management;

/// <summary>
/// The INI sections <c>configure aws</c> and <c>configure rclone</c> hand out. Each alone, upserted
/// into its file, must make the tool work with nothing else set: the endpoint is in the profile
/// (awscli ≥ 1.29 reads <c>endpoint_url</c> from a profile; checked with 1.45), addressing is
/// path-style (no wildcard DNS for bucket host names), and the region is the one the engine signs for.
/// </summary>
internal static class ClientConfigs
{
    public static ObjectStorageAwsConfig Aws(StorageAccount account, ObjectStorageOptions options, string profile) => new()
    {
        ProfileName = profile,
        CredentialsFile = $"""
            [{profile}]
            aws_access_key_id = {account.AccessKeyId}
            aws_secret_access_key = {account.SecretAccessKey}

            """,
        ConfigFile = $"""
            [profile {profile}]
            region = {options.Region}
            endpoint_url = {options.EndpointForClients}
            s3 =
              addressing_style = path
              signature_version = s3v4

            """,
        Endpoint = options.EndpointForClients,
    };

    public static ObjectStorageRcloneConfig Rclone(StorageAccount account, ObjectStorageOptions options, string remote) => new()
    {
        RemoteName = remote,
        // provider Other: rclone then assumes only plain S3. force_path_style for the same reason as
        // aws; env_auth off so AWS_* variables in the environment cannot override these keys.
        RcloneConfig = $"""
            [{remote}]
            type = s3
            provider = Other
            env_auth = false
            access_key_id = {account.AccessKeyId}
            secret_access_key = {account.SecretAccessKey}
            endpoint = {options.EndpointForClients}
            region = {options.Region}
            force_path_style = true

            """,
    };
}
