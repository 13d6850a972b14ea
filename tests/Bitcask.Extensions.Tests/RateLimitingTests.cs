using System.Threading.RateLimiting;
using Bitcask.Extensions.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Extensions.Tests;

public sealed class RateLimitingTests : IDisposable
{
    private readonly TempDirectory _dir = new("ratelimit");
    private readonly FakeTimeProvider _clock = Clocks.Fake(); // 2030-01-01T00:00:00Z: a whole minute, so windows start now
    private BitcaskStore _store;

    public RateLimitingTests() => _store = Open();

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private BitcaskStore Open() => BitcaskStore.Open(_dir.Path, new BitcaskOptions { TimeProvider = _clock });

    private static FixedWindowRateLimiterOptions Fixed(int limit, TimeSpan window, int queue = 0, QueueProcessingOrder order = QueueProcessingOrder.OldestFirst) =>
        new() { PermitLimit = limit, Window = window, QueueLimit = queue, QueueProcessingOrder = order };

    private static TimeSpan RetryAfter(RateLimitLease lease)
    {
        Assert.False(lease.IsAcquired);
        Assert.Contains(MetadataName.RetryAfter.Name, lease.MetadataNames);
        Assert.True(lease.TryGetMetadata(MetadataName.RetryAfter, out var retry));
        return retry;
    }

    public static TheoryData<string> Kinds => ["fixed", "sliding", "bucket"];

    private PartitionedRateLimiter<string> Create(string kind, int limit) => kind switch
    {
        "fixed" => BitcaskRateLimiter.CreateFixedWindow(_store, kind, (string r) => r, Fixed(limit, TimeSpan.FromMinutes(1))),
        "sliding" => BitcaskRateLimiter.CreateSlidingWindow(_store, kind, (string r) => r,
            new SlidingWindowRateLimiterOptions { PermitLimit = limit, Window = TimeSpan.FromMinutes(1), SegmentsPerWindow = 6 }),
        _ => BitcaskRateLimiter.CreateTokenBucket(_store, kind, (string r) => r,
            new TokenBucketRateLimiterOptions { TokenLimit = limit, TokensPerPeriod = 1, ReplenishmentPeriod = TimeSpan.FromMinutes(1) }),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Exactly_the_limit_is_granted_to_16_threads_racing_on_one_partition(string kind)
    {
        using var limiter = Create(kind, 1000);
        var granted = 0;
        using var start = new Barrier(16);
        var threads = Enumerable.Range(0, 16).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 150; i++)
                if (limiter.AttemptAcquire("client").IsAcquired) Interlocked.Increment(ref granted);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(1000, granted); // 2,400 attempts
        Assert.Equal(0, limiter.GetStatistics("client")!.CurrentAvailablePermits);
        Assert.True(limiter.AttemptAcquire("other client").IsAcquired); // partitions are separate
    }

    [Fact]
    public void A_fixed_window_failure_says_when_the_window_ends()
    {
        using var limiter = BitcaskRateLimiter.CreateFixedWindow(_store, "api", (string r) => r, Fixed(2, TimeSpan.FromMinutes(1)));
        _clock.Advance(TimeSpan.FromSeconds(20));
        Assert.True(limiter.AttemptAcquire("c").IsAcquired);
        Assert.True(limiter.AttemptAcquire("c").IsAcquired);
        var denied = limiter.AttemptAcquire("c");
        Assert.Equal(TimeSpan.FromSeconds(40), RetryAfter(denied));
        _clock.Advance(TimeSpan.FromSeconds(39));
        Assert.Equal(TimeSpan.FromSeconds(1), RetryAfter(limiter.AttemptAcquire("c")));
        _clock.Advance(TimeSpan.FromSeconds(1));
        var lease = limiter.AttemptAcquire("c");
        Assert.True(lease.IsAcquired);
        Assert.Empty(lease.MetadataNames);
    }

    [Fact]
    public void A_sliding_window_failure_says_when_the_oldest_counted_segment_leaves_the_window()
    {
        using var limiter = BitcaskRateLimiter.CreateSlidingWindow(_store, "api",
            new SlidingWindowRateLimiterOptions { PermitLimit = 2, Window = TimeSpan.FromSeconds(60), SegmentsPerWindow = 3 });
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.True(limiter.AttemptAcquire().IsAcquired);  // segment [0, 20)
        _clock.Advance(TimeSpan.FromSeconds(20));
        Assert.True(limiter.AttemptAcquire().IsAcquired);  // segment [20, 40)
        _clock.Advance(TimeSpan.FromSeconds(5));           // t = 30
        Assert.Equal(TimeSpan.FromSeconds(30), RetryAfter(limiter.AttemptAcquire())); // [0, 20) leaves at t = 60
        Assert.Equal(TimeSpan.FromSeconds(50), RetryAfter(limiter.AttemptAcquire(2))); // both gone at t = 80
        _clock.Advance(TimeSpan.FromSeconds(30));          // t = 60
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        Assert.False(limiter.AttemptAcquire().IsAcquired);
    }

