using System.Buffers;

namespace Bitcask.Server;

/// <summary>A key's stored value with the version and absolute expiry (Unix ms, 0 = none) it was read with.</summary>
internal readonly record struct Entry(byte[] Raw, long Version, long ExpiresAtMs)
{
    public ValueType Type => StoredValue.TypeOf(Raw);
}

/// <summary>
/// The store as one command (or one MULTI/EXEC, or one script) sees it: reads go through the writes it staged, every
/// read of the store remembers the version it saw, and <see cref="BuildBatch"/> turns the staged writes into one batch
/// conditional on those versions. If another client wrote one of the keys meanwhile the batch fails and the command runs
/// again on the new state, so every command is atomic and its replies describe exactly what was written.
/// <para>Not thread-safe: one per connection, used by one command at a time.</para>
/// </summary>
internal sealed class KeyspaceView(ServerState server)
{
    private readonly Dictionary<byte[], long> _readVersions = new(BytesComparer.Instance);
    /// <summary>Keys a replicated node's store still holds but whose expiry the wall clock has passed (hidden, as a Redis
    /// replica hides them): their commit condition is "this version, or gone".</summary>
    private readonly HashSet<byte[]> _seenExpired = new(BytesComparer.Instance);
    private readonly Dictionary<byte[], Staged> _staged = new(BytesComparer.Instance);
    private readonly List<byte[]> _order = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(256);

    private readonly record struct Staged(byte[]? Raw, long ExpiresAtMs, long Version);

    public BitcaskStore Store => server.Store;

    public bool HasWrites => _order.Count > 0;

    /// <summary>More than one key was read from the store: a commit checks they still hold (an atomic multi-key read).</summary>
    public bool ReadSeveral => _readVersions.Count > 1;

    /// <summary>A key was read from the store: the commit must be conditional on its version.</summary>
    public bool HasReads => _readVersions.Count > 0;

    public IEnumerable<byte[]> StagedKeys => _order;

    public long NowMs => server.NowMs;

    /// <summary>The clients' keys (a replicated node's store also holds the replication layer's "\0raft:" keys).</summary>
    public IEnumerable<byte[]> Keys()
    {
        if (server.Node is null) return Store.Keys();
        var store = Store;
        var now = NowMs;
        // as reads do: a key whose expiry the wall clock passed is hidden before the leader's delete arrives
        return store.Keys().Where(k => !StoredValue.IsEngineKey(k) && !(store.GetInfo(k)?.ExpiresAt is { } at && at.ToUnixTimeMilliseconds() <= now));
    }

    /// <summary>How many keys <see cref="Keys"/> has.</summary>
    public long Count => server.KeyCount;

    public void Reset()
    {
        _readVersions.Clear();
        _seenExpired.Clear();
        _staged.Clear();
        _order.Clear();
    }

    /// <summary>The key's live value as this view sees it.</summary>
    public bool TryRead(byte[] key, out Entry entry)
    {
        if (_staged.TryGetValue(key, out var staged))
        {
            entry = staged.Raw is null || (staged.ExpiresAtMs != 0 && staged.ExpiresAtMs <= NowMs) ? default : new Entry(staged.Raw, staged.Version, staged.ExpiresAtMs);
            return staged.Raw is not null && entry.Raw is not null;
        }
        _buffer.ResetWrittenCount();
        if (StoredValue.IsEngineKey(key)) throw new ArgumentException("Keys starting with \"\\0bitcask:\" or \"\\0raft:\" are the engine's own.");
        var found = Read(key, out var info);
        entry = found ? new Entry(_buffer.WrittenSpan.ToArray(), info.Version, info.ExpiresAt?.ToUnixTimeMilliseconds() ?? 0) : default;
        return found;
    }

    /// <summary>Like <see cref="TryRead"/> without copying the value: <paramref name="raw"/> is valid until the next read
    /// through this view (GET's path).</summary>
    public bool TryReadSpan(byte[] key, out ReadOnlySpan<byte> raw)
    {
        raw = default;
        if (_staged.ContainsKey(key))
        {
            if (!TryRead(key, out var entry)) return false;
            raw = entry.Raw;
            return true;
        }
        if (StoredValue.IsEngineKey(key)) throw new ArgumentException("Keys starting with \"\\0bitcask:\" or \"\\0raft:\" are the engine's own.");
        _buffer.ResetWrittenCount();
        var found = Read(key, out _);
        if (found) raw = _buffer.WrittenSpan;
        return found;
    }

    /// <summary>Reads the key from the store into the buffer and remembers the version seen. On a replicated node a value
    /// the wall clock says expired is hidden (the log's clock, which the store judges by, may lag).</summary>
    private bool Read(byte[] key, out EntryInfo info)
    {
        var found = Store.TryGetEntry(key, _buffer, out info);
        _readVersions.TryAdd(key, found ? info.Version : 0);
        if (found && server.Node is not null && info.ExpiresAt is { } at && at.ToUnixTimeMilliseconds() <= NowMs)
        {
            _seenExpired.Add(key);
            _buffer.ResetWrittenCount();
            return false;
        }
        return found;
    }

