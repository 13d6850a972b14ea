using System.Threading.RateLimiting;

namespace Bitcask.Extensions.RateLimiting;

/// <summary>Where and by which clock the durable limiters keep their state.</summary>
public sealed class BitcaskRateLimiterOptions
{
    /// <summary>Prefix of the store keys of limiter state: a partition <c>p</c> of limiter <c>name</c> is the key
    /// <c>KeyPrefix + name + "/" + p</c> (UTF-8). Default <c>"ratelimit/"</c>.</summary>
    public string KeyPrefix { get; set; } = "ratelimit/";

    /// <summary>The clock windows and replenishment follow. Null (default): the store's
    /// <see cref="BitcaskOptions.TimeProvider"/>. Use the store's clock (or one that agrees with it): the store reclaims
    /// state whose window has passed by its own clock.</summary>
    public TimeProvider? TimeProvider { get; set; }
}

/// <summary>
/// Durable rate limiters for <c>System.Threading.RateLimiting</c>: fixed window, sliding window and token bucket, as a
/// <see cref="PartitionedRateLimiter{TResource}"/> (one state per partition key) or a single <see cref="RateLimiter"/>.
/// </summary>
/// <remarks>
/// <para>Each partition's state is one small value in the store, changed with the store's atomic
/// <see cref="BitcaskStore.Update"/>: counts are exact under concurrency (also across limiter instances over one store)
/// and survive a restart, so a client cannot reset its quota by crashing the service. State is written with a time to
/// live ending when it stops mattering (the window passed, the bucket is full again), so the store reclaims it.</para>
/// <para>Windows and segments are aligned to the Unix epoch by the limiter's clock (every process and restart agrees on
/// them); a token bucket replenishes <c>TokensPerPeriod</c> per whole <c>ReplenishmentPeriod</c> since its last
/// replenishment (computed on each acquire: <c>AutoReplenishment</c> is ignored, there is nothing to call).</para>
/// <para><c>AttemptAcquire</c> is synchronous (one store read-modify-write). <c>AcquireAsync</c> queues as the built-in
/// limiters do: up to <c>QueueLimit</c> permits wait per partition (in this process's memory), served in
/// <c>QueueProcessingOrder</c>; with <see cref="QueueProcessingOrder.NewestFirst"/> a full queue fails its oldest waiters
/// to make room, with <see cref="QueueProcessingOrder.OldestFirst"/> it fails the new request. A failed lease carries
/// <see cref="MetadataName.RetryAfter"/>: when the permits asked for can be there. Disposing the limiter fails every
/// queued request; leases need not be disposed (window and bucket permits are not given back).</para>
/// <para>Thread-safety: the limiters are safe to use from any number of threads.</para>
/// </remarks>
public static class BitcaskRateLimiter
{
    /// <summary>A fixed-window limiter per partition: at most <c>PermitLimit</c> permits per <c>Window</c>.</summary>
    /// <param name="store">Where the state lives (kept open by the caller).</param>
    /// <param name="name">The limiter's name, part of its keys: limiters with the same name share their counts.</param>
    /// <param name="partitionKey">The partition of a resource (e.g. the client id).</param>
    /// <param name="options">The limits, as for <see cref="FixedWindowRateLimiter"/>.</param>
    /// <param name="storeOptions">Key prefix and clock.</param>
    public static PartitionedRateLimiter<TResource> CreateFixedWindow<TResource>(BitcaskStore store, string name,
        Func<TResource, string> partitionKey, FixedWindowRateLimiterOptions options, BitcaskRateLimiterOptions? storeOptions = null) =>
        new PartitionedDurableLimiter<TResource>(new DurableLimiterCore(store, new FixedWindowAlgorithm(options), name, storeOptions), partitionKey);

    /// <summary>A sliding-window limiter per partition: at most <c>PermitLimit</c> permits in any <c>Window</c>, counted
    /// per segment (<c>SegmentsPerWindow</c>; the window must be a whole number of milliseconds per segment).</summary>
    /// <inheritdoc cref="CreateFixedWindow{TResource}" path="/param"/>
    public static PartitionedRateLimiter<TResource> CreateSlidingWindow<TResource>(BitcaskStore store, string name,
        Func<TResource, string> partitionKey, SlidingWindowRateLimiterOptions options, BitcaskRateLimiterOptions? storeOptions = null) =>
        new PartitionedDurableLimiter<TResource>(new DurableLimiterCore(store, new SlidingWindowAlgorithm(options), name, storeOptions), partitionKey);

