namespace Bitcask;

/// <summary>
/// The live leases of a store: for each, its time to live, the deadline by which a <see cref="BitcaskStore.KeepAlive"/>
/// must come, and the keys puts have attached to it. Grants are records (<see cref="Leases"/>); deadlines are in memory
/// only, so a reopen gives every live lease its full time to live again (as in etcd). The group-commit leader records
/// grants, revokes and attachments as it applies writes, in commit order; a key stays in its lease's set after it was
/// overwritten or deleted, and revoking checks each key's newest record still names the lease.
/// <para>Thread-safety: every member is safe to call from any thread (one lock).</para>
/// </summary>
internal sealed class LeaseTable
{
    private sealed class Lease(long ttlMs, long deadline)
    {
        public long TtlMs = ttlMs;
        public long Deadline = deadline;
        public readonly HashSet<byte[]> Keys = new(ByteArrayComparer.Instance);
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Lease> _leases = [];
    private long _lastId;

    public int Count
    {
        get { lock (_lock) return _leases.Count; }
    }

    /// <summary>A new lease id: above every id seen and every revision so far, so no id is ever reused.</summary>
    public long NextId(long revision)
    {
        lock (_lock)
        {
            _lastId = Math.Max(_lastId, revision) + 1;
            return _lastId;
        }
    }

    /// <summary>A grant record was applied (or found at open): the lease lives for its full time to live from now.</summary>
    public void Granted(long id, long ttlMs, long now)
    {
        lock (_lock)
        {
            _lastId = Math.Max(_lastId, id);
            if (_leases.TryGetValue(id, out var lease)) lease.TtlMs = ttlMs;
            else _leases[id] = new Lease(ttlMs, SaturatingAdd(now, ttlMs));
        }
    }

    /// <summary>The grant's tombstone was applied: the lease is gone.</summary>
    public void Removed(long id)
    {
        lock (_lock) _leases.Remove(id);
    }

    public bool Exists(long id)
    {
        lock (_lock) return _leases.ContainsKey(id);
    }

    /// <summary>A put attached to lease <paramref name="id"/> was applied.</summary>
    public void Attach(long id, ReadOnlySpan<byte> key)
    {
        lock (_lock)
            if (_leases.TryGetValue(id, out var lease)) lease.Keys.Add(key.ToArray());
    }

    /// <summary>The keys attached to the lease (some may since have been overwritten or deleted).</summary>
    public List<byte[]> KeysOf(long id)
    {
        lock (_lock) return _leases.TryGetValue(id, out var lease) ? [.. lease.Keys] : [];
    }

    /// <summary>Extends the deadline to a full time to live from now; false when the lease is gone.</summary>
    public bool KeepAlive(long id, long now)
    {
        lock (_lock)
        {
            if (!_leases.TryGetValue(id, out var lease)) return false;
            lease.Deadline = SaturatingAdd(now, lease.TtlMs);
            return true;
        }
    }

    /// <summary>Leases whose deadline is at or before <paramref name="now"/>.</summary>
    public List<long> Expired(long now)
    {
        lock (_lock) return [.. _leases.Where(kv => kv.Value.Deadline <= now).Select(kv => kv.Key)];
    }

    private static long SaturatingAdd(long a, long b) => b > long.MaxValue - a ? long.MaxValue : a + b;
}
