using System.Buffers;
using Bitcask.Extensions.Caching;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Extensions.Tests;

/// <summary>The cases of the .NET team's distributed-cache conformance tests (dotnet/extensions
/// DistributedCacheTests, aspnetcore StackExchangeRedis TimeExpirationTests), run against our cache with a fake clock,
/// plus the sliding-renewal write rule.</summary>
public sealed class CachingTests : IDisposable
{
    private readonly TempDirectory _dir = new("cache");
    private readonly FakeTimeProvider _clock = Clocks.Fake();
    private BitcaskStore _store;
    private BitcaskDistributedCache _cache;

    public CachingTests()
    {
        _store = BitcaskStore.Open(_dir.Path, new BitcaskOptions { TimeProvider = _clock });
        _cache = new BitcaskDistributedCache(_store);
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private void Reopen()
    {
        _store.Dispose();
        _store = BitcaskStore.Open(_dir.Path, new BitcaskOptions { TimeProvider = _clock });
        _cache = new BitcaskDistributedCache(_store);
    }

    private static byte[] Payload(int size)
    {
        var b = new byte[size];
        new Random(size).NextBytes(b);
        return b;
    }

    public static TheoryData<int> Sizes => [0, 128, 1024, 16 * 1024];

    [Theory]
    [MemberData(nameof(Sizes))]
    public void A_byte_array_value_round_trips_through_Get_and_TryGet(int size)
    {
        var value = Payload(size);
        _cache.Set("k", value, new DistributedCacheEntryOptions());
        Assert.Equal(value, _cache.Get("k"));
        var writer = new ArrayBufferWriter<byte>();
        Assert.True(_cache.TryGet("k", writer));
        Assert.Equal(value, writer.WrittenSpan.ToArray());
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task A_byte_array_value_round_trips_asynchronously(int size)
    {
        var value = Payload(size);
        await _cache.SetAsync("k", value, new DistributedCacheEntryOptions());
        Assert.Equal(value, await _cache.GetAsync("k"));
        var writer = new ArrayBufferWriter<byte>();
        Assert.True(await _cache.TryGetAsync("k", writer));
        Assert.Equal(value, writer.WrittenSpan.ToArray());
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(128, 1)]
    [InlineData(1024, 1)]
    [InlineData(16 * 1024, 1)]
    [InlineData(128, 3)]
    [InlineData(1024, 7)]
    [InlineData(16 * 1024, 10)]
    public async Task A_ReadOnlySequence_value_round_trips_whether_single_or_multi_segment(int size, int segments)
    {
        var value = Payload(size);
        var sequence = Segment.Split(value, segments);
        Assert.Equal(segments > 1 && size > 0, !sequence.IsSingleSegment);
        _cache.Set("sync", sequence, new DistributedCacheEntryOptions());
        await _cache.SetAsync("async", sequence, new DistributedCacheEntryOptions());
        foreach (var key in new[] { "sync", "async" })
        {
            var writer = new ArrayBufferWriter<byte>();
            Assert.True(_cache.TryGet(key, writer));
            Assert.Equal(value, writer.WrittenSpan.ToArray());
            Assert.Equal(value, await _cache.GetAsync(key));
        }
    }

    [Fact]
    public void A_missing_key_is_a_miss_and_writes_nothing_to_the_destination()
    {
        var writer = new ArrayBufferWriter<byte>();
        Assert.False(_cache.TryGet("absent", writer));
        Assert.Equal(0, writer.WrittenCount);
        Assert.Null(_cache.Get("absent"));
    }

    [Fact]
    public async Task Remove_deletes_the_entry()
    {
        _cache.Set("a", [1], new DistributedCacheEntryOptions());
        _cache.Set("b", [2], new DistributedCacheEntryOptions());
        _cache.Remove("a");
        await _cache.RemoveAsync("b");
        Assert.Null(_cache.Get("a"));
        Assert.Null(_cache.Get("b"));
    }

    [Fact]
    public void An_entry_without_expiration_survives_a_restart_and_time()
    {
        _cache.Set("k", [1, 2, 3], new DistributedCacheEntryOptions());
        Reopen();
        _clock.Advance(TimeSpan.FromDays(400));
        Assert.Equal([1, 2, 3], _cache.Get("k"));
    }

    [Fact]
    public void An_absolute_expiration_in_the_past_throws()
    {
        var past = _clock.GetUtcNow() - TimeSpan.FromMinutes(1);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = past }));
        Assert.Contains("must be in the future", ex.Message);
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void An_absolute_expiration_expires_at_that_instant_by_the_clock()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = _clock.GetUtcNow().AddSeconds(1.1) });
        _clock.Advance(TimeSpan.FromMilliseconds(1099));
        Assert.NotNull(_cache.Get("k"));
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void A_sub_second_absolute_expiration_is_kept_to_the_millisecond()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = _clock.GetUtcNow().AddMilliseconds(250) });
        Assert.NotNull(_cache.Get("k"));
        _clock.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void Negative_and_zero_relative_and_sliding_expirations_are_rejected()
    {
        var options = new DistributedCacheEntryOptions();
        Assert.Throws<ArgumentOutOfRangeException>(() => options.AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => options.AbsoluteExpirationRelativeToNow = TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.SlidingExpiration = TimeSpan.FromMinutes(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => options.SlidingExpiration = TimeSpan.Zero);
    }

    [Fact]
    public void A_relative_expiration_expires_after_that_long()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(1) });
        _clock.Advance(TimeSpan.FromMilliseconds(999));
        Assert.NotNull(_cache.Get("k"));
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void A_relative_expiration_wins_over_an_absolute_one_whether_shorter_or_longer()
    {
        var now = _clock.GetUtcNow();
        _cache.Set("shorter", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = now.AddMinutes(10), AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(1) });
        _cache.Set("longer", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = now.AddMinutes(1), AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(10) });
        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(_cache.Get("shorter"));
        Assert.NotNull(_cache.Get("longer"));
        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(_cache.Get("longer"));
    }

    [Fact]
    public void A_sliding_expiration_expires_if_not_accessed()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(1) });
        Assert.NotNull(_cache.Get("k"));
        _clock.Advance(TimeSpan.FromMilliseconds(1000));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void A_sliding_expiration_is_renewed_by_each_access()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(1) });
        for (var i = 0; i < 10; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(900));
            Assert.NotNull(_cache.Get("k")); // 9 s in all: far past one window
        }
        _clock.Advance(TimeSpan.FromMilliseconds(1000));
        Assert.Null(_cache.Get("k"));
    }

    [Theory]
    [InlineData(false)] // absolute
    [InlineData(true)]  // relative
    public void A_sliding_expiration_is_renewed_by_access_but_never_past_the_absolute_expiration(bool relative)
    {
        var options = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(1) };
        if (relative) options.AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(3);
        else options.AbsoluteExpiration = _clock.GetUtcNow().AddSeconds(3);
        _cache.Set("k", [1], options);
        for (var i = 0; i < 5; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(500));
            Assert.NotNull(_cache.Get("k")); // 2.5 s
        }
        _clock.Advance(TimeSpan.FromMilliseconds(499));
        Assert.NotNull(_cache.Get("k")); // 2.999 s
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(_cache.Get("k")); // 3 s: the absolute expiry, although accessed 1 ms ago
    }

    [Fact]
    public void A_sliding_expiration_longer_than_the_absolute_one_ends_at_the_absolute_one()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(10), AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(1) });
        _clock.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(_cache.Get("k"));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public async Task Refresh_renews_a_sliding_expiration_without_reading_the_value()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(1) });
        _clock.Advance(TimeSpan.FromMilliseconds(800));
        _cache.Refresh("k");
        _clock.Advance(TimeSpan.FromMilliseconds(800));
        await _cache.RefreshAsync("k");
        _clock.Advance(TimeSpan.FromMilliseconds(800));
        Assert.NotNull(_cache.Get("k")); // 2.4 s after Set
        _clock.Advance(TimeSpan.FromMilliseconds(1000));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void Refresh_does_not_extend_an_absolute_expiration()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(1) });
        _clock.Advance(TimeSpan.FromMilliseconds(900));
        _cache.Refresh("k");
        _clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void Reads_within_the_persist_fraction_of_the_window_write_nothing_and_a_larger_move_writes_once()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(100) }); // fraction 0.1: 10 s
        var revision = _store.Revision;
        for (var i = 0; i < 9; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            Assert.NotNull(_cache.Get("k"));
        }
        Assert.Equal(revision, _store.Revision); // 9 reads, deadline moved 9 s: memory only
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(_cache.Get("k"));
        Assert.Equal(revision + 1, _store.Revision); // moved 10 s: written once
        for (var i = 0; i < 5; i++) Assert.NotNull(_cache.Get("k"));
        Assert.Equal(revision + 1, _store.Revision);
    }

    [Fact]
    public void After_a_restart_a_sliding_entry_expires_early_by_at_most_the_persist_fraction_never_late()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(100) });
        _clock.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(_cache.Get("k")); // renewed to t=109 s in memory; t=100 s written
        Reopen(); // the in-memory renewal is lost, as in a crash
        _clock.Advance(TimeSpan.FromSeconds(90)); // t=99: before the written deadline
        Assert.NotNull(_cache.Get("k")); // and this renews to t=199 (moved 99 s: written)
        Reopen();
        _clock.Advance(TimeSpan.FromSeconds(99)); // t=198
        Assert.NotNull(_cache.Get("k"));
        _clock.Advance(TimeSpan.FromSeconds(100)); // t=298: 100 s after the last read (at most 10 s early allowed, never late)
        Assert.Null(_cache.Get("k"));
    }

    [Fact]
    public void A_sliding_entry_lives_while_renewed_in_memory_even_past_its_written_deadline()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(100) });
        _clock.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(_cache.Get("k")); // deadline 109 in memory, 100 written
        _clock.Advance(TimeSpan.FromSeconds(95)); // t=104: past the written deadline, before the renewed one
        Assert.NotNull(_cache.Get("k"));
    }

    [Fact]
    public void The_store_reclaims_an_expired_entry_by_its_time_to_live()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(5) });
        Assert.NotNull(_store.GetInfo("cache/k"u8));
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Null(_store.GetInfo("cache/k"u8)); // without a cache read: the store's own expiry
    }

    [Fact]
    public void A_set_replaces_the_value_and_its_expiration()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(1) });
        _cache.Set("k", [2], new DistributedCacheEntryOptions());
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal([2], _cache.Get("k"));
    }

    [Fact]
    public void Caches_with_different_prefixes_do_not_see_each_other()
    {
        var other = new BitcaskDistributedCache(_store, new BitcaskCacheOptions { KeyPrefix = "other/" });
        _cache.Set("k", [1], new DistributedCacheEntryOptions());
        Assert.Null(other.Get("k"));
        Assert.NotNull(_store.GetInfo("cache/k"u8));
    }

    [Fact]
    public void The_container_registration_uses_the_container_TimeProvider_and_the_configured_options()
    {
        var hostClock = Clocks.Fake();
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton<TimeProvider>(services, hostClock);
        services.AddBitcaskDistributedCache(_store, o => o.KeyPrefix = "di/");
        using var sp = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        var cache = (IDistributedCache)sp.GetService(typeof(IDistributedCache))!;
        Assert.Same(cache, sp.GetService(typeof(IBufferDistributedCache)));
        cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) });
        Assert.NotNull(_store.GetInfo("di/k"u8));
        hostClock.Advance(TimeSpan.FromHours(1)); // the store's clock did not move: only the host's clock expires it
        Assert.Null(cache.Get("k"));
    }

    [Fact]
    public void Bad_options_are_rejected_with_the_option_named()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new BitcaskDistributedCache(_store, new BitcaskCacheOptions { SlidingPersistFraction = 1 }));
        Assert.Contains("SlidingPersistFraction", ex.Message);
        Assert.Throws<ArgumentNullException>(() => _cache.Get(null!));
    }
}
