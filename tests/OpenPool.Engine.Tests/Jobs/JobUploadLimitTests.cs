using System.Net.WebSockets;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>An upload limit above the engine's global 1 MiB body limit, so the upload route's own limit is what counts.</summary>
public sealed class LargeUploadFixture : RealEngineFixture
{
    public const int MaxUploadBytes = 3_000_000;

    protected override string[] Settings =>
    [
        "--Simulated:ProvisionSeconds=0", "--Simulated:ReleaseSeconds=0", "--Jobs:PythonVenv=false",
        $"--Jobs:MaxUploadBytes={MaxUploadBytes}",
    ];
}

/// <summary>
/// The job upload's body limit is endpoint metadata (Jobs:MaxUploadBytes), which routing applies
/// on Kestrel: a project past the global 1 MiB limit arrives whole, one past Jobs:MaxUploadBytes
/// is refused.
/// </summary>
public sealed class JobUploadLimitTests(LargeUploadFixture fx) : IClassFixture<LargeUploadFixture>, IDisposable
{
    private readonly TempDir _project = new();

    public void Dispose() => _project.Dispose();

    [Fact]
    public async Task A_project_beyond_one_MiB_but_within_the_upload_limit_arrives_whole_and_a_larger_one_is_refused()
    {
        var (client, key) = await fx.NewUserAsync("large-upload@example.com");
        var clusterId = await JobEngineFixture.RunningClusterAsync(client);
        // Random bytes: the archive cannot compress below the global limit.
        var weights = new byte[2_000_000];
        Random.Shared.NextBytes(weights);
        await File.WriteAllBytesAsync(Path.Combine(_project.Path, "weights.bin"), weights);

        var push = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["wc -c < weights.bin"]), clusterId);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, push.CloseStatus);
        var listen = await CliJobClient.ListenAsync(fx.Url, key, push.JobId!);
        Assert.Equal("success", listen.FinalStatus);
        Assert.Contains(listen.Messages, m => m.Trim() == "2000000");

        var tooBig = new byte[LargeUploadFixture.MaxUploadBytes + 500_000];
        Random.Shared.NextBytes(tooBig);
        await File.WriteAllBytesAsync(Path.Combine(_project.Path, "weights.bin"), tooBig);
        var refused = await CliJobClient.PushAsync(fx.Url, key, _project.Path, CliJobClient.Toml(["wc -c < weights.bin"]), clusterId);
        Assert.NotEqual(WebSocketCloseStatus.NormalClosure, refused.CloseStatus);
        Assert.Contains(refused.Messages, m => m.Contains("upload failed", StringComparison.OrdinalIgnoreCase));
    }
}
