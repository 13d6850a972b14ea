using System.Buffers.Binary;
using System.Threading.RateLimiting;

namespace Bitcask.Extensions.RateLimiting;

/// <summary>What one attempt decided: acquired or not, the permits left, and (when not acquired) how long until the
/// permits asked for can be there.</summary>
internal readonly record struct Decision(bool Acquired, long Available, long RetryAfterMs);

/// <summary>
/// One limiting algorithm over a partition's state, a small value in the store. <see cref="Apply"/> is pure (the store's
/// <c>Update</c> may run it more than once): from the stored state (empty = none), the time and the permits asked for,
/// it returns the decision, and the new state with how long it matters (after that it equals "no state", so the store
/// reclaims it by TTL), or null when nothing changes.
/// </summary>
internal abstract class Algorithm
{
    public abstract int PermitLimit { get; }
    public abstract int QueueLimit { get; }
    public abstract QueueProcessingOrder QueueProcessingOrder { get; }

    public abstract Decision Apply(ReadOnlySpan<byte> state, long now, int permits, out byte[]? newState, out long ttlMs);

    protected static long CeilMs(TimeSpan t, string name)
    {
        var ms = (long)Math.Ceiling(t.TotalMilliseconds);
        if (ms < 1) throw new ArgumentOutOfRangeException(name, t, $"{name} must be at least 1 ms.");
        return ms;
    }

    protected static void CheckQueue(int queueLimit, QueueProcessingOrder order)
    {
        if (queueLimit < 0) throw new ArgumentOutOfRangeException(nameof(queueLimit), queueLimit, "QueueLimit must be 0 or more.");
        if (!Enum.IsDefined(order)) throw new ArgumentOutOfRangeException(nameof(order), order, "QueueProcessingOrder must be OldestFirst or NewestFirst.");
    }
}

/// <summary>Fixed window: at most PermitLimit permits per window; windows are aligned to the Unix epoch by the
/// limiter's clock, so every process and every restart agrees on them. State: window start (8) | count (8).</summary>
internal sealed class FixedWindowAlgorithm : Algorithm
{
    private readonly long _window;
    private readonly int _limit;

    public FixedWindowAlgorithm(FixedWindowRateLimiterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PermitLimit <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.PermitLimit, "PermitLimit must be positive.");
        CheckQueue(options.QueueLimit, options.QueueProcessingOrder);
        _window = CeilMs(options.Window, nameof(options.Window));
        _limit = options.PermitLimit;
        QueueLimit = options.QueueLimit;
        QueueProcessingOrder = options.QueueProcessingOrder;
    }

    public override int PermitLimit => _limit;
    public override int QueueLimit { get; }
    public override QueueProcessingOrder QueueProcessingOrder { get; }

    public override Decision Apply(ReadOnlySpan<byte> state, long now, int permits, out byte[]? newState, out long ttlMs)
    {
        var start = now - Mod(now, _window);
        var end = start + _window;
        long count = 0;
        if (state.Length == 16 && BinaryPrimitives.ReadInt64LittleEndian(state) == start)
            count = BinaryPrimitives.ReadInt64LittleEndian(state[8..]);
        newState = null;
        ttlMs = 0;
        var available = _limit - count;
        if (permits == 0) return new Decision(available > 0, available, available > 0 ? 0 : end - now);
        if (permits > available) return new Decision(false, available, end - now);
        newState = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(newState, start);
        BinaryPrimitives.WriteInt64LittleEndian(newState.AsSpan(8), count + permits);
        ttlMs = end - now;
        return new Decision(true, available - permits, 0);
    }

    internal static long Mod(long a, long b) => ((a % b) + b) % b;
}

/// <summary>Sliding window: the window is cut into SegmentsPerWindow segments (aligned to the Unix epoch); a permit
/// counts until the segment it was taken in leaves the window. State: newest segment index (8) | one count (4) per
/// segment, oldest first.</summary>
internal sealed class SlidingWindowAlgorithm : Algorithm
{
    private readonly long _segment;
    private readonly int _segments;
    private readonly int _limit;

