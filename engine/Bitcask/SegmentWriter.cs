using Bitcask.Format;
using Bitcask.Storage;
using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>
/// The write path below group commit: stamps sequence numbers and CRCs, appends to the active segment, rolls over to
/// a new segment at <see cref="BitcaskOptions.MaxSegmentBytes"/>, flushes and fdatasyncs per the durability mode, then
/// points the keydir at the new records.
/// <para>Thread-safety: <see cref="Commit"/> runs on one thread at a time (the group-commit leader), which owns every
/// mutable field here. <see cref="RefuseReason"/> may be read from any thread.</para>
/// </summary>
internal sealed class SegmentWriter : GroupCommit.ILeaderWork
{
    private readonly IStorageFileSystem _fs;
    private readonly string _directory;
    private readonly BitcaskOptions _options;
    private readonly KeyDir _keyDir;
    private readonly SegmentSet _segments;
    private readonly ILogger _logger;
    private readonly long _mapCapacity;
    private Segment? _active;
    private ulong _nextSequence;
    private uint _nextSegmentId;
    private uint _lastWriteSegmentId;
    private ulong _appliedSequence;       // every record up to this sequence is in the keydir
    private readonly List<Segment> _sealedInGroup = [];
    private volatile Exception? _failure;
    private volatile Exception? _closed;

    public SegmentWriter(IStorageFileSystem fs, string directory, BitcaskOptions options, KeyDir keyDir, SegmentSet segments,
        ILogger logger, ulong nextSequence, uint nextSegmentId, uint lastWriteSegmentId)
    {
        _fs = fs;
        _directory = directory;
        _options = options;
        _keyDir = keyDir;
        _segments = segments;
        _logger = logger;
        _nextSequence = nextSequence;
        _nextSegmentId = nextSegmentId;
        _lastWriteSegmentId = lastWriteSegmentId;
        _appliedSequence = nextSequence - 1;
        _mapCapacity = (options.MaxSegmentBytes + 4095) & ~4095L;
    }

    public Exception? RefuseReason => _closed ?? _failure;
    public Exception? Failure => _failure;
    public Segment? Active => _active;
    public ulong NextSequence => _nextSequence;

    /// <summary>Every record with a sequence up to this one is applied to the keydir. A segment holding a later record
    /// (sealed by a rollover in the middle of a group whose keydir update is still to come) is not yet safe to compact:
    /// its newest records would look dead.</summary>
    public ulong AppliedSequence => Volatile.Read(ref _appliedSequence);

    /// <summary>Allocates a segment id (compaction outputs draw from the same counter). Leader or compaction lock only.</summary>
    public uint AllocateSegmentId() => AllocateSegmentIds(1);

    /// <summary>Allocates <paramref name="count"/> consecutive ids and returns the first.</summary>
    public uint AllocateSegmentIds(int count) => Interlocked.Add(ref _nextSegmentId, (uint)count) - (uint)count;

    public void Close(string storeName) => _closed = new ObjectDisposedException(storeName, $"The store at '{_directory}' is closed.");