    [Fact]
    public void A_token_bucket_failure_says_when_enough_tokens_are_back()
    {
        using var limiter = BitcaskRateLimiter.CreateTokenBucket(_store, "api",
            new TokenBucketRateLimiterOptions { TokenLimit = 2, TokensPerPeriod = 1, ReplenishmentPeriod = TimeSpan.FromSeconds(10) });
        Assert.True(limiter.AttemptAcquire(2).IsAcquired);
        _clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(7), RetryAfter(limiter.AttemptAcquire()));
        Assert.Equal(TimeSpan.FromSeconds(17), RetryAfter(limiter.AttemptAcquire(2)));
        _clock.Advance(TimeSpan.FromSeconds(7));
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        Assert.False(limiter.AttemptAcquire().IsAcquired);
        _clock.Advance(TimeSpan.FromSeconds(100)); // the bucket refills to its limit, not beyond
        Assert.True(limiter.AttemptAcquire(2).IsAcquired);
        Assert.False(limiter.AttemptAcquire().IsAcquired);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Counts_survive_a_restart_so_a_crash_does_not_reset_a_quota(string kind)
    {
        using (var limiter = Create(kind, 3))
            for (var i = 0; i < 3; i++) Assert.True(limiter.AttemptAcquire("c").IsAcquired);
        _store.Dispose();
        _store = Open();
        using (var limiter = Create(kind, 3))
        {
            Assert.True(RetryAfter(limiter.AttemptAcquire("c")) > TimeSpan.Zero);
            _clock.Advance(TimeSpan.FromMinutes(3));
            Assert.True(limiter.AttemptAcquire("c").IsAcquired);
        }
    }

    [Fact]
    public void State_whose_window_has_passed_is_reclaimed_by_the_store()
    {
        using var limiter = BitcaskRateLimiter.CreateFixedWindow(_store, "api", (string r) => r, Fixed(5, TimeSpan.FromSeconds(10)));
        Assert.True(limiter.AttemptAcquire("c").IsAcquired);
        Assert.NotNull(_store.GetInfo("ratelimit/api/c"u8)?.ExpiresAt);
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Null(_store.GetInfo("ratelimit/api/c"u8));
    }

    [Fact]
    public async Task AcquireAsync_queues_oldest_first_up_to_the_queue_limit_and_serves_as_windows_open()
    {
        using var limiter = BitcaskRateLimiter.CreateFixedWindow(_store, "api", Fixed(1, TimeSpan.FromSeconds(10), queue: 2));
        Assert.True((await limiter.AcquireAsync()).IsAcquired);
        var first = limiter.AcquireAsync().AsTask();
        var second = limiter.AcquireAsync().AsTask();
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);
        Assert.Equal(2, limiter.GetStatistics()!.CurrentQueuedCount);
        var overflow = await limiter.AcquireAsync(); // the queue is full: oldest first fails the newcomer
        Assert.Equal(TimeSpan.FromSeconds(10), RetryAfter(overflow));
        Assert.False(limiter.AttemptAcquire().IsAcquired); // queued requests come before a newcomer's attempt

        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True((await first.WaitAsync(TimeSpan.FromSeconds(10))).IsAcquired);
        Assert.False(second.IsCompleted); // one permit per window
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True((await second.WaitAsync(TimeSpan.FromSeconds(10))).IsAcquired);
        Assert.Equal(0, limiter.GetStatistics()!.CurrentQueuedCount);
    }

    [Fact]
    public async Task AcquireAsync_newest_first_fails_the_oldest_waiter_to_make_room()
    {
        using var limiter = BitcaskRateLimiter.CreateFixedWindow(_store, "api", Fixed(1, TimeSpan.FromSeconds(10), queue: 1, QueueProcessingOrder.NewestFirst));
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        var older = limiter.AcquireAsync().AsTask();
        var newer = limiter.AcquireAsync().AsTask();
        Assert.False((await older.WaitAsync(TimeSpan.FromSeconds(10))).IsAcquired);
        Assert.False(newer.IsCompleted);
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True((await newer.WaitAsync(TimeSpan.FromSeconds(10))).IsAcquired);
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_the_queue_and_disposing_fails_the_rest()
    {
        var limiter = BitcaskRateLimiter.CreateFixedWindow(_store, "api", Fixed(1, TimeSpan.FromSeconds(10), queue: 2));
        Assert.True(limiter.AttemptAcquire().IsAcquired);
        using var cts = new CancellationTokenSource();
        var cancelled = limiter.AcquireAsync(1, cts.Token).AsTask();
        var disposed = limiter.AcquireAsync().AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(1, limiter.GetStatistics()!.CurrentQueuedCount);
        limiter.Dispose();
        Assert.False((await disposed.WaitAsync(TimeSpan.FromSeconds(10))).IsAcquired);
        Assert.Throws<ObjectDisposedException>(() => limiter.AttemptAcquire());
    }

    [Fact]
    public void Asking_for_more_permits_than_the_limit_throws_with_the_limit_named()
    {
        using var limiter = BitcaskRateLimiter.CreateFixedWindow(_store, "api", Fixed(5, TimeSpan.FromSeconds(10)));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AttemptAcquire(6));
        Assert.Contains("permit limit of 5", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => BitcaskRateLimiter.CreateSlidingWindow(_store, "x",
            new SlidingWindowRateLimiterOptions { PermitLimit = 1, Window = TimeSpan.FromMilliseconds(10), SegmentsPerWindow = 3 }));
    }

    [Fact]
    public void Two_limiters_with_the_same_name_over_one_store_share_their_counts()
    {
        using var a = BitcaskRateLimiter.CreateFixedWindow(_store, "shared", Fixed(3, TimeSpan.FromMinutes(1)));
        using var b = BitcaskRateLimiter.CreateFixedWindow(_store, "shared", Fixed(3, TimeSpan.FromMinutes(1)));
        Assert.True(a.AttemptAcquire(2).IsAcquired);
        Assert.True(b.AttemptAcquire().IsAcquired);
        Assert.False(a.AttemptAcquire().IsAcquired);
        Assert.False(b.AttemptAcquire().IsAcquired);
    }
}
