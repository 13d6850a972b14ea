using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bitcask.Format;
using Bitcask.Storage;
using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>
/// Open-time recovery (RELIABILITY.md §0): reads every segment header, settles what an interrupted compaction left,
/// loads each segment (from its hint file when whole, else by scanning it) into the keydir, where the newest sequence
/// number wins whatever order segments load in, and decides what is a torn tail and what is damage.
/// <list type="bullet">
/// <item>Only the tail of the newest write segment, and only when nothing valid follows the first bad byte, is a torn
/// tail: truncated on a read-write open, ignored on a read-only one. A partly written batch there goes with it.</item>
/// <item>Any other invalid record is damage: a read-write open throws <see cref="CorruptionException"/> unless
/// <see cref="BitcaskOptions.SkipDamagedRecords"/>; a read-only open skips it. Either way it is logged and reported.</item>
/// </list>
/// </summary>
internal sealed class StoreRecovery
{
    private readonly IStorageFileSystem _fs;
    private readonly string _directory;
    private readonly BitcaskOptions _options;
    private readonly ILogger _logger;
    private readonly RecordLimits _limits;
    private readonly List<RecoveryFinding> _findings = [];
    private bool _directoryChanged;

    public StoreRecovery(IStorageFileSystem fs, string directory, BitcaskOptions options, ILogger logger)
    {
        _fs = fs;
        _directory = directory;
        _options = options;
        _logger = logger;
        _limits = LimitsFor(options);
    }

    public static RecordLimits LimitsFor(BitcaskOptions options) =>
        new(options.MaxKeyBytes, options.MaxValueBytes, options.MaxSegmentBytes);

    public KeyDir KeyDir { get; } = new();
    public SegmentSet Segments { get; } = new();
    public IReadOnlyList<RecoveryFinding> Findings => _findings;
    public ulong NextSequence { get; private set; } = 1;
    public uint NextSegmentId { get; private set; } = 1;
    public uint LastWriteSegmentId { get; private set; }
    public int HintedSegments { get; private set; }
    public TimeSpan Elapsed { get; private set; }

    /// <summary>Sealed segments without a usable hint file (a read-write store writes theirs after open).</summary>
    public List<Segment> SegmentsWithoutHint { get; } = [];

    private bool ReadOnly => _options.ReadOnly;

    public void Run()
    {
        var clock = Stopwatch.StartNew();
        var names = _fs.ListFiles(_directory);
        RemoveTemporaryFiles(names);

        var candidates = ReadHeaders(names);
        try
        {
            LoadAll(candidates);
        }
        catch
        {
            foreach (var c in candidates) c.File.Dispose();
            Segments.RetireAll();
            throw;
        }
        Elapsed = clock.Elapsed;
    }

