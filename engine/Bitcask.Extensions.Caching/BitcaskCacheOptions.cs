namespace Bitcask.Extensions.Caching;

/// <summary>
/// Options of a <see cref="BitcaskDistributedCache"/>. Set them before the cache is created; a cache reads them once.
/// </summary>
public sealed class BitcaskCacheOptions
{
    /// <summary>Prefix of the store keys the cache writes (a cache key <c>k</c> is stored under <c>KeyPrefix + k</c>,
    /// UTF-8). Default <c>"cache/"</c>. Two caches with different prefixes share a store without seeing each other.</summary>
    public string KeyPrefix { get; set; } = "cache/";

    /// <summary>The clock expirations are computed with. Null (default): the one registered in the service container, else
    /// the store's <see cref="BitcaskOptions.TimeProvider"/>. Use the store's clock (or one that agrees with it): the
    /// store reclaims expired entries by its own clock.</summary>
    public TimeProvider? TimeProvider { get; set; }

    /// <summary>
    /// The fraction of an entry's sliding window by which its sliding deadline must have moved before a read (or
    /// <c>Refresh</c>) writes it to the store; smaller moves are kept in memory only. Default 0.1: a key read constantly
    /// is written about ten times per window instead of on every read. After a crash (or by another cache instance,
    /// which does not see this one's memory) an entry may expire up to this fraction of its window early, never late.
    /// 0 writes on every read. Must be in [0, 1).
    /// </summary>
    public double SlidingPersistFraction { get; set; } = 0.1;

    /// <summary>The most sliding deadlines kept in memory (default 65,536). Beyond it a read that moves a deadline writes
    /// it (as with <see cref="SlidingPersistFraction"/> 0) instead of remembering it.</summary>
    public int MaxTrackedSlidingEntries { get; set; } = 65_536;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(KeyPrefix, nameof(KeyPrefix));
        if (!(SlidingPersistFraction >= 0 && SlidingPersistFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(SlidingPersistFraction), SlidingPersistFraction, "SlidingPersistFraction must be in [0, 1).");
        if (MaxTrackedSlidingEntries < 0)
            throw new ArgumentOutOfRangeException(nameof(MaxTrackedSlidingEntries), MaxTrackedSlidingEntries, "MaxTrackedSlidingEntries must be 0 or more.");
    }
}
