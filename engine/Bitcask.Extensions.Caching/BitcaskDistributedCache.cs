using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Caching;

/// <summary>
/// <see cref="IBufferDistributedCache"/> (and so <see cref="IDistributedCache"/>) over a <see cref="BitcaskStore"/>: a
/// durable, crash-safe distributed cache, and an L2 for <c>HybridCache</c>.
/// </summary>
/// <remarks>
/// <para>Expiration follows <see cref="DistributedCacheEntryOptions"/>: <see cref="DistributedCacheEntryOptions.AbsoluteExpirationRelativeToNow"/>
/// wins over <see cref="DistributedCacheEntryOptions.AbsoluteExpiration"/>; an absolute expiration that is not in the
/// future throws <see cref="ArgumentOutOfRangeException"/>; a sliding expiration is renewed by every read and by
/// <see cref="Refresh"/> but never past the absolute expiration. Times come from <see cref="BitcaskCacheOptions.TimeProvider"/>.</para>
/// <para>Sliding renewals do not write on every read: the renewed deadline is kept in memory and written only once it
/// has moved by <see cref="BitcaskCacheOptions.SlidingPersistFraction"/> of the window since the written one. After a
/// crash an entry may therefore expire up to that fraction of its window early, never late. Every entry is also stored
/// with a time to live, so the store reclaims expired entries by itself.</para>
/// <para>Thread-safety: every member is safe to call concurrently. Several instances may share one store (each keeps
/// its own in-memory renewals; a reader of another instance sees the written deadline, so at worst an early expiry).</para>
/// </remarks>
public sealed class BitcaskDistributedCache : IBufferDistributedCache
{
    // Record value: [0] format (1) | [1..9) absolute expiry, Unix ms (0 none) | [9..17) sliding window, ms (0 none)
    // | [17..25) written sliding deadline, Unix ms (0 none) | payload. Little-endian.
    private const byte FormatVersion = 1;
    internal const int HeaderSize = 25;
    private static readonly TimeSpan MaxStoreTtl = TimeSpan.FromDays(365 * 100);

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_read;

    private readonly BitcaskStore _store;
    private readonly byte[] _prefix;
    private readonly TimeProvider _clock;
    private readonly double _fraction;
    private readonly int _maxTracked;
    private readonly ConcurrentDictionary<string, Sliding> _sliding = new(StringComparer.Ordinal);

    /// <summary>A renewed sliding deadline not written yet, valid for the record version it was computed on.</summary>
    private readonly record struct Sliding(long Version, long Deadline);

    /// <summary>A cache over <paramref name="store"/> (which the caller keeps open and disposes).</summary>
    public BitcaskDistributedCache(BitcaskStore store, BitcaskCacheOptions? options = null)
        : this(store, options ?? new BitcaskCacheOptions(), null)
    {
    }

    /// <summary>The constructor the service container uses: options from <see cref="IOptions{TOptions}"/>, and the
    /// container's <see cref="TimeProvider"/> when <see cref="BitcaskCacheOptions.TimeProvider"/> is not set.</summary>
    public BitcaskDistributedCache(BitcaskStore store, IOptions<BitcaskCacheOptions> options, TimeProvider? timeProvider = null)
        : this(store, (options ?? throw new ArgumentNullException(nameof(options))).Value, timeProvider)
    {
    }

    private BitcaskDistributedCache(BitcaskStore store, BitcaskCacheOptions options, TimeProvider? fallbackClock)
    {
        ArgumentNullException.ThrowIfNull(store);
        options.Validate();
        _store = store;
        _prefix = Encoding.UTF8.GetBytes(options.KeyPrefix);
        _clock = options.TimeProvider ?? fallbackClock ?? store.Options.TimeProvider;
        _fraction = options.SlidingPersistFraction;
        _maxTracked = options.MaxTrackedSlidingEntries;
    }

    /// <summary>The store the cache writes to.</summary>
    public BitcaskStore Store => _store;

    /// <inheritdoc />
    public byte[]? Get(string key)
    {
        var buffer = t_read ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        return Read(key, buffer, renew: true) ? buffer.WrittenSpan[HeaderSize..].ToArray() : null;
    }