    public void Commit(List<WriteRequest> group)
    {
        var sync = false;
        var flush = false;
        if (_failure is { } failed) throw new IOException(failed.Message, failed);
        var seal = false;
        var mark = false;
        var now = _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        try
        {
            foreach (var r in group)
            {
                switch (r.Kind)
                {
                    case WriteRequestKind.Sync:
                        sync = flush = mark = true;
                        continue;
                    case WriteRequestKind.Flush:
                    case WriteRequestKind.Cut:
                        flush = true;
                        continue;
                    case WriteRequestKind.Seal:
                        seal = sync = flush = true;
                        continue;
                    case WriteRequestKind.Close:
                        seal = sync = flush = mark = true;
                        continue;
                    case WriteRequestKind.RevokeLease:
                        if (!BuildRevokeBatch(r, now)) continue; // the lease was already gone: nothing written
                        break;
                }
                if (r.ConditionCount > 0 && !ConditionsHold(r, now)) continue; // nothing written; the caller learns which failed
                var durability = r.DurabilityOverride ?? _options.Durability;
                sync |= durability == Durability.Synced;
                flush |= durability != Durability.Buffered;
                var record = r.Buffer.AsSpan(0, r.Length);
                var segment = SegmentWithRoomFor(r.Length);
                StampSequences(r, (uint)segment.DurableLength, now);
                r.Target = segment;
                r.Offset = segment.Append(record);
                if (segment.MinSequence == 0) segment.MinSequence = RecordCodec.ReadSequence(record);
                segment.MaxSequence = _nextSequence - 1;
            }
            if (_active is { } active)
            {
                if (flush) active.Flush();
                if (sync) active.Sync(); // acknowledged writes of this group survive power loss from here on
                if (mark) MarkSynced(active);
                else if (active.Length - active.WritebackRequestedAt >= WritebackEveryBytes) StartWriteback(active);
            }
            // Only now do readers see the group: never a write that a crash in this durability mode could still take back.
            foreach (var r in group)
                if (r.Kind is WriteRequestKind.Record or WriteRequestKind.RevokeLease && r.Target is not null) ApplyToKeyDir(r, r.Target, (int)r.Offset, now);
            _view.Clear();
            // Under the watch hub's lock when there is a hub: a watch subscribing now either reads this revision (and
            // replays the group from the log) or is in the subscriber list the publish below reads. Written outside the
            // lock, a subscriber could read the old revision and the leader an old, empty list: the group's events lost.
            if (Watchers is { } hub) hub.SetApplied(ref _appliedSequence, _nextSequence - 1);
            else Volatile.Write(ref _appliedSequence, _nextSequence - 1);
            foreach (var r in group)
                if (r.Kind == WriteRequestKind.Cut)
                {
                    // Between groups: every record up to this sequence is in the files and the keydir, and nothing later is.
                    // The group flushed, so the active segment's bytes all reached the OS and end at a record boundary.
                    r.Cut = new StoreCut(_segments.Snapshot(), _active, _active?.Length ?? 0, _nextSequence - 1);
                }
            if (Watchers is { HasSubscribers: true } watchers)
                foreach (var r in group)
                    if (r.Target is not null) watchers.Publish(r.Buffer.AsSpan(0, r.Length));
            if (seal && _active is { } sealing)
            {
                sealing.SealForReading();
                _active = null;
                _sealedInGroup.Add(sealing);
            }
            // Only now, with the group's keys pointing at them, may hint writing and compaction look at sealed segments.
            foreach (var segment in _sealedInGroup) SegmentSealed?.Invoke(segment);
            _sealedInGroup.Clear();
        }
        catch (Exception e)
        {
            // After a failed write or fsync the file's state is unknown (fsyncgate: dirty pages may be dropped and a
            // later fsync report success), so never acknowledge another write from this handle: reopen recovers.
            _failure = new IOException($"The store at '{_directory}' stopped accepting writes after a failed write or fsync: {e.Message}. " +
                "Writes acknowledged before the failure are safe; reopen the store to continue.", e);
            Log.WritePathFailed(_logger, e, e.Message);
            _sealedInGroup.Clear();
            _view.Clear();
            throw;
        }
    }

    /// <summary>
    /// After an explicit <c>Sync()</c> or a close: appends a sync marker carrying the length just made durable and fsyncs
    /// it, so the file itself proves that every byte before the marker was durable (FORMAT.md §2.2, §5 step 6): damage
    /// there after a crash is media damage, never a torn tail. Skipped when nothing was appended since the last marker.
    /// </summary>
    private static void MarkSynced(Segment active)
    {
        if (active.Header.Version < 2 || active.Length == active.MarkedLength || active.Length + RecordCodec.HeaderSize > int.MaxValue) return;
        Span<byte> marker = stackalloc byte[RecordCodec.HeaderSize];
        RecordCodec.EncodeSyncMarker(marker, checked((uint)active.DurableLength));
        active.Append(marker);
        active.Flush();
        active.Sync(); // the marker is durable: from here a crash cannot make the bytes it vouches for a torn tail
        active.MarkedLength = active.Length;
    }

    /// <summary>In Flushed and Buffered mode nothing fsyncs the active segment until it is sealed, when up to a whole
    /// segment of dirty pages would have to reach the disk while every writer waits; a background fdatasync every
    /// 8 MiB keeps that small (and advances the durable length that recovery's torn-tail proof relies on).</summary>
    private const long WritebackEveryBytes = 8L << 20;