    /// <summary>A token-bucket limiter per partition: <c>TokenLimit</c> tokens, <c>TokensPerPeriod</c> more every
    /// <c>ReplenishmentPeriod</c>.</summary>
    /// <inheritdoc cref="CreateFixedWindow{TResource}" path="/param"/>
    public static PartitionedRateLimiter<TResource> CreateTokenBucket<TResource>(BitcaskStore store, string name,
        Func<TResource, string> partitionKey, TokenBucketRateLimiterOptions options, BitcaskRateLimiterOptions? storeOptions = null) =>
        new PartitionedDurableLimiter<TResource>(new DurableLimiterCore(store, new TokenBucketAlgorithm(options), name, storeOptions), partitionKey);

    /// <summary>A single fixed-window limiter (its state is one key).</summary>
    /// <param name="store">Where the state lives (kept open by the caller).</param>
    /// <param name="name">The limiter's name, its key: limiters with the same name share their counts.</param>
    /// <param name="options">The limits, as for <see cref="FixedWindowRateLimiter"/>.</param>
    /// <param name="storeOptions">Key prefix and clock.</param>
    public static RateLimiter CreateFixedWindow(BitcaskStore store, string name, FixedWindowRateLimiterOptions options,
        BitcaskRateLimiterOptions? storeOptions = null) =>
        new SingleDurableLimiter(new DurableLimiterCore(store, new FixedWindowAlgorithm(options), name, storeOptions));

    /// <summary>A single sliding-window limiter (its state is one key).</summary>
    /// <inheritdoc cref="CreateFixedWindow(BitcaskStore, string, FixedWindowRateLimiterOptions, BitcaskRateLimiterOptions?)" path="/param"/>
    public static RateLimiter CreateSlidingWindow(BitcaskStore store, string name, SlidingWindowRateLimiterOptions options,
        BitcaskRateLimiterOptions? storeOptions = null) =>
        new SingleDurableLimiter(new DurableLimiterCore(store, new SlidingWindowAlgorithm(options), name, storeOptions));

    /// <summary>A single token-bucket limiter (its state is one key).</summary>
    /// <inheritdoc cref="CreateFixedWindow(BitcaskStore, string, FixedWindowRateLimiterOptions, BitcaskRateLimiterOptions?)" path="/param"/>
    public static RateLimiter CreateTokenBucket(BitcaskStore store, string name, TokenBucketRateLimiterOptions options,
        BitcaskRateLimiterOptions? storeOptions = null) =>
        new SingleDurableLimiter(new DurableLimiterCore(store, new TokenBucketAlgorithm(options), name, storeOptions));
}

internal sealed class PartitionedDurableLimiter<TResource>(DurableLimiterCore core, Func<TResource, string> partitionKey)
    : PartitionedRateLimiter<TResource>
{
    private readonly Func<TResource, string> _partitionKey = partitionKey ?? throw new ArgumentNullException(nameof(partitionKey));

    public override RateLimiterStatistics? GetStatistics(TResource resource) => core.GetStatistics(_partitionKey(resource));

    protected override RateLimitLease AttemptAcquireCore(TResource resource, int permitCount) =>
        core.AttemptAcquire(_partitionKey(resource), permitCount);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken) =>
        core.AcquireAsync(_partitionKey(resource), permitCount, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing) core.Dispose();
    }

    protected override ValueTask DisposeAsyncCore()
    {
        core.Dispose();
        return ValueTask.CompletedTask;
    }
}

internal sealed class SingleDurableLimiter(DurableLimiterCore core) : RateLimiter
{
    private const string Partition = "";

    public override TimeSpan? IdleDuration => core.IdleDuration(Partition);

    public override RateLimiterStatistics? GetStatistics() => core.GetStatistics(Partition);

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => core.AttemptAcquire(Partition, permitCount);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        core.AcquireAsync(Partition, permitCount, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing) core.Dispose();
    }

    protected override ValueTask DisposeAsyncCore()
    {
        core.Dispose();
        return ValueTask.CompletedTask;
    }
}
