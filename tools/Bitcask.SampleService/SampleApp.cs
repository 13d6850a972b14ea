using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Bitcask.Extensions.Caching;
using Bitcask.Extensions.Configuration;
using Bitcask.Extensions.RateLimiting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Bitcask.SampleService;

/// <summary>Feature flags read through the Bitcask configuration provider (keys <c>config/Features/...</c>).</summary>
public sealed class FeatureFlags
{
    /// <summary>When true, no new links are accepted (503).</summary>
    public bool ReadOnly { get; set; }
}

/// <summary>
/// A URL shortener on one Bitcask store: links are store keys (<c>links/&lt;code&gt;</c>), lookups go through
/// HybridCache with the store as L2, feature flags come from the store's <c>config/</c> keys (reloaded live), and link
/// endpoints are rate-limited per client by a durable fixed window. <c>/health</c> checks the store; metrics go to
/// OpenTelemetry (console exporter with <c>--Telemetry:Console true</c>).
/// </summary>
public static class SampleApp
{
    public static WebApplication Create(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var path = builder.Configuration["Store:Path"] ?? Path.Combine(Environment.CurrentDirectory, "sample-data");
        var store = BitcaskStore.Open(path); // disposed (synced, unlocked) once the server has drained, below
        builder.Services.AddSingleton(store);

        // Configuration: feature flags from the store, reloaded on every change.
        var reloadDelay = TimeSpan.FromMilliseconds(builder.Configuration.GetValue("Config:ReloadDelayMs", 200));
        builder.Configuration.AddBitcask(store, "config/", s => s.ReloadDelay = reloadDelay);
        builder.Services.Configure<FeatureFlags>(builder.Configuration.GetSection("Features"));

        // Cache: HybridCache with the store as L2.
        builder.Services.AddBitcaskDistributedCache(store);
        builder.Services.AddHybridCache();

        // Rate limiting: per client, durable (a restart does not reset a client's quota).
        var limit = new FixedWindowRateLimiterOptions
        {
            PermitLimit = builder.Configuration.GetValue("RateLimit:PermitLimit", 100),
            Window = TimeSpan.FromSeconds(builder.Configuration.GetValue("RateLimit:WindowSeconds", 60)),
        };
        builder.Services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy("per-client", ctx => RateLimitPartition.Get(ClientOf(ctx),
                client => BitcaskRateLimiter.CreateFixedWindow(store, "links/" + client, limit)));
            o.OnRejected = (ctx, _) =>
            {
                if (ctx.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retry))
                    ctx.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                return ValueTask.CompletedTask;
            };
        });

        // Health: the hosting package's check (Unhealthy when the write path failed, Degraded on damage or fragmentation).
        // The store is opened here rather than with AddBitcask (which opens it when the host starts) because the
        // configuration provider above reads it while the configuration is built, before the host exists.
        builder.Services.AddHealthChecks().AddCheck("bitcask", new Bitcask.Extensions.Hosting.BitcaskHealthCheck(store));
        builder.Services.AddOpenTelemetry().WithMetrics(m =>
        {
            m.AddMeter("Bitcask", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.RateLimiting");
            if (builder.Configuration.GetValue("Telemetry:Console", false)) m.AddConsoleExporter();
        });

        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(store.Dispose);
        app.UseRateLimiter();

        app.MapPost("/links", async (LinkRequest request, IOptionsMonitor<FeatureFlags> flags) =>
        {
            if (flags.CurrentValue.ReadOnly) return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
            if (!Uri.TryCreate(request.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                return Results.BadRequest("url must be an absolute http(s) URL.");
            while (true)
            {
                var code = NewCode();
                if (await store.PutIfAbsentAsync(Encoding.UTF8.GetBytes("links/" + code), Encoding.UTF8.GetBytes(uri.ToString())))
                    return Results.Created($"/l/{code}", new LinkResponse(code, uri.ToString()));
            }
        }).RequireRateLimiting("per-client");

        app.MapGet("/l/{code}", async (string code, HybridCache cache, CancellationToken ct) =>
        {
            var url = await cache.GetOrCreateAsync("link:" + code, (Store: store, Code: code), static (s, _) =>
                ValueTask.FromResult(s.Store.GetString("links/" + s.Code) ?? ""), cancellationToken: ct);
            return url.Length == 0 ? Results.NotFound() : Results.Redirect(url);
        }).RequireRateLimiting("per-client");

        app.MapGet("/features", (IOptionsMonitor<FeatureFlags> flags) => flags.CurrentValue);

        // Admin (sample only): write a configuration key; the configuration provider picks it up.
        app.MapPut("/admin/config/{**key}", async (string key, HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            store.Put("config/" + key, await reader.ReadToEndAsync());
            return Results.NoContent();
        });

        app.MapHealthChecks("/health", new HealthCheckOptions());
        return app;
    }

    private static string ClientOf(HttpContext ctx) =>
        ctx.Request.Headers["X-Client-Id"].FirstOrDefault() ?? ctx.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    private static string NewCode()
    {
        const string alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        return string.Create(8, 0, static (span, _) =>
        {
            for (var i = 0; i < span.Length; i++) span[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        });
    }
}

/// <summary>POST /links body.</summary>
public sealed record LinkRequest(string Url);

/// <summary>POST /links answer.</summary>
public sealed record LinkResponse(string Code, string Url);