    private void LoadAll(List<Candidate> candidates)
    {
        SettleCompactions(candidates);
        CheckForMissingSegments(candidates);
        SettleOrphanHints();

        var newestWrite = candidates.Where(c => c.Header.Kind == SegmentKind.Write).Select(c => c.Header.SegmentId).DefaultIfEmpty(0u).Max();
        KeyDir.BeginRecovery(EstimateKeys(candidates));
        ulong maxSequence = 0;
        // Segments load in parallel: the keydir is thread-safe and newest-sequence-wins does not depend on load order.
        var loaded = new Segment[candidates.Count];
        var ordered = candidates.OrderBy(c => c.Header.SegmentId).ToArray();
        try
        {
            Parallel.For(0, ordered.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
                i => loaded[i] = Load(ordered[i], isNewestWrite: ordered[i].Header.SegmentId == newestWrite));
        }
        catch (AggregateException e)
        {
            foreach (var s in loaded) s?.Retire();
            // Report the first damage in file order, as a sequential open would.
            var first = e.InnerExceptions.OfType<CorruptionException>().OrderBy(c => c.Path, StringComparer.Ordinal).ThenBy(c => c.Offset).FirstOrDefault();
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first ?? e.InnerExceptions[0]);
        }
        _findings.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path) is var byPath and not 0 ? byPath : a.Offset.CompareTo(b.Offset));
        for (var i = 0; i < loaded.Length; i++)
        {
            Segments.Add(loaded[i]);
            maxSequence = Math.Max(maxSequence, Math.Max(loaded[i].MaxSequence, ordered[i].Header.BaseSequence));
        }
        KeyDir.EndRecovery();
        foreach (var (id, bytes) in KeyDir.LiveBytesBySegment()) Segments.Find(id)?.AddLive(bytes);

        if (_directoryChanged) _fs.SyncDirectory(_directory); // removals and truncations made by recovery are durable before new writes
        NextSequence = maxSequence + 1;
        LastWriteSegmentId = newestWrite;
    }

    /// <summary>Pre-sizing the keydir avoids rehashing while loading: hint entries are about 32 bytes plus the key,
    /// records about 32 bytes plus key and value; when unknown, assume 64 bytes per record.</summary>
    private long EstimateKeys(List<Candidate> candidates)
    {
        long estimate = 0;
        foreach (var c in candidates)
        {
            var hint = Path.Combine(_directory, StoreFiles.HintName(c.Header.SegmentId));
            if (_hintIds.Contains(c.Header.SegmentId))
            {
                try
                {
                    using var f = _fs.OpenFile(hint, StorageOpenMode.ReadOnly);
                    estimate += f.Length / 40;
                    continue;
                }
                catch (IOException) { }
            }
            estimate += c.Length / 160;
        }
        return estimate;
    }

    private sealed record Candidate(SegmentHeader Header, IStorageFile File, long Length);

    private void RemoveTemporaryFiles(IReadOnlyList<string> names)
    {
        foreach (var name in names.Where(n => n.EndsWith(StoreFiles.TempExtension, StringComparison.Ordinal)))
        {
            var path = Path.Combine(_directory, name);
            if (ReadOnly)
            {
                Report(path, 0, "leftover temporary file from an interrupted write", "ignored (read-only open)");
                continue;
            }
            _fs.Delete(path);
            _directoryChanged = true;
            Log.RemovedLeftover(_logger, path, "temporary file from an interrupted hint or compaction write");
            AddFinding(new RecoveryFinding(path, 0, "leftover temporary file from an interrupted write", "removed"));
        }
    }

    private List<Candidate> ReadHeaders(IReadOnlyList<string> names)
    {
        var ids = names.Select(n => StoreFiles.TryParseId(n, StoreFiles.SegmentExtension, out var id) ? id : 0).Where(id => id != 0).OrderBy(id => id).ToList();
        _hintIds = names.Select(n => StoreFiles.TryParseId(n, StoreFiles.HintExtension, out var id) ? id : 0).Where(id => id != 0).ToHashSet();
        _orphanHints = _hintIds.Where(h => !ids.Contains(h)).ToList();
        foreach (var orphan in _orphanHints) _hintIds.Remove(orphan);
        var result = new List<Candidate>();
        var highest = ids.Count == 0 ? 0 : ids[^1];
        foreach (var id in ids)
        {
            NextSegmentId = Math.Max(NextSegmentId, id + 1);
            var path = Path.Combine(_directory, StoreFiles.SegmentName(id));
            var file = _fs.OpenFile(path, StorageOpenMode.ReadOnly);
            var length = file.Length;
            var head = new byte[(int)Math.Min(length, SegmentHeader.FixedSize)];
            file.Read(0, head);
            if (head.Length == SegmentHeader.FixedSize && SegmentHeader.TotalSize(head) is var total and > SegmentHeader.FixedSize && total <= length)
            {
                head = new byte[total];
                file.Read(0, head);
            }
            var header = SegmentHeader.TryDecode(head, out var error, out var unsupported);
            if (header is not null && header.SegmentId != id)
            {
                header = null;
                error = $"segment header names id {SegmentHeaderId(head)} but the file is named for id {id}";
            }
            if (header is null)
            {
                file.Dispose();
                if (unsupported)
                {
                    if (!ReadOnly) throw new UnsupportedFormatException(path, 4, error!);
                    Report(path, 4, error!, "segment skipped (read-only open)");
                    continue;
                }
                // A crash while creating the newest segment leaves at most a header, since no record is written before the
                // header is fsynced: such a file holds nothing that was ever acknowledged.
                if (id == highest && length <= SegmentHeader.FixedSize)
                {
                    if (ReadOnly) Report(path, 0, $"incomplete segment header ({error})", "ignored (read-only open)");
                    else
                    {
                        _fs.Delete(path);
                        _directoryChanged = true;
                        Report(path, 0, $"incomplete segment header from an interrupted segment creation ({error})", "removed; it held no records");
                    }
                    continue;
                }
                Damage(path, 0, error!, "segment skipped");
                continue;
            }
            result.Add(new Candidate(header, file, length));
        }
        return result;
    }

    private static uint SegmentHeaderId(ReadOnlySpan<byte> head) => head.Length >= 12 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(head[8..]) : 0;

    /// <summary>
    /// A compaction's outputs replace its inputs only once all of them are in place (FORMAT.md, "Compaction steps"); a
    /// later compaction may since have replaced some of them (<see cref="CompactionRuns"/>). Finished runs: inputs still
    /// present are stale (their removal was interrupted) and are removed. Interrupted runs: the outputs are removed and
    /// the inputs stay.
    /// </summary>
    private void SettleCompactions(List<Candidate> candidates)
    {
        var settlement = CompactionRuns.Settle(candidates.Select(c => c.Header));
        var drop = new HashSet<Candidate>();
        foreach (var c in candidates)
        {
            var id = c.Header.SegmentId;
            if (settlement.Interrupted.TryGetValue(id, out var why))
            {
                drop.Add(c);
                RemoveSegmentFile(c, why);
            }
            else if (CompactionRuns.IsCovered(settlement.Covered, id))
            {
                drop.Add(c);
                RemoveSegmentFile(c, "input of a finished compaction whose removal was interrupted");
            }
        }
        candidates.RemoveAll(drop.Contains);
        Covered = settlement.Covered;
        // Never hand out an id a finished run replaced: a segment carrying it would be taken for a stale input.
        foreach (var (_, last) in Covered) NextSegmentId = Math.Max(NextSegmentId, last + 1);
    }

    /// <summary>Id ranges that finished compactions replaced.</summary>
    public IReadOnlyList<(uint First, uint Last)> Covered { get; private set; } = [];

    private void RemoveSegmentFile(Candidate c, string reason)
    {
        c.File.Dispose();
        var path = Path.Combine(_directory, StoreFiles.SegmentName(c.Header.SegmentId));
        if (ReadOnly)
        {
            Report(path, 0, reason, "not loaded (read-only open)");
            return;
        }
        _fs.Delete(path);
        var hint = Path.Combine(_directory, StoreFiles.HintName(c.Header.SegmentId));
        if (_fs.FileExists(hint)) _fs.Delete(hint);
        _directoryChanged = true;
        Log.RemovedLeftover(_logger, path, reason);
        AddFinding(new RecoveryFinding(path, 0, reason, "removed"));
    }

    /// <summary>Each write segment names the write segment before it; that one must be present or replaced by a finished compaction.</summary>
    private void CheckForMissingSegments(List<Candidate> candidates)
    {
        var present = candidates.Select(c => c.Header.SegmentId).ToHashSet();
        foreach (var c in candidates.Where(c => c.Header.Kind == SegmentKind.Write))
        {
            var previous = c.Header.PreviousWriteSegmentId;
            if (previous == 0 || present.Contains(previous) || Covered.Any(r => previous >= r.First && previous <= r.Last)) continue;
            var missing = Path.Combine(_directory, StoreFiles.SegmentName(previous));
            Damage(missing, 0, $"segment {previous} is missing (segment {c.Header.SegmentId} follows it)", "its records are lost");
        }
    }

    private Segment Load(Candidate c, bool isNewestWrite)
    {
        var path = Path.Combine(_directory, StoreFiles.SegmentName(c.Header.SegmentId));
        var mapping = c.File.Map(c.Length);
        var segment = Segment.Open(c.Header, c.File, c.Length, mapping);
        if (TryLoadHint(segment))
        {
            lock (_sync) HintedSegments++;
            segment.HasHint = true;
            return segment;
        }
        var data = mapping is not null ? mapping.GetSpan(0, (int)c.Length) : ReadAll(c.File, c.Length);
        var end = Scan(segment, path, data, isNewestWrite && c.Header.Kind == SegmentKind.Write);
        if (end == c.Length) lock (_sync) SegmentsWithoutHint.Add(segment);
        if (end < c.Length && !ReadOnly)
        {
            // Cut the torn tail so the next writer never appends after garbage.
            segment.Retire();
            using (var rw = _fs.OpenFile(path, StorageOpenMode.ReadWrite))
            {
                rw.Truncate(end);
                rw.Sync(); // the shorter length is durable before new segments build on it
            }
            var file = _fs.OpenFile(path, StorageOpenMode.ReadOnly);
            var reopened = Segment.Open(c.Header, file, end, file.Map(end));
            reopened.MinSequence = segment.MinSequence;
            reopened.MaxSequence = segment.MaxSequence;
            lock (_sync) SegmentsWithoutHint.Add(reopened);
            return reopened;
        }
        return segment;
    }

    /// <summary>Fills the keydir from the segment's hint file when it is present and whole (validated completely before
    /// anything is applied); otherwise logs why and returns false so the segment is scanned.</summary>
    private bool TryLoadHint(Segment segment)
    {
        var path = Path.Combine(_directory, StoreFiles.HintName(segment.Id));
        if (!_hintIds.Contains(segment.Id)) return false;
        string? problem;
        try
        {
            using var file = _fs.OpenFile(path, StorageOpenMode.ReadOnly);
            var length = file.Length;
            // Every entry describes a record of at least 32 bytes in 24 or more, so a whole hint is never longer than its
            // segment plus header and trailer: anything longer is damage, and is not read into memory.
            if (length > segment.Length + HintFile.HeaderSize + HintFile.TrailerSize)
                problem = $"hint file of {length} bytes is longer than its segment allows";
            else
            {
                using var mapping = file.Map(length);
                var bytes = mapping is null ? ReadAll(file, length) : null;
                var hint = mapping is not null ? mapping.GetSpan(0, (int)length) : bytes;
                problem = HintFile.Validate(hint, segment.Id, segment.Length, segment.Header.Crc, segment.Header.Size, _options.MaxKeyBytes, out var entries);
                if (problem is null)
                {
                    ApplyHint(segment, mapping, bytes, (int)length, (int)entries);
                    return true;
                }
            }
        }
        catch (IOException e)
        {
            problem = "hint file unreadable: " + e.Message;
        }
        Log.HintRejected(_logger, path, problem);
        AddFinding(new RecoveryFinding(path, 0, problem, ReadOnly ? "segment scanned instead" : "segment scanned instead; hint rewritten"));
        return false;
    }

    /// <summary>
    /// Applies a validated hint. Inserting keys in file order touches the keydir's stripes at random, one cache miss after
    /// another; so the entries are first grouped by stripe (one pass hashing the keys, a counting sort of entry positions),
    /// then inserted stripe by stripe, a stripe's arrays staying in cache while it fills, and with stripes split between
    /// threads. Temporary memory: 24 bytes per entry, released at once; nothing per key.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    private void ApplyHint(Segment segment, FileMapping? mapping, byte[]? bytes, int length, int entryCount)
    {
        ReadOnlySpan<byte> Hint() => mapping is not null ? mapping.GetSpan(0, length) : bytes.AsSpan(0, length);
        var positions = new int[entryCount];
        var hashes = new ulong[entryCount];
        var perStripe = new int[KeyDir.StripeTotal + 1];
        ulong min = ulong.MaxValue, max = 0;
        var reader = new HintFile.Reader(Hint()[..^HintFile.TrailerSize], checkEntryCrc: false);
        for (var i = 0; i < entryCount; i++)
        {
            positions[i] = reader.Position;
            reader.Next(out var entry, out var key, out _);
            hashes[i] = KeyDir.Hash(key);
            perStripe[KeyDir.StripeIndex(hashes[i]) + 1]++;
            min = Math.Min(min, entry.Sequence);
            max = Math.Max(max, entry.Sequence);
        }
        for (var s = 1; s <= KeyDir.StripeTotal; s++) perStripe[s] += perStripe[s - 1]; // perStripe[s] = first slot of stripe s
        // Scatter (position, hash) pairs into stripe order, so the insert loop reads both arrays sequentially.
        var sortedPositions = new int[entryCount];
        var sortedHashes = new ulong[entryCount];
        var next = perStripe[..KeyDir.StripeTotal];
        for (var i = 0; i < entryCount; i++)
        {
            var slot = next[KeyDir.StripeIndex(hashes[i])]++;
            sortedPositions[slot] = positions[i];
            sortedHashes[slot] = hashes[i];
        }

        var parts = entryCount < 100_000 ? 1 : Math.Max(1, Environment.ProcessorCount);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            for (var stripe = KeyDir.StripeTotal * part / parts; stripe < KeyDir.StripeTotal * (part + 1) / parts; stripe++)
                InsertHintEntries(segment.Id, Hint(), stripe, sortedPositions, sortedHashes, perStripe[stripe], perStripe[stripe + 1]);
        });
        segment.MinSequence = min == ulong.MaxValue ? 0 : min;
        segment.MaxSequence = max;
    }

    /// <summary>Inserts the entries at <c>positions[from..to)</c>, all of keydir stripe <paramref name="stripe"/>, under one
    /// acquisition of its lock, prefetching each hint entry a few iterations ahead (they sit at random places in the hint).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    private void InsertHintEntries(uint segmentId, ReadOnlySpan<byte> hint, int stripe, int[] positions, ulong[] hashes, int from, int to)
    {
        if (from == to) return;
        ref var start = ref MemoryMarshal.GetReference(hint);
        const int Ahead = 12;
        using var keyDir = KeyDir.EnterRecoveryStripe(stripe);
        for (var j = from; j < to; j++)
        {
            if (j + Ahead < to)
            {
                Prefetch.Line(ref Unsafe.Add(ref start, positions[j + Ahead]));
                keyDir.PrefetchBucket(hashes[j + Ahead]);
            }
            if (j + Ahead / 2 < to) keyDir.PrefetchChainHead(hashes[j + Ahead / 2]);
            HintFile.Reader.ReadValidated(hint, positions[j], out var entry, out var key);
            keyDir.Recover(key, hashes[j], new KeyLocation(segmentId, entry.Offset, entry.Length), entry.Sequence, entry.ExpiresAt,
                entry.Kind == RecordKind.Tombstone);
        }
    }

    private HashSet<uint> _hintIds = [];
    private List<uint> _orphanHints = [];

    /// <summary>
    /// A hint whose segment is gone is debris when a finished compaction replaced that segment (its hint's deletion was
    /// interrupted). Otherwise it is the only trace of a lost segment: damage, reported before anything is deleted.
    /// </summary>
    private void SettleOrphanHints()
    {
        var stale = new List<string>();
        foreach (var orphan in _orphanHints)
        {
            var path = Path.Combine(_directory, StoreFiles.HintName(orphan));
            var segment = Path.Combine(_directory, StoreFiles.SegmentName(orphan));
            if (Covered.Any(r => orphan >= r.First && orphan <= r.Last)) stale.Add(path);
            else if (!_findings.Any(f => f.Path == segment)) // a missing middle segment is already reported by its successor
                Damage(segment, 0,
                $"segment {orphan} is missing (its hint file {StoreFiles.HintName(orphan)} is still there)", "its records are lost");
        }
        if (ReadOnly) return;
        foreach (var path in stale)
        {
            _fs.Delete(path);
            _directoryChanged = true;
            Log.RemovedLeftover(_logger, path, "hint file of a segment a finished compaction replaced");
            AddFinding(new RecoveryFinding(path, 0, "hint file of a segment a finished compaction replaced", "removed"));
        }
    }

    private static byte[] ReadAll(IStorageFile file, long length)
    {
        var data = new byte[length];
        var n = file.Read(0, data);
        return n == data.Length ? data : data[..n];
    }

    /// <summary>Scans records into the keydir. Returns the length of the valid data (shorter than the file only when a
    /// torn tail was found in the newest write segment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    private long Scan(Segment segment, string path, ReadOnlySpan<byte> data, bool mayHaveTornTail)
    {
        var scanner = new SegmentScanner(data, segment.Header.Size, _limits);
        ulong min = ulong.MaxValue, max = 0;
        while (true)
        {
            if (scanner.Next(out var offset, out var record))
            {
                var entries = new RecordEntries(record, offset);
                while (entries.Next(out var entryOffset, out var entry))
                {
                    var sequence = RecordCodec.ReadSequence(entry);
                    min = Math.Min(min, sequence);
                    max = Math.Max(max, sequence);
                    KeyDir.Recover(RecordCodec.Key(entry), new KeyLocation(segment.Id, (uint)entryOffset, (uint)entry.Length), sequence,
                        RecordCodec.ReadExpiresAt(entry), RecordCodec.ReadKind(entry) == RecordKind.Tombstone);
                }
                continue;
            }
            if (scanner.Error is null) break; // clean end
            var bad = scanner.Position;
            var next = SegmentScanner.FindNextValidAfter(data, bad, _limits);
            if (mayHaveTornTail && IsUnsyncedTail(data, bad, next))
            {
                var bytes = data.Length - bad;
                var action = ReadOnly ? "ignored (read-only open)" : "truncated";
                if (next >= 0 && !ReadOnly) action = "truncated; the cut bytes, which hold unsynced records after a hole, were saved to " + Quarantine(path, bad, data[bad..]);
                Log.TornTail(_logger, path, bad, bytes, action, scanner.Error);
                AddFinding(new RecoveryFinding(path, bad, $"torn tail of {bytes} bytes ({scanner.Error})", action));
                segment.MinSequence = min == ulong.MaxValue ? 0 : min;
                segment.MaxSequence = max;
                return bad;
            }
            Damage(path, bad, scanner.Error, next < 0 ? $"skipped the remaining {data.Length - bad} bytes" : $"skipped {next - bad} bytes");
            scanner.SkipTo(bad);
        }
        segment.MinSequence = min == ulong.MaxValue ? 0 : min;
        segment.MaxSequence = max;
        return data.Length;
    }

    /// <summary>
    /// Whether the bytes from <paramref name="bad"/> on are the unsynced tail of the newest segment, torn by a crash
    /// (RELIABILITY.md §0.4): true when nothing valid follows, or when every valid record that follows was written while
    /// the segment was durable only up to <paramref name="bad"/> or less (its durableLength field), so the damaged bytes
    /// had never been fsynced (a power loss may persist later pages and not earlier ones). Any later record written after
    /// the damaged bytes were fsynced proves the damage is rot of durable data instead.
    /// </summary>
    private bool IsUnsyncedTail(ReadOnlySpan<byte> data, int bad, int next)
    {
        while (next >= 0)
        {
            var check = RecordCodec.CheckHeader(data[next..], data.Length - next, _limits);
            if (RecordCodec.ReadDurableLength(data[next..]) > (uint)bad) return false;
            next = SegmentScanner.FindNextValid(data, next + Math.Max(1, check.IsValid ? check.Length : 1), _limits);
        }
        return true;
    }

    /// <summary>Saves bytes that recovery is about to cut into quarantine/ (never thrown away); returns the file's path.</summary>
    private string Quarantine(string segmentPath, long offset, ReadOnlySpan<byte> bytes)
    {
        var directory = Path.Combine(_directory, StoreFiles.QuarantineDirectory);
        if (!_fs.DirectoryExists(directory))
        {
            _fs.CreateDirectory(directory);
            _fs.SyncDirectory(_directory); // quarantine/ itself survives a crash
        }
        var path = Path.Combine(directory, $"{Path.GetFileName(segmentPath)}.{offset}.tail");
        if (_fs.FileExists(path)) _fs.Delete(path);
        using (var file = _fs.OpenFile(path, StorageOpenMode.CreateNew))
        {
            file.Write(0, bytes);
            file.Sync(); // the saved copy is durable before the original bytes are cut
        }
        _fs.SyncDirectory(directory); // and so is its name
        return path;
    }

    /// <summary>Damage outside a torn tail: fatal for a read-write open unless SkipDamagedRecords.</summary>
    private void Damage(string path, long offset, string problem, string skipAction)
    {
        if (!ReadOnly && !_options.SkipDamagedRecords)
            throw new CorruptionException(path, offset, problem,
                "The store was not changed. Run 'bitcask verify' and 'bitcask repair' on the directory, or open it with ReadOnly or SkipDamagedRecords.");
        Log.Damaged(_logger, path, offset, problem, skipAction);
        AddFinding(new RecoveryFinding(path, offset, problem, skipAction));
    }

    private readonly object _sync = new(); // segments load in parallel: findings and lists are shared

    private void AddFinding(RecoveryFinding finding)
    {
        lock (_sync) _findings.Add(finding);
    }

    private void Report(string path, long offset, string problem, string action)
    {
        Log.Damaged(_logger, path, offset, problem, action);
        AddFinding(new RecoveryFinding(path, offset, problem, action));
    }
}
