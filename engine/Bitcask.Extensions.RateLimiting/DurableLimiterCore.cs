using System.Text;
using System.Threading.RateLimiting;

namespace Bitcask.Extensions.RateLimiting;

/// <summary>
/// The shared engine of the durable limiters: each partition's state is one store value changed with
/// <see cref="BitcaskStore.Update"/> (so concurrent acquirers, in this instance or another over the same store, are
/// serialized by compare-and-set and counts are exact), and an in-memory queue per partition for
/// <see cref="RateLimiter.AcquireAsync"/>, served when a timer says permits should be back.
/// </summary>
internal sealed class DurableLimiterCore : IDisposable
{
    private readonly BitcaskStore _store;
    private readonly Algorithm _algorithm;
    private readonly string _keyPrefix;
    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, PartitionQueue> _queues = new(StringComparer.Ordinal);
    private long _successful, _failed;
    private long _lastActivity; // clock timestamp of the last acquire, for IdleDuration
    private bool _disposed;

    public DurableLimiterCore(BitcaskStore store, Algorithm algorithm, string name, BitcaskRateLimiterOptions? options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(name);
        options ??= new BitcaskRateLimiterOptions();
        ArgumentNullException.ThrowIfNull(options.KeyPrefix, nameof(options.KeyPrefix));
        _store = store;
        _algorithm = algorithm;
        _keyPrefix = options.KeyPrefix + name + "/";
        _clock = options.TimeProvider ?? store.Options.TimeProvider;
        _lastActivity = _clock.GetTimestamp();
    }

    public Algorithm Algorithm => _algorithm;

    private byte[] KeyOf(string partition)
    {
        ArgumentNullException.ThrowIfNull(partition);
        return Encoding.UTF8.GetBytes(_keyPrefix + partition);
    }

