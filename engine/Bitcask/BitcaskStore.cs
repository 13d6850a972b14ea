using System.Buffers;
using System.Text;
using Bitcask.Format;
using Bitcask.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bitcask;

/// <summary>
/// A persistent key-value store: writes append CRC-checked records to segment files, an in-memory keydir maps every
/// key to its newest record, reads cost one keydir lookup and one memory-mapped read.
/// <para>Thread-safety: every member is safe to call from any number of threads at once. Concurrent writers are
/// committed in groups (one write system call, and one fdatasync in <see cref="Durability.Synced"/> mode, per group);
/// readers never wait for a writer's I/O. <see cref="Dispose"/> waits for queued writes and fails later calls with
/// <see cref="ObjectDisposedException"/>.</para>
/// <para>One process at a time may open a directory for writing (an exclusive lock on its LOCK file, released when the
/// process dies); any number may open it with <see cref="BitcaskOptions.ReadOnly"/>.</para>
/// </summary>
public sealed partial class BitcaskStore : IDisposable, IAsyncDisposable
{
    [ThreadStatic] private static WriteRequest? t_request;
    /// <summary>Buffer for reads that cannot come from a mapping (a record still in the write buffer, a file system without
    /// mappings). The read path takes it out of this slot while a record lives in it, so a read started from inside
    /// <see cref="IBufferWriter{T}.GetSpan"/> (same store or another) gets a buffer of its own and cannot overwrite it.</summary>
    [ThreadStatic] private static byte[]? t_scratch;

    private readonly BitcaskOptions _options;
    private readonly KeyDir _keyDir;
    private readonly SegmentSet _segments;
    private readonly SegmentWriter? _writer;
    private readonly GroupCommit? _commit;
    private readonly IDisposable? _lock;
    private readonly IReadOnlyList<RecoveryFinding> _findings;
    private readonly TimeSpan _openDuration;
    private readonly int _maxRecordBytes;
    private readonly int _maxValueBytes; // limits new writes only; reads accept every record the format allows
    private readonly ulong _openedAtRevision;
    private readonly IStorageFileSystem _fs;
    private readonly Compactor? _compactor;
    private readonly BackgroundWork? _background;              // hint writes, compaction, periodic sync; null when read-only
    private int _disposed;

    private BitcaskStore(IStorageFileSystem fs, string directory, BitcaskOptions options, ILogger logger, StoreRecovery recovery, IDisposable? storeLock)
    {
        Directory = directory;
        _fs = fs;
        _options = options;
        _keyDir = recovery.KeyDir;
        _segments = recovery.Segments;
        _findings = recovery.Findings;
        _openDuration = recovery.Elapsed;
        _lock = storeLock;
        _maxRecordBytes = (int)Math.Min(int.MaxValue, options.MaxSegmentBytes - SegmentHeader.FixedSize);
        _maxValueBytes = options.MaxValueBytes;
        _openedAtRevision = recovery.NextSequence - 1;
        if (!options.ReadOnly)
        {
            _writer = new SegmentWriter(fs, directory, options, _keyDir, _segments, logger,
                recovery.NextSequence, recovery.NextSegmentId, recovery.LastWriteSegmentId);
            _commit = new GroupCommit(_writer, maxGroupBytes: Math.Max(options.WriteBufferBytes, 1 << 20), options.InlineAsyncCompletions);
            var hints = new HintWriter(fs, directory);
            _compactor = new Compactor(fs, directory, options, _keyDir, _segments, _writer, _commit, hints, logger);
            _writer.LeaseTable = _leases;
            _writer.Watchers = _watchers;
            if (options.ExpireInBackground) _sweeper = new ExpirySweeper(options.TimeProvider, SweepExpired);
            _background = new BackgroundWork(options, logger, _keyDir, _segments, _writer, _commit, hints, _compactor,
                () => Volatile.Read(ref _disposed) != 0, ThrowIfDisposed) { BeforeCompaction = () => _sweeper?.RunNow(), StoreDirectory = directory };
        }
    }

    /// <summary>The store's directory (full path).</summary>
    public string Directory { get; }

    /// <summary>The options the store was opened with.</summary>
    public BitcaskOptions Options => _options;