    public SlidingWindowAlgorithm(SlidingWindowRateLimiterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.PermitLimit <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.PermitLimit, "PermitLimit must be positive.");
        if (options.SegmentsPerWindow <= 0 || options.SegmentsPerWindow > 1024)
            throw new ArgumentOutOfRangeException(nameof(options), options.SegmentsPerWindow, "SegmentsPerWindow must be in [1, 1024].");
        CheckQueue(options.QueueLimit, options.QueueProcessingOrder);
        var window = CeilMs(options.Window, nameof(options.Window));
        if (window % options.SegmentsPerWindow != 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.Window, $"Window ({window} ms) must be a whole number of milliseconds per segment ({options.SegmentsPerWindow} segments).");
        _segment = window / options.SegmentsPerWindow;
        _segments = options.SegmentsPerWindow;
        _limit = options.PermitLimit;
        QueueLimit = options.QueueLimit;
        QueueProcessingOrder = options.QueueProcessingOrder;
    }

    public override int PermitLimit => _limit;
    public override int QueueLimit { get; }
    public override QueueProcessingOrder QueueProcessingOrder { get; }

    public override Decision Apply(ReadOnlySpan<byte> state, long now, int permits, out byte[]? newState, out long ttlMs)
    {
        var current = Math.DivRem(now - FixedWindowAlgorithm.Mod(now, _segment), _segment).Quotient;
        Span<int> counts = _segments <= 256 ? stackalloc int[_segments] : new int[_segments]; // counts[i]: segment current - n + 1 + i
        counts.Clear();
        if (state.Length == 8 + 4 * _segments)
        {
            var head = BinaryPrimitives.ReadInt64LittleEndian(state);
            var shift = current - head; // how many segments the window moved since the state was written
            for (var i = 0; i < _segments; i++)
            {
                var target = i - shift;
                if (target >= 0 && target < _segments) counts[(int)target] = BinaryPrimitives.ReadInt32LittleEndian(state[(8 + 4 * i)..]);
            }
        }
        long total = 0;
        foreach (var c in counts) total += c;
        var available = _limit - total;
        newState = null;
        ttlMs = 0;
        if (permits == 0 ? available > 0 : permits <= available)
        {
            if (permits == 0) return new Decision(true, available, 0);
            counts[_segments - 1] += permits;
            newState = new byte[8 + 4 * _segments];
            BinaryPrimitives.WriteInt64LittleEndian(newState, current);
            for (var i = 0; i < _segments; i++) BinaryPrimitives.WriteInt32LittleEndian(newState.AsSpan(8 + 4 * i), counts[i]);
            ttlMs = (current + 1) * _segment - now + (_segments - 1) * _segment; // until the newest segment leaves the window
            return new Decision(true, available - permits, 0);
        }
        // Not enough: permits come back as the oldest segments leave the window (segment i leaves after i + 1 boundaries).
        var needed = Math.Max(1, permits);
        var freed = 0L;
        var retry = 0L;
        for (var i = 0; i < _segments; i++)
        {
            freed += counts[i];
            if (available + freed >= needed)
            {
                retry = (current + 1 + i) * _segment - now;
                break;
            }
        }
        return new Decision(false, available, retry);
    }
}

/// <summary>Token bucket: TokenLimit tokens, TokensPerPeriod added every ReplenishmentPeriod (whole periods, as the
/// built-in limiter does), counted from the bucket's last replenishment. State: tokens (8) | last replenishment (8).
/// No state = a full bucket.</summary>
internal sealed class TokenBucketAlgorithm : Algorithm
{
    private readonly long _period;
    private readonly int _limit;
    private readonly int _perPeriod;

    public TokenBucketAlgorithm(TokenBucketRateLimiterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.TokenLimit <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.TokenLimit, "TokenLimit must be positive.");
        if (options.TokensPerPeriod <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.TokensPerPeriod, "TokensPerPeriod must be positive.");
        CheckQueue(options.QueueLimit, options.QueueProcessingOrder);
        _period = CeilMs(options.ReplenishmentPeriod, nameof(options.ReplenishmentPeriod));
        _limit = options.TokenLimit;
        _perPeriod = options.TokensPerPeriod;
        QueueLimit = options.QueueLimit;
        QueueProcessingOrder = options.QueueProcessingOrder;
    }

    public override int PermitLimit => _limit;
    public override int QueueLimit { get; }
    public override QueueProcessingOrder QueueProcessingOrder { get; }

    public override Decision Apply(ReadOnlySpan<byte> state, long now, int permits, out byte[]? newState, out long ttlMs)
    {
        long tokens = _limit, last = now;
        if (state.Length == 16)
        {
            tokens = BinaryPrimitives.ReadInt64LittleEndian(state);
            last = BinaryPrimitives.ReadInt64LittleEndian(state[8..]);
            if (now > last)
            {
                var periods = (now - last) / _period;
                if (periods > 0)
                {
                    tokens = periods >= (_limit + _perPeriod - 1) / _perPeriod ? _limit : Math.Min(_limit, tokens + periods * _perPeriod);
                    last += periods * _period;
                }
            }
            if (tokens >= _limit) last = now; // full: the next period counts from the next take
        }
        newState = null;
        ttlMs = 0;
        if (permits == 0 ? tokens > 0 : permits <= tokens)
        {
            if (permits == 0) return new Decision(true, tokens, 0);
            var left = tokens - permits;
            newState = new byte[16];
            BinaryPrimitives.WriteInt64LittleEndian(newState, left);
            BinaryPrimitives.WriteInt64LittleEndian(newState.AsSpan(8), last);
            var periodsToFull = (_limit - left + _perPeriod - 1) / _perPeriod;
            ttlMs = Math.Max(1, last + periodsToFull * _period - now); // then the bucket is full again: same as no state
            return new Decision(true, left, 0);
        }
        var missing = Math.Max(1, permits) - tokens;
        var periodsNeeded = (missing + _perPeriod - 1) / _perPeriod;
        return new Decision(false, tokens, Math.Max(1, last + periodsNeeded * _period - now));
    }
}
