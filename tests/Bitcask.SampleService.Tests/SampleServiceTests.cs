using System.Net;
using System.Net.Http.Json;
using Bitcask.SampleService;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Bitcask.SampleService.Tests;

/// <summary>The sample service on a real Kestrel port on 127.0.0.1, driven over HTTP, stopped and started again on the
/// same store directory.</summary>
public sealed class SampleServiceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bitcask-sample-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<(WebApplication App, HttpClient Http)> Start()
    {
        var app = SampleApp.Create(["--urls", "http://127.0.0.1:0", "--Store:Path", _dir,
            "--RateLimit:PermitLimit", "5", "--RateLimit:WindowSeconds", "3600", "--Config:ReloadDelayMs", "20"]);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Assert.StartsWith("http://127.0.0.1:", address);
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(address) };
        http.DefaultRequestHeaders.Add("X-Client-Id", "client-a");
        return (app, http);
    }

    private static async Task Stop(WebApplication app, HttpClient http)
    {
        http.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private static async Task<bool> ReadOnlyFlag(HttpClient http) =>
        (await http.GetFromJsonAsync<FeatureFlags>("/features"))!.ReadOnly;

    [Fact]
    public async Task Links_flags_and_rate_limits_survive_a_restart_of_the_service()
    {
        var (app, http) = await Start();
        var permitsUsed = 0;

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        var created = await http.PostAsJsonAsync("/links", new LinkRequest("https://example.org/a/long/path"));
        permitsUsed++;
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var link = (await created.Content.ReadFromJsonAsync<LinkResponse>())!;
        var redirect = await http.GetAsync($"/l/{link.Code}");
        permitsUsed++;
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        Assert.Equal("https://example.org/a/long/path", redirect.Headers.Location!.ToString());

        Assert.False(await ReadOnlyFlag(http));
        Assert.Equal(HttpStatusCode.NoContent, (await http.PutAsync("/admin/config/Features/ReadOnly", new StringContent("true"))).StatusCode);
        for (var i = 0; i < 500 && !await ReadOnlyFlag(http); i++) await Task.Delay(10);
        Assert.True(await ReadOnlyFlag(http)); // the configuration provider reloaded from the store's watch
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.PostAsJsonAsync("/links", new LinkRequest("https://example.org/b"))).StatusCode);
        permitsUsed++;

        await Stop(app, http);
        (app, http) = await Start(); // same directory: the store was synced and unlocked at stop

        Assert.True(await ReadOnlyFlag(http)); // configuration survived
        redirect = await http.GetAsync($"/l/{link.Code}");
        permitsUsed++;
        Assert.Equal("https://example.org/a/long/path", redirect.Headers.Location!.ToString()); // data survived

        // The quota survived: client-a has 5 per hour in all, across both runs.
        while (permitsUsed < 5)
        {
            Assert.Equal(HttpStatusCode.Redirect, (await http.GetAsync($"/l/{link.Code}")).StatusCode);
            permitsUsed++;
        }
        var limited = await http.GetAsync($"/l/{link.Code}");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.True(int.Parse(limited.Headers.GetValues("Retry-After").Single()) > 0);

        // Another client has its own quota; /health is not limited.
        using var other = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = http.BaseAddress };
        other.DefaultRequestHeaders.Add("X-Client-Id", "client-b");
        Assert.Equal(HttpStatusCode.Redirect, (await other.GetAsync($"/l/{link.Code}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        await Stop(app, http);
    }
}