    /// <summary>
    /// Opens (creating when missing, unless read-only) the store in <paramref name="directory"/> and recovers it:
    /// a torn tail of the newest segment is truncated; damage anywhere else throws <see cref="CorruptionException"/>
    /// (see <see cref="BitcaskOptions.SkipDamagedRecords"/> and <see cref="BitcaskOptions.ReadOnly"/>).
    /// Throws <see cref="StoreLockedException"/> when another writer holds the directory.
    /// </summary>
    public static BitcaskStore Open(string directory, BitcaskOptions? options = null) =>
        Open(directory, options, OsFileSystem.Instance);

    internal static BitcaskStore Open(string directory, BitcaskOptions? options, IStorageFileSystem fs)
    {
        using var activity = Telemetry.StartActivity("bitcask.open", directory ?? "");
        try
        {
            var store = OpenCore(directory!, options, fs);
            activity?.SetTag("bitcask.keys", store._keyDir.Count);
            activity?.SetTag("bitcask.read_only", store._options.ReadOnly);
            Telemetry.Register(store);
            return store;
        }
        catch (Exception e) when (Telemetry.Failed(activity, e))
        {
            throw;
        }
    }

    private static BitcaskStore OpenCore(string directory, BitcaskOptions? options, IStorageFileSystem fs)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new BitcaskOptions();
        options.Validate();
        var fullPath = Path.GetFullPath(directory);
        var logger = options.LoggerFactory?.CreateLogger("Bitcask") ?? NullLogger.Instance;
        if (fs.FileExists(fullPath))
            throw new IOException($"'{fullPath}' is a file, not a store directory.");
        if (!fs.DirectoryExists(fullPath))
        {
            if (options.ReadOnly) throw new DirectoryNotFoundException($"No store at '{fullPath}': the directory does not exist (read-only open does not create it).");
            fs.CreateDirectory(fullPath);
            if (Path.GetDirectoryName(fullPath) is { } parent) fs.SyncDirectory(parent); // the new store directory's own name is durable
        }
        var storeLock = options.ReadOnly ? null : fs.Lock(Path.Combine(fullPath, StoreFiles.LockFile));
        try
        {
            var recovery = new StoreRecovery(fs, fullPath, options, logger);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    recovery.Run();
                    break;
                }
                catch (FileNotFoundException) when (options.ReadOnly && attempt < 5)
                {
                    // A writer beside this read-only open compacted a segment away between listing and opening: list again.
                    recovery = new StoreRecovery(fs, fullPath, options, logger);
                }
            }
            BitcaskStore store;
            try
            {
                store = new BitcaskStore(fs, fullPath, options, logger, recovery, storeLock);
            }
            catch
            {
                recovery.Segments.RetireAll();
                throw;
            }
            try
            {
                store.LoadLeases();
                Log.Opened(logger, fullPath, options.ReadOnly ? "read-only" : options.Durability.ToString(), recovery.Segments.Count,
                    recovery.KeyDir.Count, recovery.HintedSegments, (long)recovery.Elapsed.TotalMilliseconds);
                store._background?.Start(recovery.SegmentsWithoutHint); // last: nothing may run before the open has succeeded
                store._sweeper?.Start();
                return store;
            }
            catch
            {
                store.StopAfterFailedOpen();
                throw;
            }
        }
        catch
        {
            storeLock?.Dispose();
            throw;
        }
    }

    // ------------------------------------------------------------------ reads

    /// <summary>The value of <paramref name="key"/>, or null when it is absent or expired.</summary>
    public byte[]? Get(ReadOnlySpan<byte> key)
    {
        byte[]? result = null;
        return Read(key, ref result, null, out _) ? result : null;
    }

    /// <summary>Writes the value of <paramref name="key"/> into <paramref name="destination"/> and returns true, or returns
    /// false when the key is absent or expired. Allocates nothing of its own on a hit.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        byte[]? unused = null;
        return Read(key, ref unused, destination, out _);
    }

    /// <summary>Like <see cref="TryGet(ReadOnlySpan{byte}, IBufferWriter{byte})"/>, and also returns the key's expiry
    /// (null when it has none), read from the same record as the value.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, IBufferWriter<byte> destination, out DateTimeOffset? expiresAt)
    {
        ArgumentNullException.ThrowIfNull(destination);
        byte[]? unused = null;
        var found = Read(key, ref unused, destination, out var expiry);
        expiresAt = found && expiry != 0 ? DateTimeOffset.FromUnixTimeMilliseconds(expiry) : null;
        return found;
    }

    /// <summary>True when <paramref name="key"/> has a live, unexpired value. Touches no file.</summary>
    public bool ContainsKey(ReadOnlySpan<byte> key)
    {
        ThrowIfDisposed();
        return _keyDir.TryGet(key, out _, out var expiresAt) && !IsExpired(expiresAt);
    }

    private bool Read(ReadOnlySpan<byte> key, ref byte[]? result, IBufferWriter<byte>? destination, out long recordExpiresAt)
    {
        var found = Read(key, ref result, destination, decode: true, out var meta, full: false);
        recordExpiresAt = meta.ExpiresAt;
        return found;
    }

    /// <summary>The read path: keydir → segment → CRC and key check → decode (when <paramref name="decode"/>). The value goes
    /// to <paramref name="destination"/> (or a new array in <paramref name="result"/>); <paramref name="meta"/> comes from
    /// the same record.</summary>
    private bool Read(ReadOnlySpan<byte> key, ref byte[]? result, IBufferWriter<byte>? destination, bool decode, out RecordMeta meta, bool full = true)
    {
        var start = Telemetry.Start();
        var found = ReadCore(key, ref result, destination, decode, out meta, full);
        if (start != 0) Telemetry.Done(start, Directory, Telemetry.Get, bytesRead: found && decode ? meta.ValueLength : 0);
        return found;
    }

    private bool ReadCore(ReadOnlySpan<byte> key, ref byte[]? result, IBufferWriter<byte>? destination, bool decode, out RecordMeta meta, bool full)
    {
        meta = default;
        ThrowIfDisposed();
        for (var attempt = 0; ; attempt++)
        {
            if (!_keyDir.TryGet(key, out var location, out var expiresAt) || IsExpired(expiresAt)) return false;
            var segment = _segments.Find(location.SegmentId);
            if (segment is null || !segment.TryAcquire())
            {
                // A compaction moved the key (the keydir already points elsewhere) or the store is closing.
                ThrowIfDisposed();
                if (attempt > 1000) throw new InvalidOperationException($"Segment {location.SegmentId} vanished while reading; this is a bug.");
                Thread.Yield();
                continue;
            }
            var scratch = t_scratch;
            t_scratch = null; // until this read is done with it: a reentrant read must not refill the bytes checked below
            try
            {
                var record = segment.Read(location.Offset, (int)location.Length, ref scratch);
                var problem = CheckRecord(record, key, location);
                if (problem is not null) throw new CorruptionException(segment.Path, location.Offset, problem);
                var length = RecordCodec.RawValueLength(record);
                meta = full // versions and lease only for the calls that report them: a plain get reads no trailer
                    ? new RecordMeta(RecordCodec.ReadSequence(record), RecordCodec.ReadCreateRevision(record), RecordCodec.ReadExpiresAt(record),
                        RecordCodec.ReadLeaseId(record), length)
                    : new RecordMeta(0, 0, RecordCodec.ReadExpiresAt(record), 0, length);
                if (!decode) return true;
                var target = destination is null ? (result = new byte[length]) : destination.GetSpan(length)[..length];
                if (!RecordCodec.TryDecodeValue(record, target))
                    throw new CorruptionException(segment.Path, location.Offset, "compressed value does not decode to its recorded length");
                destination?.Advance(length);
                return true;
            }
            finally
            {
                t_scratch = scratch;
                segment.Release();
            }
        }
    }

    /// <summary>The checks that make a read never return wrong bytes: whole record present, CRC, kind and key match.</summary>
    private string? CheckRecord(ReadOnlySpan<byte> record, ReadOnlySpan<byte> key, KeyLocation location)
    {
        if (record.Length != location.Length) return $"record of {location.Length} bytes is cut short ({record.Length} bytes readable)";
        var check = RecordCodec.CheckHeader(record, record.Length, RecordLimits.V2, nested: true); // the format's limits, not this open's
        if (!check.IsValid) return check.Error;
        if (check.Length != record.Length) return "record length does not match the index";
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(record) != RecordCodec.ComputeCrc(record)) return "CRC mismatch";
        if (RecordCodec.ReadKind(record) != RecordKind.Put) return "index points at a record that is not a put";
        if (!RecordCodec.Key(record).SequenceEqual(key)) return "index points at a record of another key";
        var raw = RecordCodec.RawValueLength(record);
        if (raw < 0) return "compressed value has no valid uncompressed length (its 4-byte length prefix is missing or out of range)";
        if (raw > Array.MaxLength) return $"value length {raw} exceeds the largest array ({Array.MaxLength} bytes)";
        return null;
    }

    /// <summary>UTF-8 convenience for <see cref="Get"/>.</summary>
    public string? GetString(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var value = Get(Encoding.UTF8.GetBytes(key));
        return value is null ? null : Encoding.UTF8.GetString(value);
    }

    /// <summary>Live, unexpired keys that start with <paramref name="prefix"/>, in no particular order. The enumeration
    /// is weakly consistent: it sees every key that was live throughout, and may or may not see concurrent changes.</summary>
    public IEnumerable<byte[]> Keys(ReadOnlyMemory<byte> prefix = default)
    {
        ThrowIfDisposed();
        return Enumerate(prefix);

        IEnumerable<byte[]> Enumerate(ReadOnlyMemory<byte> p)
        {
            var buffer = new List<KeyDirEntry>();
            for (var stripe = 0; stripe < KeyDir.StripeTotal; stripe++)
            {
                ThrowIfDisposed();
                buffer.Clear();
                _keyDir.SnapshotStripe(stripe, p.Span, buffer);
                foreach (var entry in buffer)
                    if (!IsExpired(entry.ExpiresAt) && !Leases.IsReserved(entry.Key)) yield return entry.Key;
            }
        }
    }

    /// <summary>Live, unexpired key/value pairs whose key starts with <paramref name="prefix"/>; each value is the key's value
    /// when the enumeration reached it (weakly consistent, like <see cref="Keys"/>).</summary>
    public IEnumerable<KeyValuePair<byte[], byte[]>> Scan(ReadOnlyMemory<byte> prefix = default)
    {
        foreach (var key in Keys(prefix))
            if (Get(key) is { } value) yield return new KeyValuePair<byte[], byte[]>(key, value);
    }

    /// <summary>Live, unexpired keys.</summary>
    public long Count
    {
        get
        {
            ThrowIfDisposed();
            return Math.Max(0, _keyDir.CountUnexpired(Now) - _leases.Count); // lease grants are the engine's keys
        }
    }

    // ------------------------------------------------------------------ writes

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>; returns when acknowledged per <see cref="BitcaskOptions.Durability"/>.</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => PutCore(key, value, 0);

    /// <summary>Stores a value that expires <paramref name="timeToLive"/> from now (by <see cref="BitcaskOptions.TimeProvider"/>),
    /// rounded up to whole milliseconds. An expiry landing exactly on the Unix epoch (a clock before 1970) is kept 1 ms
    /// earlier, because a stored 0 means "never expires".</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TimeSpan timeToLive) => PutCore(key, value, ExpiryFor(timeToLive));

    /// <summary>Stores a value that expires at <paramref name="expiresAt"/> (absolute; by <see cref="BitcaskOptions.TimeProvider"/>),
    /// e.g. to restore an exported expiry exactly (to the millisecond; exactly the Unix epoch is kept 1 ms earlier, since a
    /// stored 0 means "never expires"). An expiry that is not in the future throws <see cref="ArgumentOutOfRangeException"/>.</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, DateTimeOffset expiresAt) => PutCore(key, value, ValidateExpiry(expiresAt, Now));

    /// <summary>UTF-8 convenience for <see cref="Put(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>.</summary>
    public void Put(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        Put(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));
    }

    private void PutCore(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt)
    {
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        PrefetchNewest(key);
        EncodePut(request, key, value, expiresAt, leaseId: 0);
        commit.Submit(request);
        Telemetry.Done(start, Directory, Telemetry.Put, bytesWritten: request.Length);
    }

    /// <summary>The leader reads the key's newest record for the version trailers of the next write (SegmentWriter.Current);
    /// start loading it on the caller's thread, so the miss overlaps with encoding and queueing instead of following them.</summary>
    private void PrefetchNewest(ReadOnlySpan<byte> key)
    {
        if (_keyDir.TryGet(key, out var location, out _)) PrefetchRecord(location);
    }

    private void PrefetchRecord(KeyLocation location) => _segments.Find(location.SegmentId)?.PrefetchRecord(location.Offset, (int)location.Length);

    /// <summary>Validates and encodes one put (with its create-revision slot, and its lease) into a reset request.</summary>
    private void EncodePut(WriteRequest request, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt, long leaseId)
    {
        ValidateKey(key);
        ValidateValue(value.Length);
        request.Reset(WriteRequestKind.Record);
        var span = request.Reserve(RecordCodec.MaxEncodedSize(key.Length, value.Length, _options.CompressionThreshold));
        request.Length = RecordCodec.Encode(span, RecordKind.Put, key, value, expiresAt, _options.CompressionThreshold,
            RecordFlags.CreateRevision | RecordFlags.PreviousVersion | (leaseId != 0 ? RecordFlags.Lease : RecordFlags.None), leaseId);
        if (leaseId != 0) request.AddCondition(Leases.KeyOf(leaseId, stackalloc byte[Leases.KeyLength]), WriteCondition.Exists);
    }

    /// <summary>Removes <paramref name="key"/>. Returns true when a live key was removed.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        var commit = WritableCommit();
        if (key.Length > ushort.MaxValue) return false; // no record can hold such a key (MaxKeyBytes bounds new puts only)
        Leases.ThrowIfReserved(key, nameof(key));
        // Nothing to remove: no tombstone needed (no older value of this key is indexed).
        if (!_keyDir.TryGet(key, out var newest, out _)) return false;
        PrefetchRecord(newest); // the leader reads it (see PrefetchNewest)
        var request = t_request ??= new WriteRequest();
        request.Reset(WriteRequestKind.Record);
        var span = request.Reserve(RecordCodec.HeaderSize + key.Length + RecordCodec.TrailerFieldSize);
        request.Length = RecordCodec.Encode(span, RecordKind.Tombstone, key, default, 0, 0, RecordFlags.PreviousVersion, 0);
        var start = Telemetry.Start();
        commit.Submit(request);
        Telemetry.Done(start, Directory, Telemetry.Delete, bytesWritten: request.Length);
        return request.RemovedLive;
    }

    /// <summary>UTF-8 convenience for <see cref="Delete(ReadOnlySpan{byte})"/>.</summary>
    public bool Delete(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Delete(Encoding.UTF8.GetBytes(key));
    }

    /// <summary>Applies every operation of <paramref name="batch"/> atomically: after a crash, all or none of them are visible.</summary>
    public void Write(WriteBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ThrowIfConditional(batch);
        var commit = WritableCommit();
        if (batch.Count == 0) return;
        var start = Telemetry.Start();
        var request = t_request ??= new WriteRequest();
        var firstLease = EncodeConditionalBatch(batch, request, durability: null);
        commit.Submit(request);
        BatchOutcome(request, batch, firstLease);
        Telemetry.Done(start, Directory, Telemetry.Batch, bytesWritten: request.Length);
    }

    private static void ThrowIfConditional(WriteBatch batch)
    {
        if (batch.ConditionCount > 0)
            throw new ArgumentException("The batch has conditions: write it with TryWrite, which reports whether they held.", nameof(batch));
    }

    /// <summary>Asynchronous <see cref="Put(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>. In <see cref="Durability.Synced"/> mode the
    /// caller's thread is released while the group's fdatasync runs; otherwise the write completes synchronously.</summary>
    public ValueTask PutAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, CancellationToken ct = default)
    {
        if (ct.IsCancellationRequested) return ValueTask.FromCanceled(ct);
        if (_options.Durability != Durability.Synced)
        {
            Put(key.Span, value.Span);
            return ValueTask.CompletedTask;
        }
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = new WriteRequest();
        EncodePut(request, key.Span, value.Span, 0, leaseId: 0);
        return start == 0 ? commit.SubmitAsync(request) : Telemetry.DoneAsync(commit.SubmitAsync(request), start, Directory, Telemetry.Put, request.Length);
    }

    /// <summary>Asynchronous <see cref="Write"/>.</summary>
    public ValueTask WriteAsync(WriteBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (ct.IsCancellationRequested) return ValueTask.FromCanceled(ct);
        if (_options.Durability != Durability.Synced)
        {
            Write(batch);
            return ValueTask.CompletedTask;
        }
        ThrowIfConditional(batch);
        var commit = WritableCommit();
        if (batch.Count == 0) return ValueTask.CompletedTask;
        var start = Telemetry.Start();
        var request = new WriteRequest();
        var firstLease = EncodeConditionalBatch(batch, request, durability: null);
        return Finish(commit.SubmitAsync(request), request, batch, firstLease, start, Directory);

        static async ValueTask Finish(ValueTask submitted, WriteRequest request, WriteBatch batch, int firstLease, long start, string store)
        {
            await submitted.ConfigureAwait(false);
            BatchOutcome(request, batch, firstLease);
            Telemetry.Done(start, store, Telemetry.Batch, bytesWritten: request.Length);
        }
    }

    private void EncodeBatch(WriteBatch batch, WriteRequest request)
    {
        var span = request.Reserve(BatchCodec.MaxEncodedSize(batch, _options, _maxRecordBytes));
        request.Length = BatchCodec.Encode(batch, span, Now, _options.CompressionThreshold, _maxRecordBytes,
            static (now, timeToLive) => AddTtl(now, timeToLive),
            static (now, expiresAt) => ValidateExpiry(DateTimeOffset.FromUnixTimeMilliseconds(expiresAt), now));
    }

    /// <summary>Returns when everything written before the call is on disk (flushed to the OS and fdatasync'd).</summary>
    public void Sync()
    {
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        request.Reset(WriteRequestKind.Sync);
        commit.Submit(request);
        Telemetry.Done(start, Directory, Telemetry.Sync);
    }

    // ------------------------------------------------------------------ compaction and hints

    /// <summary>
    /// Compacts now: seals the active segment, then merges every sealed segment into new ones holding only live records
    /// (and the tombstones still needed), with hint files. Reads and writes continue meanwhile. Waits for a background
    /// compaction in progress. Returns what it did; <see cref="CompactionResult.Cancelled"/> when <paramref name="ct"/> fired
    /// (nothing changed).
    /// </summary>
    public CompactionResult Compact(CancellationToken ct = default) => Compact(choose: null, ct);

    /// <summary>Test seam: as <see cref="Compact(CancellationToken)"/>, but merges only the sealed segments
    /// <paramref name="choose"/> picks (a partial merge, as background compaction makes).</summary>
    internal CompactionResult Compact(Func<IReadOnlyList<Segment>, IReadOnlyList<Segment>>? choose, CancellationToken ct)
    {
        WritableCommit();
        return _background!.Compact(choose, ct);
    }

    // ------------------------------------------------------------------ stats

    /// <summary>Keys, segments with live and dead bytes, and what recovery found.</summary>
    public StoreStats GetStats()
    {
        ThrowIfDisposed();
        var active = _writer?.Active;
        var segments = _segments.Snapshot().Select(s =>
        {
            var records = s.RecordBytes;
            var live = Math.Min(s.LiveBytes, records);
            var dead = records - live;
            return new SegmentStats
            {
                Id = s.Id,
                FileName = s.FileName,
                TotalBytes = s.Length,
                LiveBytes = live,
                DeadBytes = dead,
                Fragmentation = records == 0 ? 0 : (double)dead / records,
                IsActive = ReferenceEquals(s, active),
                IsCompactionOutput = s.Header.Kind == SegmentKind.Compacted,
                HasHintFile = s.HasHint,
            };
        }).ToArray();
        var liveBytes = segments.Sum(s => s.LiveBytes);
        var deadBytes = segments.Sum(s => s.DeadBytes);
        return new StoreStats
        {
            LiveKeys = Math.Max(0, _keyDir.CountUnexpired(Now) - _leases.Count),
            KeydirEntries = _keyDir.Count,
            Segments = segments,
            TotalBytes = segments.Sum(s => s.TotalBytes),
            LiveBytes = liveBytes,
            DeadBytes = deadBytes,
            Fragmentation = liveBytes + deadBytes == 0 ? 0 : (double)deadBytes / (liveBytes + deadBytes),
            KeydirBytes = _keyDir.ApproximateBytes,
            RecoveryFindings = _findings,
            OpenDuration = _openDuration,
            ReadOnly = _options.ReadOnly,
            WriteFailure = _writer?.Failure?.Message,
            CompactionRunning = _background?.CompactionRunning ?? false,
            LastCompaction = _background?.LastCompaction,
        };
    }

    // ------------------------------------------------------------------ lifetime

    /// <summary>Waits for queued writes, syncs them to disk, seals the active segment, and releases the directory lock.
    /// Throws <see cref="IOException"/> (after releasing everything) when that final sync fails, because the writes since the
    /// last successful sync may then not be durable.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Telemetry.Unregister(this);
        _sweeper?.Stop();
        _background?.Stop();
        IOException? finalSyncFailure = null;
        if (_writer is not null && _commit is not null)
        {
            _writer.Close(nameof(BitcaskStore));
            if (_writer.Failure is null)
            {
                var request = new WriteRequest();
                request.Reset(WriteRequestKind.Close);
                try
                {
                    _commit.Submit(request, evenIfRefused: true);
                }
                catch (IOException e)
                {
                    // Reported after everything is released: the caller must learn that its last writes may not be durable.
                    finalSyncFailure = e;
                }
            }
        }
        _background?.WaitForPendingWork(); // also the hint write the final seal scheduled
        _commit?.Close();
        _watchers.CompleteAll();
        _segments.RetireAll();
        _lock?.Dispose();
        if (finalSyncFailure is not null)
            throw new IOException($"Closing the store at '{Directory}' could not sync its last writes to disk: {finalSyncFailure.Message}. " +
                "Writes acknowledged in Synced mode, and before the last successful Sync(), are safe; later ones may be lost.", finalSyncFailure);
    }

    /// <summary>Undoes a half-finished open: stops whatever background work started and closes the segments, without
    /// writing anything (the caller releases the lock).</summary>
    private void StopAfterFailedOpen()
    {
        Interlocked.Exchange(ref _disposed, 1);
        _writer?.Close(nameof(BitcaskStore));
        _sweeper?.Stop();
        _background?.Stop();
        _background?.WaitForPendingWork();
        _segments.RetireAll();
    }

    /// <summary>Closes the store as <see cref="Dispose"/> does (the final sync runs on the calling thread).</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    // ------------------------------------------------------------------ validation and helpers

    private long Now => _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private bool IsExpired(long expiresAt) => expiresAt != 0 && expiresAt <= Now;

    private long ExpiryFor(TimeSpan timeToLive)
    {
        ValidateTtl(timeToLive);
        return AddTtl(Now, timeToLive);
    }

    private static long AddTtl(long now, TimeSpan timeToLive)
    {
        var ms = Math.Max(1, (long)Math.Ceiling(timeToLive.TotalMilliseconds));
        if (ms > MaxExpiresAt - now)
            throw new ArgumentOutOfRangeException(nameof(timeToLive), timeToLive, "The time to live reaches past 9999-12-31, the latest expiry a record can hold.");
        return StorableExpiry(now + ms);
    }

    /// <summary>A record's expiry of 0 means "never expires", so an expiry landing exactly on the Unix epoch
    /// (1970-01-01T00:00:00Z, only reachable from a clock before it) is stored as -1: 1 ms early, never late.</summary>
    private static long StorableExpiry(long unixMilliseconds) => unixMilliseconds == 0 ? -1 : unixMilliseconds;

    private static readonly long MaxExpiresAt = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    private static long ValidateExpiry(DateTimeOffset expiresAt, long now)
    {
        var ms = expiresAt.ToUnixTimeMilliseconds();
        if (ms <= now)
            throw new ArgumentOutOfRangeException(nameof(expiresAt), expiresAt, "The expiry must be in the future (by BitcaskOptions.TimeProvider); use Delete to remove a key now.");
        return StorableExpiry(ms);
    }

    internal static void ValidateTtl(TimeSpan timeToLive)
    {
        if (timeToLive <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(timeToLive), timeToLive, "The time to live must be positive; use Delete to remove a key now.");
        if (timeToLive.TotalMilliseconds > MaxExpiresAt)
            throw new ArgumentOutOfRangeException(nameof(timeToLive), timeToLive, "The time to live reaches past 9999-12-31, the latest expiry a record can hold.");
    }

    private void ValidateKey(ReadOnlySpan<byte> key)
    {
        if (key.Length > _options.MaxKeyBytes)
            throw new ArgumentException($"The key is {key.Length} bytes; the limit is MaxKeyBytes = {_options.MaxKeyBytes}.", nameof(key));
        Leases.ThrowIfReserved(key, nameof(key));
    }

    private void ValidateValue(int length)
    {
        if (length > _maxValueBytes) // the effective limit, fixed at open (BitcaskOptions.MaxValueBytes may be computed)
            throw new ArgumentException($"The value is {length} bytes; the limit is MaxValueBytes = {_maxValueBytes}.", "value");
    }

    private GroupCommit WritableCommit()
    {
        ThrowIfDisposed();
        if (_commit is null) throw new NotSupportedException($"The store at '{Directory}' was opened read-only; writes are not allowed.");
        return _commit;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    internal KeyDir KeyDirForTests => _keyDir;
    internal Compactor? CompactorForTests => _compactor;
    internal SegmentSet SegmentsForTests => _segments;
}