    private void StartWriteback(Segment segment)
    {
        segment.WritebackRequestedAt = segment.Length;
        _writeback ??= new Writeback(this);
        _writeback.Start(segment);
    }

    private Writeback? _writeback;

    /// <summary>The background fdatasync of the active segment; one at a time, reused (no allocation per start).</summary>
    private sealed class Writeback(SegmentWriter writer) : IThreadPoolWorkItem
    {
        private int _running;
        private Segment? _target;

        public void Start(Segment segment)
        {
            if (Interlocked.CompareExchange(ref _running, 1, 0) != 0) return; // the previous one still runs: it covers most of this
            _target = segment;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        public void Execute()
        {
            var target = _target!;
            if (!target.TryAcquire()) // reader references are per thread: taken and released here (closed store: nothing to do)
            {
                _target = null;
                Volatile.Write(ref _running, 0);
                return;
            }
            try
            {
                target.Sync(); // writeback only: no write is acknowledged on the strength of this fsync
            }
            catch (Exception e)
            {
                // After a failed fsync the kernel may have dropped dirty pages: refuse further writes (fsyncgate).
                writer._failure ??= new IOException($"The store at '{writer._directory}' stopped accepting writes after a failed background fsync: {e.Message}. Reopen the store to continue.", e);
                Log.WritePathFailed(writer._logger, e, e.Message);
            }
            finally
            {
                _target = null;
                target.Release();
                Volatile.Write(ref _running, 0);
            }
        }
    }

    /// <summary>
    /// Sequence numbers are assigned here, in queue order, so file order, keydir order and sequence order agree. Each put
    /// also gets its key's create revision (the revision of the put that created the live value: its own sequence when the
    /// key was absent), from the group's earlier writes or the newest record, before the CRC seals it.
    /// </summary>
    private void StampSequences(WriteRequest r, uint durableLength, long now)
    {
        var record = r.Buffer.AsSpan(0, r.Length);
        if (RecordCodec.ReadKind(record) == RecordKind.Batch)
        {
            var first = _nextSequence;
            var entries = new RecordEntries(record, 0);
            while (entries.Next(out var offset, out var entry)) StampEntry(r, record.Slice(offset, entry.Length), offset, durableLength, now);
            RecordCodec.Seal(record, first, durableLength); // the batch's own CRC covers the stamped entries
        }
        else
        {
            StampEntry(r, record, 0, durableLength, now);
        }
    }

    private void StampEntry(WriteRequest r, Span<byte> entry, int offset, uint durableLength, long now)
    {
        var sequence = _nextSequence++;
        var key = RecordCodec.Key(entry);
        var hash = KeyDir.Hash(key);
        var state = default(KeyVersion);
        var isPut = RecordCodec.ReadKind(entry) == RecordKind.Put;
        // A tombstone's previous version is that of the value it removes, expired or not (an Expire event names it).
        var current = Current(key, hash, isPut ? now : long.MinValue, checkCrc: false);
        RecordCodec.StampPreviousVersion(entry, current.Version);
        if (RecordCodec.ReadKind(entry) == RecordKind.Put)
        {
            state = new KeyVersion
            {
                Version = sequence,
                CreateRevision = current.Exists ? current.CreateRevision : sequence,
                ExpiresAt = RecordCodec.ReadExpiresAt(entry),
                LeaseId = RecordCodec.ReadLeaseId(entry),
            };
            RecordCodec.StampCreateRevision(entry, state.CreateRevision);
        }
        RecordCodec.Seal(entry, sequence, durableLength);
        _view.Set(r.Buffer, offset + RecordCodec.HeaderSize, key.Length, hash, state);
    }

    private readonly GroupView _view = new();
    private byte[]? _scratch;

