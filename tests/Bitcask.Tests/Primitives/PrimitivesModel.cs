namespace Bitcask.Tests.Primitives;

/// <summary>
/// The sequential specification of the store's primitives (versions, create revisions, TTL, leases, watch) as a
/// dictionary: what every call returns, how far it moves <see cref="BitcaskStore.Revision"/>, and which watch events it
/// makes. A key stays "present" after its TTL ran out until a sweep, a delete or a put replaces it (as the keydir does):
/// reads see it as absent, <see cref="BitcaskStore.Delete(ReadOnlySpan{byte})"/> still writes its tombstone.
/// </summary>
internal sealed class PrimitivesModel(long now)
{
    internal sealed record Entry(string Value, long Version, long CreateRevision, long ExpiresAt, long LeaseId);

    internal sealed class Lease(long ttlMs, long deadline)
    {
        public long TtlMs = ttlMs;
        public long Deadline = deadline;
    }

    /// <summary>One expected watch event. <see cref="GroupHi"/> &gt; 0 marks a member of a group written together whose
    /// order inside is the engine's (a lease revoke batch, a sweep): the event's revision is somewhere in
    /// [<see cref="Revision"/>, <see cref="GroupHi"/>].</summary>
    internal sealed record Change(WatchEventKind Kind, string Key, string? Value, long Revision, long PreviousVersion, long GroupHi = 0);

    public readonly Dictionary<string, Entry> Present = new(StringComparer.Ordinal);
    public readonly Dictionary<long, Lease> Leases = [];
    public readonly List<long> EverGranted = [];
    public readonly List<Change> Changes = [];
    public long Revision;
    public long Now = now;
    /// <summary>The revision at the last compaction (0: none): watches start at or above it + 1.</summary>
    public long CompactedAt;

    public Entry? Live(string key) =>
        Present.TryGetValue(key, out var e) && !(e.ExpiresAt != 0 && e.ExpiresAt <= Now) ? e : null;

    public long LiveCount => Present.Values.Count(e => !(e.ExpiresAt != 0 && e.ExpiresAt <= Now));

    /// <summary>A put (any kind) that the engine applied: the next revision, create revision kept when the key is live.</summary>
    public void ApplyPut(string key, string value, long expiresAt, long leaseId)
    {
        var live = Live(key);
        var revision = ++Revision;
        Present[key] = new Entry(value, revision, live?.CreateRevision ?? revision, expiresAt, leaseId);
        Changes.Add(new Change(WatchEventKind.Put, key, value, revision, live?.Version ?? 0));
    }

    /// <summary>A tombstone the engine wrote: its previous version is the removed value's, expired or not (0 when absent).</summary>
    public void ApplyTombstone(string key)
    {
        var previous = Present.TryGetValue(key, out var e) ? e.Version : 0;
        Present.Remove(key);
        Changes.Add(new Change(WatchEventKind.Delete, key, null, ++Revision, previous));
    }

    public long Grant(long ttlMs, long id)
    {
        Revision++;
        Leases[id] = new Lease(ttlMs, Now + ttlMs);
        EverGranted.Add(id);
        return id;
    }

    /// <summary>A revoke batch: a tombstone for every live key attached to the lease, then the grant's (not watched).</summary>
    public bool Revoke(long id, List<Change> group)
    {
        if (!Leases.Remove(id)) return false;
        foreach (var (key, e) in Present.Where(kv => kv.Value.LeaseId == id && Live(kv.Key) is not null).ToList())
        {
            Present.Remove(key);
            group.Add(new Change(WatchEventKind.Delete, key, null, 0, e.Version));
        }
        return true;
    }

    /// <summary>What one sweep does: revokes the leases whose deadline passed, then expires every present key whose TTL
    /// ran out. The engine picks the order inside; the group's revisions are the next ones.</summary>
    public void Sweep()
    {
        var group = new List<Change>();
        var records = 0;
        foreach (var id in Leases.Where(kv => kv.Value.Deadline <= Now).Select(kv => kv.Key).ToList())
        {
            var before = group.Count;
            Revoke(id, group);
            records += group.Count - before + 1;
        }
        foreach (var (key, e) in Present.Where(kv => kv.Value.ExpiresAt != 0 && kv.Value.ExpiresAt <= Now).ToList())
        {
            Present.Remove(key);
            group.Add(new Change(WatchEventKind.Expire, key, null, 0, e.Version));
            records++;
        }
        AddGroup(group, records);
    }

    /// <summary>Appends a group of <paramref name="records"/> revisions (some of them not watched: grants) whose watched
    /// changes are <paramref name="group"/>.</summary>
    public void AddGroup(List<Change> group, int records)
    {
        if (records == 0) return;
        var lo = Revision + 1;
        Revision += records;
        foreach (var c in group) Changes.Add(c with { Revision = lo, GroupHi = Revision });
    }

    /// <summary>Reopen: every live lease gets its full time to live again from now (etcd).</summary>
    public void Reopened()
    {
        foreach (var lease in Leases.Values) lease.Deadline = Now + lease.TtlMs;
    }

    /// <summary>Revisions a watch can start from without splitting a group: every change's first revision, and the next one.</summary>
    public IEnumerable<long> WatchStarts()
    {
        var from = CompactedAt + 1;
        return Changes.Where(c => c.Revision >= from).Select(c => c.Revision).Append(Revision + 1).Distinct();
    }

    /// <summary>Whether a watch can start at <paramref name="revision"/> without splitting a group.</summary>
    public bool IsWatchStart(long revision) => !Changes.Any(c => c.GroupHi > 0 && c.Revision < revision && revision <= c.GroupHi);

    /// <summary>The changes a watch of keys starting with <paramref name="prefix"/> from <paramref name="from"/> must yield.</summary>
    public List<Change> ChangesFrom(long from, string prefix) =>
        [.. Changes.Where(c => c.Revision >= from && c.Key.StartsWith(prefix, StringComparison.Ordinal))];
}
