namespace Bitcask;

/// <summary>
/// The open segments by id. Readers look segments up without a lock (the map is replaced, never changed in place);
/// changes (rollover, compaction) are serialized by a lock.
/// </summary>
internal sealed class SegmentSet
{
    private readonly Lock _changeLock = new();
    private volatile Dictionary<uint, Segment> _byId = new();

    public Segment? Find(uint id) => _byId.TryGetValue(id, out var s) ? s : null;

    /// <summary>All segments, ordered by id.</summary>
    public Segment[] Snapshot() => _byId.Values.OrderBy(s => s.Id).ToArray();

    public int Count => _byId.Count;

    public void Add(Segment segment) => Replace([], [segment]);

    /// <summary>Atomically removes <paramref name="removed"/> and adds <paramref name="added"/>; the removed segments
    /// are retired (closed once their last reader is done).</summary>
    public void Replace(IReadOnlyCollection<Segment> removed, IReadOnlyCollection<Segment> added)
    {
        lock (_changeLock)
        {
            var map = new Dictionary<uint, Segment>(_byId);
            foreach (var s in removed) map.Remove(s.Id);
            foreach (var s in added) map.Add(s.Id, s);
            _byId = map;
        }
        foreach (var s in removed) s.Retire();
    }

    /// <summary>Retires every segment (store close).</summary>
    public void RetireAll()
    {
        Dictionary<uint, Segment> map;
        lock (_changeLock)
        {
            map = _byId;
            _byId = new();
        }
        foreach (var s in map.Values) s.Retire();
    }
}