    /// <summary>Whether every condition of <paramref name="r"/> holds now (after the group's earlier writes). Sets
    /// <see cref="WriteRequest.FailedCondition"/> (or <see cref="WriteRequest.RequestError"/> when a record it had to read
    /// is damaged) when not.</summary>
    private bool ConditionsHold(WriteRequest r, long now)
    {
        for (var i = 0; i < r.ConditionCount; i++)
        {
            var key = r.ConditionKey(i);
            KeyVersion current;
            try
            {
                current = Current(key, KeyDir.Hash(key), now, checkCrc: true);
            }
            catch (CorruptionException e)
            {
                r.RequestError = e;
                r.FailedCondition = i;
                return false;
            }
            var expected = r.Conditions[i].Expected;
            if (expected == WriteCondition.Expired)
            {
                if (!ExpiredNow(key, now))
                {
                    r.FailedCondition = i;
                    return false;
                }
                continue;
            }
            var holds = expected switch
            {
                WriteCondition.Absent => !current.Exists,
                WriteCondition.Exists => current.Exists,
                _ => current.Exists && current.Version == (ulong)expected,
            };
            if (!holds)
            {
                r.FailedCondition = i;
                return false;
            }
        }
        return true;
    }

    /// <summary>Whether the key's newest write is a put whose time to live has run out.</summary>
    private bool ExpiredNow(ReadOnlySpan<byte> key, long now)
    {
        if (_view.TryGet(key, KeyDir.Hash(key), out var pending)) return pending.Exists && pending.ExpiresAt != 0 && pending.ExpiresAt <= now;
        return _keyDir.TryGet(key, out _, out var expiresAt) && expiresAt != 0 && expiresAt <= now;
    }

    /// <summary>
    /// Fills a <see cref="WriteRequestKind.RevokeLease"/> request with one batch record: a tombstone for every key whose
    /// newest value is still attached to the lease, and one for the lease itself. Built here, by the leader, so no put can
    /// attach to the lease between choosing the keys and deleting them. False (nothing to write) when the lease is gone.
    /// </summary>
    private bool BuildRevokeBatch(WriteRequest r, long now)
    {
        Span<byte> leaseKey = stackalloc byte[Leases.KeyLength];
        Leases.KeyOf(r.LeaseId, leaseKey);
        if (!Current(leaseKey, KeyDir.Hash(leaseKey), now, checkCrc: false).Exists)
        {
            r.FailedCondition = 0;
            return false;
        }
        // The keys attached by applied writes, and those attached by writes earlier in this very group (not applied yet).
        var candidates = LeaseTable!.KeysOf(r.LeaseId);
        _view.AddKeysWithLease(r.LeaseId, candidates);
        var keys = new List<byte[]>();
        var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
        foreach (var key in candidates)
            if (seen.Add(key) && Current(key, KeyDir.Hash(key), now, checkCrc: false) is { Exists: true } state && state.LeaseId == r.LeaseId) keys.Add(key);
        var entry = RecordCodec.HeaderSize + RecordCodec.TrailerFieldSize;
        var size = RecordCodec.HeaderSize + keys.Sum(k => entry + k.Length) + entry + Leases.KeyLength;
        var span = r.Reserve(size);
        var position = RecordCodec.HeaderSize;
        foreach (var key in keys) position += RecordCodec.Encode(span[position..], RecordKind.Tombstone, key, default, 0, 0, RecordFlags.PreviousVersion, 0);
        position += RecordCodec.Encode(span[position..], RecordKind.Tombstone, leaseKey, default, 0, 0, RecordFlags.PreviousVersion, 0);
        RecordCodec.WriteHeader(span, RecordKind.Batch, RecordFlags.None, 0, 0, position - RecordCodec.HeaderSize);
        r.Length = position;
        return true;
    }

    /// <summary>Live watch subscriptions; the leader publishes each group's changes once the keydir shows them.</summary>
    public WatchHub? Watchers { get; set; }

    /// <summary>The store's leases; the leader records grants, revokes and attachments in it as it applies writes.</summary>
    public LeaseTable? LeaseTable { get; set; }