    /// <inheritdoc />
    public Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        token.ThrowIfCancellationRequested();
        return Task.FromResult(Get(key));
    }

    /// <inheritdoc />
    public bool TryGet(string key, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var buffer = t_read ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        if (!Read(key, buffer, renew: true)) return false;
        destination.Write(buffer.WrittenSpan[HeaderSize..]);
        return true;
    }

    /// <inheritdoc />
    public ValueTask<bool> TryGetAsync(string key, IBufferWriter<byte> destination, CancellationToken token = default)
    {
        token.ThrowIfCancellationRequested();
        return ValueTask.FromResult(TryGet(key, destination));
    }

    /// <inheritdoc />
    public void Set(string key, byte[] value, DistributedCacheEntryOptions options)
    {
        ArgumentNullException.ThrowIfNull(value);
        Set(key, new ReadOnlySequence<byte>(value), options);
    }

    /// <inheritdoc />
    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        return SetAsync(key, new ReadOnlySequence<byte>(value), options, token).AsTask();
    }

    /// <inheritdoc />
    public void Set(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options)
    {
        var storeKey = StoreKey(key);
        var (record, length, ttl) = Encode(value, options);
        try
        {
            _sliding.TryRemove(key, out _);
            _store.Put(storeKey, record.AsSpan(0, length), new WriteOptions(TimeToLive: ttl));
            _sliding.TryRemove(key, out _);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(record);
        }
    }

    /// <inheritdoc />
    public async ValueTask SetAsync(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        token.ThrowIfCancellationRequested();
        var storeKey = StoreKey(key);
        var (record, length, ttl) = Encode(value, options);
        try
        {
            _sliding.TryRemove(key, out _);
            await _store.PutAsync(storeKey, record.AsMemory(0, length), new WriteOptions(TimeToLive: ttl), token).ConfigureAwait(false);
            _sliding.TryRemove(key, out _);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(record);
        }
    }

    /// <summary>Renews the entry's sliding expiration (no effect on an entry without one), under the same write rule as a
    /// read (<see cref="BitcaskCacheOptions.SlidingPersistFraction"/>).</summary>
    public void Refresh(string key)
    {
        var buffer = t_read ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        Read(key, buffer, renew: true);
    }

    /// <inheritdoc cref="Refresh" />
    public Task RefreshAsync(string key, CancellationToken token = default)
    {
        token.ThrowIfCancellationRequested();
        Refresh(key);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Remove(string key)
    {
        _store.Delete(StoreKey(key));
        _sliding.TryRemove(key, out _);
    }

    /// <inheritdoc />
    public Task RemoveAsync(string key, CancellationToken token = default)
    {
        token.ThrowIfCancellationRequested();
        Remove(key);
        return Task.CompletedTask;
    }

    private byte[] StoreKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var bytes = new byte[_prefix.Length + Encoding.UTF8.GetByteCount(key)];
        _prefix.CopyTo(bytes, 0);
        Encoding.UTF8.GetBytes(key, bytes.AsSpan(_prefix.Length));
        return bytes;
    }

    private long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The record for <paramref name="value"/> in a pooled array, its length, and the store time to live.</summary>
    private (byte[] Record, int Length, TimeSpan? Ttl) Encode(ReadOnlySequence<byte> value, DistributedCacheEntryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var now = _clock.GetUtcNow();
        long absolute = 0;
        if (options.AbsoluteExpirationRelativeToNow is { } relative)
            absolute = Saturate(now, relative);
        else if (options.AbsoluteExpiration is { } at)
        {
            if (at <= now)
                throw new ArgumentOutOfRangeException(nameof(options), at, "The absolute expiration value must be in the future.");
            absolute = at.ToUnixTimeMilliseconds();
        }
        long window = 0, slidingDeadline = 0;
        if (options.SlidingExpiration is { } sliding)
        {
            window = Math.Max(1, (long)Math.Ceiling(sliding.TotalMilliseconds));
            slidingDeadline = Saturate(now, sliding);
            if (absolute != 0) slidingDeadline = Math.Min(slidingDeadline, absolute);
        }
        if (value.Length > int.MaxValue - HeaderSize)
            throw new ArgumentOutOfRangeException(nameof(value), value.Length, "A cache value must be smaller than 2 GiB.");
        var length = HeaderSize + (int)value.Length;
        var record = ArrayPool<byte>.Shared.Rent(length);
        WriteHeader(record, absolute, window, slidingDeadline);
        value.CopyTo(record.AsSpan(HeaderSize));
        return (record, length, StoreTtl(now.ToUnixTimeMilliseconds(), absolute, window, slidingDeadline));
    }

    private static long Saturate(DateTimeOffset now, TimeSpan add)
    {
        var ms = (long)Math.Ceiling(add.TotalMilliseconds);
        var nowMs = now.ToUnixTimeMilliseconds();
        return ms > long.MaxValue / 2 - nowMs ? long.MaxValue / 2 : nowMs + Math.Max(1, ms);
    }

    private static void WriteHeader(Span<byte> record, long absolute, long window, long slidingDeadline)
    {
        record[0] = FormatVersion;
        BinaryPrimitives.WriteInt64LittleEndian(record[1..], absolute);
        BinaryPrimitives.WriteInt64LittleEndian(record[9..], window);
        BinaryPrimitives.WriteInt64LittleEndian(record[17..], slidingDeadline);
    }

    /// <summary>How long the store keeps the record: until the absolute expiry or the written sliding deadline plus the
    /// part of the window a renewal may move it in memory only, whichever comes first (null: no expiry).</summary>
    private TimeSpan? StoreTtl(long now, long absolute, long window, long slidingDeadline)
    {
        var end = absolute == 0 ? long.MaxValue : absolute;
        if (window != 0) end = Math.Min(end, slidingDeadline + (long)Math.Ceiling(window * _fraction) + 1);
        if (end == long.MaxValue) return null;
        var ttl = TimeSpan.FromMilliseconds(Math.Max(1, Math.Min(end - now, (long)MaxStoreTtl.TotalMilliseconds)));
        return ttl >= MaxStoreTtl ? null : ttl;
    }

    /// <summary>Reads the record of <paramref name="key"/> into <paramref name="buffer"/> (header included) when it is
    /// live by the cache's clock, renewing its sliding deadline.</summary>
    private bool Read(string key, ArrayBufferWriter<byte> buffer, bool renew)
    {
        var storeKey = StoreKey(key);
        if (!_store.TryGetEntry(storeKey, buffer, out var info)) return Forget(key);
        var record = buffer.WrittenSpan;
        if (record.Length < HeaderSize || record[0] != FormatVersion) return Forget(key); // not a record of this cache
        var absolute = BinaryPrimitives.ReadInt64LittleEndian(record[1..]);
        var window = BinaryPrimitives.ReadInt64LittleEndian(record[9..]);
        var written = BinaryPrimitives.ReadInt64LittleEndian(record[17..]);
        var now = Now;
        if (absolute != 0 && now >= absolute) return Expired(key, storeKey, info.Version);
        if (window == 0) return true;
        var deadline = written;
        if (_sliding.TryGetValue(key, out var remembered))
        {
            if (remembered.Version == info.Version) deadline = Math.Max(deadline, remembered.Deadline);
            else _sliding.TryRemove(KeyValuePair.Create(key, remembered));
        }
        if (now >= deadline) return Expired(key, storeKey, info.Version);
        if (!renew) return true;
        var renewed = now + window;
        if (absolute != 0) renewed = Math.Min(renewed, absolute);
        if (renewed <= deadline) return true;
        var threshold = (long)Math.Ceiling(window * _fraction);
        if (renewed - written < threshold && (_sliding.Count < _maxTracked || _sliding.ContainsKey(key)))
        {
            _sliding[key] = new Sliding(info.Version, renewed); // in memory only: see SlidingPersistFraction
            return true;
        }
        Persist(key, storeKey, buffer, info.Version, absolute, window, renewed, now);
        return true;
    }

    /// <summary>Writes the renewed sliding deadline (the same payload) if nobody wrote the key since it was read.</summary>
    private void Persist(string key, byte[] storeKey, ArrayBufferWriter<byte> buffer, long version, long absolute, long window, long deadline, long now)
    {
        if (_store.Options.ReadOnly) return;
        var record = ArrayPool<byte>.Shared.Rent(buffer.WrittenCount);
        try
        {
            buffer.WrittenSpan.CopyTo(record);
            WriteHeader(record, absolute, window, deadline);
            var ttl = StoreTtl(now, absolute, window, deadline);
            _sliding.TryRemove(key, out _);
            // A failed compare-and-set means another write replaced or renewed the entry: that newer record rules.
            _store.CompareAndSet(storeKey, version, record.AsSpan(0, buffer.WrittenCount), new WriteOptions(TimeToLive: ttl));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(record);
        }
    }

    private bool Forget(string key)
    {
        _sliding.TryRemove(key, out _);
        return false;
    }

    /// <summary>An entry expired by the cache's clock: removed now (unless rewritten meanwhile) rather than left to the
    /// store's own expiry, which follows the store's clock.</summary>
    private bool Expired(string key, byte[] storeKey, long version)
    {
        _sliding.TryRemove(key, out _);
        if (!_store.Options.ReadOnly) _store.CompareAndDelete(storeKey, version);
        return false;
    }
}
