using System.Net.Http.Json;
using System.Text.Json;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Requests;

/// <summary>A real engine process killed with SIGKILL mid-claim and restarted on the same data directory.</summary>
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Claims_in_flight_when_the_engine_is_killed_finish_after_restart_with_one_provision_each()
    {
        using var dir = new TempDir();
        string[] settings = ["--Simulated:ProvisionSeconds=3", "--Requests:LeaseSeconds=2"];

        var clusters = new List<(string ClusterId, string RequestId)>();
        await using (var first = await EngineProcess.StartAsync(dir.Path, settings))
        {
            var key = (await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.key"))).Trim();
            Assert.Contains(key, first.Output); // printed once at first start
            var client = first.Client(key);
            for (var i = 0; i < 10; i++)
                clusters.Add(await CreateAsync(client));

            // Wait until provisioning is under way for all of them, then pull the plug.
            await WaitUntilAsync(async () =>
            {
                foreach (var (_, requestId) in clusters)
                    if ((await client.GetFromJsonAsync<JsonElement>($"/request/info/{requestId}")).GetProperty("status").GetString() != "PROCESSING")
                        return false;
                return true;
            });
            await first.KillAsync();
        }

        await using var second = await EngineProcess.StartAsync(dir.Path, settings);
        var adminKey = (await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.key"))).Trim();
        Assert.DoesNotContain(adminKey, second.Output); // never printed again
        var restarted = second.Client(adminKey);
        foreach (var (clusterId, requestId) in clusters)
        {
            var result = await restarted.PollLikeCliAsync(requestId);
            Assert.Equal("COMPLETED", result.Final.GetProperty("status").GetString());
            var effects = await restarted.GetFromJsonAsync<JsonElement>($"/admin/simulated/effects?object_id={clusterId}");
            Assert.Single(effects.GetProperty("effects").EnumerateArray(), e => e.GetProperty("kind").GetString() == "provision");
            var info = await restarted.GetFromJsonAsync<JsonElement>($"/cluster/info/{clusterId}");
            Assert.Equal("RUNNING", info.GetProperty("cluster").GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task A_claim_killed_while_its_step_holds_a_lease_is_retaken_after_the_lease_lapses()
    {
        using var dir = new TempDir();
        // Provisioning answers at once, so a kill right after create lands while a worker holds the
        // claim, or before it starts; either way the restarted engine must finish it exactly once.
        string[] settings = ["--Simulated:ProvisionSeconds=0", "--Requests:LeaseSeconds=2"];
        (string ClusterId, string RequestId) created;
        await using (var first = await EngineProcess.StartAsync(dir.Path, settings))
        {
            var key = (await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.key"))).Trim();
            created = await CreateAsync(first.Client(key));
            await first.KillAsync();
        }

        await using var second = await EngineProcess.StartAsync(dir.Path, settings);
        var client = second.Client((await File.ReadAllTextAsync(Path.Combine(dir.Path, "admin.key"))).Trim());
        var result = await client.PollLikeCliAsync(created.RequestId);
        Assert.Equal("COMPLETED", result.Final.GetProperty("status").GetString());
        var effects = await client.GetFromJsonAsync<JsonElement>($"/admin/simulated/effects?object_id={created.ClusterId}");
        Assert.Single(effects.GetProperty("effects").EnumerateArray(), e => e.GetProperty("kind").GetString() == "provision");
    }

    private static async Task<(string, string)> CreateAsync(HttpClient client)
    {
        var (clusterId, requestId, _) = await client.CreateClusterAsync();
        return (clusterId, requestId);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in 30 s");
            await Task.Delay(50);
        }
    }
}
