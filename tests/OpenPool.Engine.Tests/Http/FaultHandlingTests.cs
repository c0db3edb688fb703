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

    [Fact]
    public async Task A_fault_naming_a_server_file_path_does_not_pass_it_on_even_through_the_idempotency_store()
    {
        using var engine = new EngineFactory();
        var clock = new FaultyClock();
        using var faulty = engine.WithWebHostBuilder(builder => builder.ConfigureServices(services => services.AddSingleton<TimeProvider>(clock)));
        var client = faulty.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", File.ReadAllText(Path.Combine(engine.DataDir, "admin.key")).Trim());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/health", null)).StatusCode);

        clock.Fault = new IOException($"Could not find file '{Path.Combine(engine.DataDir, "openpool.db-wal")}'");
        clock.Armed = true;
        using var create = new HttpRequestMessage(HttpMethod.Post, "/cluster/create") { Content = new StringContent("""{"instance_type":"1xH100"}""", System.Text.Encoding.UTF8, "application/json") };
        create.Headers.Add("Idempotency-Key", "fault-with-path");
        var response = await client.SendAsync(create);
        clock.Armed = false;

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(engine.DataDir, text, StringComparison.Ordinal);
        Assert.DoesNotContain("openpool.db", text, StringComparison.Ordinal);
        Assert.DoesNotContain("/tmp", text, StringComparison.Ordinal);
    }

    /// <summary>A clock that breaks on demand: the engine reads it on every authenticated call.</summary>
    private sealed class FaultyClock : TimeProvider
    {
        public volatile bool Armed;
        public Exception Fault { get; set; } = new InvalidOperationException("secret-detail of the engine's internals");

        public override DateTimeOffset GetUtcNow() => Armed ? throw Fault : base.GetUtcNow();
    }
}
