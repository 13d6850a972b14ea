using Bitcask.Extensions.Caching;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace Bitcask.Extensions.Tests;

/// <summary>HybridCache (Microsoft.Extensions.Caching.Hybrid) with our cache as its L2: every HybridCache instance
/// below has its own L1 (its own service provider), so a value it did not create can only come from the store.</summary>
public sealed class HybridCacheTests : IDisposable
{
    private readonly TempDirectory _dir = new("hybrid");

    public void Dispose() => _dir.Dispose();

    private static ServiceProvider Services(BitcaskStore store)
    {
        var services = new ServiceCollection();
        services.AddBitcaskDistributedCache(store);
        services.AddHybridCache();
        return services.BuildServiceProvider();
    }

    private static async Task<(string Value, int Calls)> GetOrCreate(HybridCache cache, string key, string made, string[]? tags = null)
    {
        var calls = 0;
        var value = await cache.GetOrCreateAsync(key, ct =>
        {
            calls++;
            return ValueTask.FromResult(made);
        }, tags: tags);
        return (value, calls);
    }

    /// <summary>HybridCache returns the created value before its L2 write completes: wait for the write.</summary>
    private static async Task InL2(BitcaskStore store, string key)
    {
        var storeKey = System.Text.Encoding.UTF8.GetBytes("cache/" + key);
        for (var i = 0; i < 500 && store.GetInfo(storeKey) is null; i++) await Task.Delay(10);
        Assert.NotNull(store.GetInfo(storeKey));
    }

    private static async Task WaitForValue(BitcaskStore store, string key, string text)
    {
        var storeKey = System.Text.Encoding.UTF8.GetBytes("cache/" + key);
        bool Has() => store.Get(storeKey) is { } v && System.Text.Encoding.UTF8.GetString(v).Contains(text, StringComparison.Ordinal);
        for (var i = 0; i < 500 && !Has(); i++) await Task.Delay(10);
        Assert.True(Has());
    }

    [Fact]
    public void HybridCache_finds_our_cache_as_its_buffer_L2()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        using var sp = Services(store);
        Assert.IsType<BitcaskDistributedCache>(sp.GetRequiredService<IDistributedCache>());
        Assert.Same(sp.GetRequiredService<IDistributedCache>(), sp.GetRequiredService<IBufferDistributedCache>());
    }

    [Fact]
    public async Task A_value_created_by_one_HybridCache_is_served_from_L2_to_another_survives_a_restart_and_RemoveByTag_invalidates_it()
    {
        var store = BitcaskStore.Open(_dir.Path);
        await using (var a = Services(store))
        await using (var b = Services(store))
        {
            var first = await GetOrCreate(a.GetRequiredService<HybridCache>(), "user:42", "alice", ["users"]);
            Assert.Equal(("alice", 1), first);
            await InL2(store, "user:42");
            var second = await GetOrCreate(b.GetRequiredService<HybridCache>(), "user:42", "SHOULD NOT BE CREATED", ["users"]);
            Assert.Equal(("alice", 0), second); // from L2: instance b never ran a factory
        }
        store.Dispose();

        store = BitcaskStore.Open(_dir.Path); // restart
        try
        {
            await using (var c = Services(store))
            {
                var cache = c.GetRequiredService<HybridCache>();
                Assert.Equal(("alice", 0), await GetOrCreate(cache, "user:42", "SHOULD NOT BE CREATED", ["users"]));
                await cache.RemoveByTagAsync("users");
                Assert.Equal(("bob", 1), await GetOrCreate(cache, "user:42", "bob", ["users"]));
                await WaitForValue(store, "user:42", "bob");
            }
            await using (var d = Services(store))
                Assert.Equal(("bob", 0), await GetOrCreate(d.GetRequiredService<HybridCache>(), "user:42", "SHOULD NOT BE CREATED", ["users"]));
        }
        finally
        {
            store.Dispose();
        }
    }

    [Fact]
    public async Task RemoveByTag_in_one_instance_invalidates_the_L2_value_for_a_new_instance()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        await using (var a = Services(store))
        {
            Assert.Equal(("v1", 1), await GetOrCreate(a.GetRequiredService<HybridCache>(), "k", "v1", ["t"]));
            await InL2(store, "k");
        }
        await using (var b = Services(store))
            await b.GetRequiredService<HybridCache>().RemoveByTagAsync("t");
        await using (var c = Services(store))
            Assert.Equal(("v2", 1), await GetOrCreate(c.GetRequiredService<HybridCache>(), "k", "v2", ["t"]));
    }

    [Fact]
    public async Task HybridCache_RemoveAsync_removes_the_value_from_the_store()
    {
        using var store = BitcaskStore.Open(_dir.Path);
        await using var a = Services(store);
        var cache = a.GetRequiredService<HybridCache>();
        await GetOrCreate(cache, "gone", "x");
        await InL2(store, "gone");
        await cache.RemoveAsync("gone");
        Assert.Null(store.GetInfo("cache/gone"u8));
    }
}