    /// <summary>The key's live state now: the group's earlier writes first, else the keydir and the record it points at.
    /// An expired value counts as absent.</summary>
    private KeyVersion Current(ReadOnlySpan<byte> key, ulong hash, long now, bool checkCrc)
    {
        if (_view.TryGet(key, hash, out var pending))
            return pending.Exists && pending.ExpiresAt != 0 && pending.ExpiresAt <= now ? default : pending; // now = long.MinValue: nothing is expired
        for (var attempt = 0; ; attempt++)
        {
            if (!_keyDir.TryGet(key, out var location, out var expiresAt) || (expiresAt != 0 && expiresAt <= now)) return default;
            var segment = _segments.Find(location.SegmentId);
            if (segment is null || !segment.TryAcquire())
            {
                if (attempt > 1000) throw new InvalidOperationException($"Segment {location.SegmentId} vanished while reading; this is a bug.");
                Thread.Yield(); // a compaction moved the key meanwhile
                continue;
            }
            try
            {
                var record = segment.Read(location.Offset, (int)location.Length, ref _scratch);
                if (record.Length != location.Length || (checkCrc && (RecordCodec.CheckHeader(record, record.Length, RecordLimits.V2, nested: true) is { IsValid: false }
                        || System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(record) != RecordCodec.ComputeCrc(record))))
                    throw new CorruptionException(segment.Path, location.Offset, "the key's newest record fails its CRC; its version cannot be known");
                return new KeyVersion
                {
                    Version = RecordCodec.ReadSequence(record),
                    CreateRevision = RecordCodec.ReadCreateRevision(record),
                    ExpiresAt = expiresAt,
                    LeaseId = RecordCodec.ReadLeaseId(record),
                };
            }
            finally
            {
                segment.Release();
            }
        }
    }

    private void ApplyToKeyDir(WriteRequest r, Segment segment, int recordOffset, long now)
    {
        var entries = new RecordEntries(r.Buffer.AsSpan(0, r.Length), recordOffset);
        while (entries.Next(out var offset, out var entry))
        {
            var key = RecordCodec.Key(entry);
            var location = new KeyLocation(segment.Id, (uint)offset, (uint)entry.Length);
            KeyLocation previous;
            long previousExpiry;
            bool existed;
            if (RecordCodec.ReadKind(entry) == RecordKind.Put)
            {
                existed = _keyDir.Set(key, location, RecordCodec.ReadExpiresAt(entry), out previous, out previousExpiry);
                segment.AddLive(entry.Length);
                if (LeaseTable is { } leases)
                {
                    if (RecordCodec.ReadLeaseId(entry) is var leaseId and not 0) leases.Attach(leaseId, key);
                    else if (Leases.TryParseLeaseKey(key, out var granted))
                        leases.Granted(granted, (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(RecordCodec.StoredValue(entry)), now);
                }
            }
            else
            {
                existed = _keyDir.Remove(key, out previous, out previousExpiry);
                r.RemovedLive |= existed && (previousExpiry == 0 || previousExpiry > now);
                if (LeaseTable is { } leases && Leases.TryParseLeaseKey(key, out var revoked)) leases.Removed(revoked);
            }
            if (existed) _segments.Find(previous.SegmentId)?.AddLive(-previous.Length);
        }
    }

    private Segment SegmentWithRoomFor(int recordLength)
    {
        var active = _active;
        if (active is not null && active.Length + recordLength <= _options.MaxSegmentBytes) return active;
        if (active is not null)
        {
            active.Flush();
            active.Sync(); // a sealed segment is durable before anything (a hint file, a compaction) builds on it
            active.SealForReading();
        }
        var id = AllocateSegmentId();
        var header = new SegmentHeader
        {
            Kind = SegmentKind.Write,
            SegmentId = id,
            PreviousWriteSegmentId = _lastWriteSegmentId,
            BaseSequence = _nextSequence,
        }.CreatedAt(_options.TimeProvider.GetUtcNow());
        var segment = Segment.Create(_fs, Path.Combine(_directory, StoreFiles.SegmentName(id)), header, _mapCapacity, _options.WriteBufferBytes);
        _fs.SyncDirectory(_directory); // the new segment's name is durable before any write in it is acknowledged
        _segments.Add(segment);
        _active = segment;
        _lastWriteSegmentId = id;
        if (active is not null)
        {
            Log.RolledOver(_logger, active.Id, active.Length, id);
            _sealedInGroup.Add(active); // announced after the group's keydir update (see Commit)
        }
        return segment;
    }

    /// <summary>Raised on the leader thread after a segment is sealed (hint files hook in here).</summary>
    public event Action<Segment>? SegmentSealed;
}