    /// <summary>A read-only command on a replicated node: every key read still has the version it was read with, so all
    /// of them held those values together at the last read (versions only grow).</summary>
    public bool ReadsStillHold(IReadOnlyDictionary<byte[], long>? watched = null)
    {
        var store = Store;
        foreach (var (key, version) in _readVersions)
            if ((store.GetInfo(key)?.Version ?? 0) != version && !_seenExpired.Contains(key)) return false;
        if (watched is not null)
            foreach (var (key, version) in watched)
                if ((store.GetInfo(key)?.Version ?? 0) != version) return false;
        return true;
    }

    /// <summary><see cref="BuildBatch"/> for a replicated node: the same conditions and writes as one Raft log entry, the
    /// expiries as absolute times (chosen here, judged by the log's clock on every node). A key read as expired only by
    /// the wall clock may still be live by the log's clock: its condition also holds when it is absent by then.</summary>
    public Bitcask.Replication.ReplicatedBatch BuildReplicatedBatch(IReadOnlyDictionary<byte[], long>? watched = null)
    {
        var batch = new Bitcask.Replication.ReplicatedBatch();
        foreach (var (key, version, orAbsent) in Conditions(watched))
            if (orAbsent) batch.RequireVersionOrAbsent(key, version);
            else batch.RequireVersion(key, version);
        foreach (var (key, raw, expiresAtMs) in Writes())
            if (raw is null) batch.Delete(key);
            else if (expiresAtMs == 0) batch.Put(key, raw);
            else batch.Put(key, raw, DateTimeOffset.FromUnixTimeMilliseconds(expiresAtMs));
        return batch;
    }

    /// <summary>What a commit must check: a version per key read from the store (or absent, for a key seen expired), then
    /// the versions WATCH saw of keys not read.</summary>
    private IEnumerable<(byte[] Key, long Version, bool OrAbsent)> Conditions(IReadOnlyDictionary<byte[], long>? watched)
    {
        foreach (var (key, version) in _readVersions) yield return (key, version, _seenExpired.Contains(key));
        if (watched is not null)
            foreach (var (key, version) in watched)
                if (!_readVersions.ContainsKey(key)) yield return (key, version, false);
    }

    /// <summary>The staged writes in staging order (a null value is a delete). A delete of a key read as absent is left
    /// out: it would write a needless tombstone.</summary>
    private IEnumerable<(byte[] Key, byte[]? Raw, long ExpiresAtMs)> Writes()
    {
        foreach (var key in _order)
        {
            var s = _staged[key];
            if (s.Raw is null && _readVersions.TryGetValue(key, out var v) && v == 0) continue;
            yield return (key, s.Raw, s.ExpiresAtMs);
        }
    }

    public bool Exists(byte[] key) => TryRead(key, out _);

    /// <summary>Stages a put of the stored form <paramref name="raw"/>; an expiry not in the future stages a delete.</summary>
    public void Put(byte[] key, byte[] raw, long expiresAtMs)
    {
        if (expiresAtMs != 0 && expiresAtMs <= NowMs)
        {
            Delete(key);
            return;
        }
        Stage(key, new Staged(raw, expiresAtMs, -1));
    }

    public void Delete(byte[] key) => Stage(key, new Staged(null, 0, 0));

    private void Stage(byte[] key, Staged staged)
    {
        if (!_staged.ContainsKey(key)) _order.Add(key);
        _staged[key] = staged;
    }

    /// <summary>
    /// The common one-key cases as the engine's plain records rather than a batch record (smaller, and cheaper to encode):
    /// a blind put without expiry, or a put or delete conditional on the version read of that same key. Null when the
    /// staged writes need a batch.
    /// </summary>
    public (byte[] Key, byte[]? Value, long ExpectedVersion)? SingleKeyWrite()
    {
        if (_order.Count != 1 || _readVersions.Count > 1) return null;
        var key = _order[0];
        var staged = _staged[key];
        long expected = -1;
        if (_readVersions.Count == 1 && !_readVersions.TryGetValue(key, out expected)) return null;
        if (staged.Raw is null) return expected > 0 ? (key, null, expected) : null;
        return staged.ExpiresAtMs == 0 ? (key, staged.Raw, expected) : null;
    }

    /// <summary>One batch: a version condition per key read from the store, then the staged writes, in staging order.
    /// <paramref name="watched"/> adds the versions WATCH saw.</summary>
    public WriteBatch BuildBatch(IReadOnlyDictionary<byte[], long>? watched = null)
    {
        var batch = new WriteBatch();
        foreach (var (key, version, _) in Conditions(watched)) batch.RequireVersion(key, version);
        foreach (var (key, raw, expiresAtMs) in Writes())
            if (raw is null) batch.Delete(key);
            else if (expiresAtMs == 0) batch.Put(key, raw);
            else batch.Put(key, raw, DateTimeOffset.FromUnixTimeMilliseconds(expiresAtMs));
        return batch;
    }
}
