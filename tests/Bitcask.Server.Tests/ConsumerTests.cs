using System.Threading.RateLimiting;
using Bitcask.Server.Tests.Infrastructure;
using Medallion.Threading.Redis;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using RedisRateLimiting;
using StackExchange.Redis;

namespace Bitcask.Server.Tests;

/// <summary>Unmodified packages built on StackExchange.Redis, pointed at the server, pass a test of their basic contract.</summary>
public class ConsumerTests
{
    [Fact]
    public async Task RedisCache_stores_reads_refreshes_sliding_entries_and_removes_them()
    {
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        using var cache = new RedisCache(Options.Create(new RedisCacheOptions { Configuration = host.Configuration, InstanceName = "app:" }));
        await cache.SetAsync("absolute", "a"u8.ToArray(), new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(5) });
        Assert.Equal("a"u8.ToArray(), await cache.GetAsync("absolute"));
        Assert.Equal(ValueType.Hash, Type(host, "app:absolute")); // RedisCache keeps an entry as a hash

        var sliding = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(2) };
        await cache.SetAsync("sliding", "s"u8.ToArray(), sliding);
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.Equal("s"u8.ToArray(), await cache.GetAsync("sliding")); // each read slides the expiry forward
        }
        await cache.RefreshAsync("sliding");
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        Assert.Null(await cache.GetAsync("sliding")); // not read for longer than the window: gone

        await cache.RemoveAsync("absolute");
        Assert.Null(await cache.GetAsync("absolute"));
        Assert.Null(await cache.GetAsync("never-set"));
    }

    private static ValueType Type(ServerHost host, string key)
    {
        using var raw = host.Connect();
        return raw.Call("TYPE", key) is RespSimple { Text: "hash" } ? ValueType.Hash : ValueType.String;
    }

    [Fact]
    public async Task DistributedLock_acquires_extends_releases_and_detects_a_lost_handle()
    {
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        using var redis = await ConnectionMultiplexer.ConnectAsync(host.Configuration);
        var db = redis.GetDatabase();
        var first = new RedisDistributedLock("resource", db, o => o.Expiry(TimeSpan.FromSeconds(2)).ExtensionCadence(TimeSpan.FromMilliseconds(300)));
        var second = new RedisDistributedLock("resource", db, o => o.Expiry(TimeSpan.FromSeconds(2)).ExtensionCadence(TimeSpan.FromMilliseconds(300)));
        var handle = await first.TryAcquireAsync();
        Assert.NotNull(handle);
        Assert.Null(await second.TryAcquireAsync()); // held
        await Task.Delay(TimeSpan.FromSeconds(3)); // longer than the expiry: only extensions keep it
        Assert.Null(await second.TryAcquireAsync());
        await handle!.DisposeAsync(); // release
        var again = await second.TryAcquireAsync();
        Assert.NotNull(again);
        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        again!.HandleLostToken.Register(() => lost.TrySetResult());
        await db.KeyDeleteAsync("resource"); // someone else removes the lock key
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await again.DisposeAsync();
    }

    [Fact]
    public async Task RedisRateLimiting_fixed_window_allows_the_limit_per_window()
    {
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        using var redis = await ConnectionMultiplexer.ConnectAsync(host.Configuration);
        using var limiter = new RedisFixedWindowRateLimiter<string>("api", new RedisFixedWindowRateLimiterOptions
        {
            ConnectionMultiplexerFactory = () => redis,
            PermitLimit = 3,
            Window = TimeSpan.FromSeconds(30),
        });
        var granted = 0;
        for (var i = 0; i < 5; i++)
        {
            using var lease = await limiter.AcquireAsync();
            if (lease.IsAcquired) granted++;
        }
        Assert.Equal(3, granted);
    }

    [Fact]
    public async Task RedisRateLimiting_token_bucket_grants_the_bucket_then_refills()
    {
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        using var redis = await ConnectionMultiplexer.ConnectAsync(host.Configuration);
        using var limiter = new RedisTokenBucketRateLimiter<string>("bucket", new RedisTokenBucketRateLimiterOptions
        {
            ConnectionMultiplexerFactory = () => redis,
            TokenLimit = 2,
            TokensPerPeriod = 2,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        });
        var granted = 0;
        for (var i = 0; i < 4; i++)
        {
            using var lease = await limiter.AcquireAsync();
            if (lease.IsAcquired) granted++;
        }
        Assert.Equal(2, granted);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        using var refilled = await limiter.AcquireAsync();
        Assert.True(refilled.IsAcquired);
    }
}