    private void CheckPermits(int permits)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permits);
        if (permits > _algorithm.PermitLimit)
            throw new ArgumentOutOfRangeException(nameof(permits), permits, $"{permits} permits exceed the limiter's permit limit of {_algorithm.PermitLimit}.");
    }

    /// <summary>One durable attempt: the store's atomic read-modify-write of the partition's state.</summary>
    private Decision Attempt(byte[] key, int permits)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        return _store.Update(key, (Algorithm: _algorithm, Now: now, Permits: permits), static (ReadOnlySpan<byte> value, EntryInfo? current, (Algorithm Algorithm, long Now, int Permits) s, out KeyUpdateAction action) =>
        {
            var decision = s.Algorithm.Apply(current is null ? default : value, s.Now, s.Permits, out var newState, out var ttl);
            action = newState is null ? KeyUpdateAction.Keep : KeyUpdateAction.Put(newState, TimeSpan.FromMilliseconds(Math.Max(1, ttl)));
            return decision;
        });
    }

    private RateLimitLease Lease(Decision d)
    {
        if (d.Acquired)
        {
            Interlocked.Increment(ref _successful);
            return DurableLease.Acquired;
        }
        Interlocked.Increment(ref _failed);
        return DurableLease.Failed(TimeSpan.FromMilliseconds(d.RetryAfterMs));
    }

    /// <summary>How long since the last acquire when nothing is queued (null while requests wait): what the ASP.NET Core
    /// middleware uses to drop idle per-key limiters, harmless here since the state is in the store.</summary>
    public TimeSpan? IdleDuration(string partition) =>
        QueuedCount(partition) > 0 ? null : _clock.GetElapsedTime(Interlocked.Read(ref _lastActivity));

    public RateLimitLease AttemptAcquire(string partition, int permits)
    {
        CheckPermits(permits);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Exchange(ref _lastActivity, _clock.GetTimestamp());
        var key = KeyOf(partition);
        // Permits go to queued requests first when they are served oldest first (as the built-in limiters do).
        if (permits > 0 && _algorithm.QueueProcessingOrder == QueueProcessingOrder.OldestFirst && QueuedCount(partition) > 0)
            return Lease(new Decision(false, 0, Attempt(key, 0).RetryAfterMs));
        return Lease(Attempt(key, permits));
    }

    public ValueTask<RateLimitLease> AcquireAsync(string partition, int permits, CancellationToken ct)
    {
        CheckPermits(permits);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Exchange(ref _lastActivity, _clock.GetTimestamp());
        ct.ThrowIfCancellationRequested();
        var key = KeyOf(partition);
        Waiter? evicted = null;
        Waiter waiter;
        // The store write happens outside the gate: the gate only guards the in-memory queues.
        bool tryNow;
        lock (_gate)
            tryNow = _algorithm.QueueProcessingOrder == QueueProcessingOrder.NewestFirst || !_queues.TryGetValue(partition, out var q) || q.Count == 0;
        long retryAfter = -1;
        if (tryNow)
        {
            var d = Attempt(key, permits);
            if (d.Acquired || permits == 0 || permits > _algorithm.QueueLimit) return ValueTask.FromResult(Lease(d));
            retryAfter = d.RetryAfterMs;
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _queues.TryGetValue(partition, out var queue);
            if ((queue?.QueuedPermits ?? 0) + permits > _algorithm.QueueLimit)
            {
                if (_algorithm.QueueProcessingOrder == QueueProcessingOrder.OldestFirst)
                    return ValueTask.FromResult(Lease(new Decision(false, 0, retryAfter >= 0 ? retryAfter : Attempt(key, permits).RetryAfterMs)));
                // Newest first: the oldest waiters make room (their leases fail).
                evicted = queue!.EvictOldestUntil(_algorithm.QueueLimit - permits);
            }
            queue ??= _queues[partition] = new PartitionQueue(key);
            waiter = new Waiter(permits);
            queue.Add(waiter);
            if (ct.CanBeCanceled)
                waiter.Registration = ct.Register(static o =>
                {
                    var (core, partition, w, token) = ((DurableLimiterCore, string, Waiter, CancellationToken))o!;
                    core.Cancel(partition, w, token);
                }, (this, partition, waiter, ct));
            // The timer serves the queue when the store should have permits again; one is running once a queue exists.
            if (queue.Timer is null) Schedule(partition, queue, Math.Max(1, retryAfter >= 0 ? retryAfter : Attempt(key, permits).RetryAfterMs));
        }
        for (var w = evicted; w is not null; w = w.Next) w.Complete(Lease(new Decision(false, 0, 0)));
        return new ValueTask<RateLimitLease>(waiter.Task);
    }

    private void Cancel(string partition, Waiter waiter, CancellationToken token)
    {
        lock (_gate)
        {
            if (_queues.TryGetValue(partition, out var queue)) queue.Remove(waiter);
            if (queue is { Count: 0 }) DropQueue(partition, queue);
        }
        waiter.Cancel(token);
    }

    /// <summary>Serves a partition's queue (under the gate): grants waiters in queue order while the store has permits,
    /// then sets the timer for when the next one should fit.</summary>
    private void Schedule(string partition, PartitionQueue queue, long delayMs)
    {
        queue.Timer?.Dispose();
        queue.Timer = _clock.CreateTimer(static o =>
        {
            var (core, partition) = ((DurableLimiterCore, string))o!;
            core.Serve(partition);
        }, (this, partition), TimeSpan.FromMilliseconds(delayMs), Timeout.InfiniteTimeSpan);
    }

    private void Serve(string partition)
    {
        var granted = new List<(Waiter, RateLimitLease)>();
        lock (_gate)
        {
            if (_disposed || !_queues.TryGetValue(partition, out var queue)) return;
            while (queue.Peek(_algorithm.QueueProcessingOrder) is { } next)
            {
                Decision d;
                try
                {
                    d = Attempt(queue.Key, next.Permits);
                }
                catch (Exception ex)
                {
                    // The store failed (disposed, I/O error): fail the waiters rather than leave them hanging.
                    foreach (var w in queue.DrainAll()) w.Fail(ex);
                    DropQueue(partition, queue);
                    return;
                }
                if (!d.Acquired)
                {
                    Schedule(partition, queue, Math.Max(1, d.RetryAfterMs));
                    break;
                }
                queue.Remove(next);
                Interlocked.Increment(ref _successful);
                granted.Add((next, DurableLease.Acquired));
            }
            if (queue.Count == 0) DropQueue(partition, queue);
        }
        foreach (var (w, lease) in granted)
            if (!w.Complete(lease)) lease.Dispose();
    }

    private void DropQueue(string partition, PartitionQueue queue)
    {
        queue.Timer?.Dispose();
        queue.Timer = null;
        _queues.Remove(partition);
    }

    public int QueuedCount(string partition)
    {
        lock (_gate) return _queues.TryGetValue(partition, out var q) ? q.QueuedPermits : 0;
    }

    public RateLimiterStatistics GetStatistics(string partition)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var available = Attempt(KeyOf(partition), 0).Available;
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = available,
            CurrentQueuedCount = QueuedCount(partition),
            TotalSuccessfulLeases = Interlocked.Read(ref _successful),
            TotalFailedLeases = Interlocked.Read(ref _failed),
        };
    }

    /// <summary>Fails every queued request (as the built-in limiters do when disposed).</summary>
    public void Dispose()
    {
        List<Waiter> waiting = [];
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var q in _queues.Values)
            {
                q.Timer?.Dispose();
                waiting.AddRange(q.DrainAll());
            }
            _queues.Clear();
        }
        foreach (var w in waiting) w.Complete(DurableLease.Failed(null));
    }

    /// <summary>A queued AcquireAsync.</summary>
    private sealed class Waiter(int permits)
    {
        private readonly TaskCompletionSource<RateLimitLease> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Permits { get; } = permits;
        public CancellationTokenRegistration Registration { get; set; }
        public Waiter? Next { get; set; } // chains evicted waiters
        public Task<RateLimitLease> Task => _tcs.Task;

        public bool Complete(RateLimitLease lease)
        {
            Registration.Dispose();
            return _tcs.TrySetResult(lease);
        }

        public void Cancel(CancellationToken token) => _tcs.TrySetCanceled(token);

        public void Fail(Exception ex)
        {
            Registration.Dispose();
            _tcs.TrySetException(ex);
        }
    }

    /// <summary>A partition's waiters in arrival order (a linked list: removal from the middle on cancel).</summary>
    private sealed class PartitionQueue(byte[] key)
    {
        private readonly LinkedList<Waiter> _list = new();
        public byte[] Key { get; } = key;
        public ITimer? Timer { get; set; }
        public int QueuedPermits { get; private set; }
        public int Count => _list.Count;

        public void Add(Waiter w)
        {
            _list.AddLast(w);
            QueuedPermits += w.Permits;
        }

        public void Remove(Waiter w)
        {
            if (_list.Remove(w)) QueuedPermits -= w.Permits;
        }

        public Waiter? Peek(QueueProcessingOrder order) =>
            order == QueueProcessingOrder.OldestFirst ? _list.First?.Value : _list.Last?.Value;

        /// <summary>Removes the oldest waiters until at most <paramref name="permits"/> permits are queued; returns them
        /// chained through <see cref="Waiter.Next"/>.</summary>
        public Waiter? EvictOldestUntil(int permits)
        {
            Waiter? head = null, tail = null;
            while (QueuedPermits > permits && _list.First is { } first)
            {
                var w = first.Value;
                _list.RemoveFirst();
                QueuedPermits -= w.Permits;
                w.Next = null;
                if (tail is null) head = w; else tail.Next = w;
                tail = w;
            }
            return head;
        }

        public List<Waiter> DrainAll()
        {
            var all = _list.ToList();
            _list.Clear();
            QueuedPermits = 0;
            return all;
        }
    }
}

/// <summary>A lease of a durable limiter: acquired, or failed with the time after which a retry can succeed.</summary>
internal sealed class DurableLease : RateLimitLease
{
    public static readonly DurableLease Acquired = new(true, null);
    private static readonly string[] RetryAfterNames = [MetadataName.RetryAfter.Name];
    private readonly TimeSpan? _retryAfter;

    private DurableLease(bool acquired, TimeSpan? retryAfter)
    {
        IsAcquired = acquired;
        _retryAfter = retryAfter;
    }

    public static DurableLease Failed(TimeSpan? retryAfter) => new(false, retryAfter);

    public override bool IsAcquired { get; }

    public override IEnumerable<string> MetadataNames => _retryAfter is null ? [] : RetryAfterNames;

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        if (_retryAfter is { } r && metadataName == MetadataName.RetryAfter.Name)
        {
            metadata = r;
            return true;
        }
        metadata = null;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        // Permits of a window or bucket are not given back on dispose (as with the built-in limiters).
    }
}
