using System.Net;
using Microsoft.Extensions.DependencyInjection;
using OpenPool.Engine.Tests.Infrastructure;

namespace OpenPool.Engine.Tests.Http;

/// <summary>An unexpected fault answers a JSON 500 that says nothing about the code behind it.</summary>
public sealed class FaultHandlingTests
{
    [Fact]
    public async Task Unhandled_exceptions_become_a_json_500_without_a_stack_trace()
    {
        using var engine = new EngineFactory();
        var clock = new FaultyClock();
        using var faulty = engine.WithWebHostBuilder(builder => builder.ConfigureServices(services => services.AddSingleton<TimeProvider>(clock)));
        var client = faulty.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", File.ReadAllText(Path.Combine(engine.DataDir, "admin.key")).Trim());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/health", null)).StatusCode);

        clock.Armed = true;
        var response = await client.GetAsync("/cluster/list");
        clock.Armed = false;

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        var body = await response.Json();
        Assert.Equal("internal_error", body.GetProperty("error").GetString());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
        Assert.DoesNotContain("secret-detail", text);
        Assert.DoesNotContain(" at ", text);
        Assert.DoesNotContain("Exception", text);
    }

    /// <summary>A clock that breaks on demand: the engine reads it on every authenticated call.</summary>
    private sealed class FaultyClock : TimeProvider
    {
        public volatile bool Armed;

        public override DateTimeOffset GetUtcNow() =>
            Armed ? throw new InvalidOperationException("secret-detail of the engine's internals") : base.GetUtcNow();
    }
}
