using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bitcask.Analysis;
using Bitcask.Format;
using Bitcask.Inspection;
using Bitcask.Storage;
using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>
/// Open-time recovery: analysis, then plan, then (read-write only) apply. The decisions are all
/// <see cref="StoreAnalysis"/>'s, the one judge that verify and repair use too: which segments load, which files are
/// debris, what is a torn tail and what is damage (FORMAT.md §5). This class only loads what the analysis keeps into the
/// keydir (a whole hint through the fast path below, else the records the analysis walks), stops before changing any file
/// when the analysis found damage a read-write open may not skip, and otherwise applies the analysis's plan.
/// </summary>
internal sealed class StoreRecovery
{
    private readonly IStorageFileSystem _fs;
    private readonly string _directory;
    private readonly BitcaskOptions _options;
    private readonly ILogger _logger;
    private readonly List<RecoveryFinding> _findings = [];
    private readonly object _sync = new(); // segments load in parallel

    public StoreRecovery(IStorageFileSystem fs, string directory, BitcaskOptions options, ILogger logger)
    {
        _fs = fs;
        _directory = directory;
        _options = options;
        _logger = logger;
    }

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
        using var analysis = new StoreAnalysis(_fs, _directory);
        var loaded = Array.Empty<Segment?>();
        try
        {
            analysis.ReadDirectory();
            var candidates = analysis.Loaded.ToArray();
            var (expectedKeys, expectedKeyBytes) = EstimateKeys(candidates);
            KeyDir.BeginRecovery(expectedKeys, expectedKeyBytes);
            loaded = new Segment?[candidates.Length];
            // Segments load in parallel: the keydir is thread-safe and newest-sequence-wins does not depend on load order.
            Parallel.For(0, candidates.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
                i => loaded[i] = Load(analysis, candidates[i]));
            _hintScratch.Clear(); // the hints are applied: their scratch arrays go back to the GC now
            analysis.Complete();

            // Decide first: a read-write open that must stop stops here, before any file changed.
            if (!ReadOnly && analysis.FirstFatal(_options.SkipDamagedRecords) is { } fatal)
            {
                if (fatal.Weight == FindingWeight.Unsupported) throw new UnsupportedFormatException(fatal.Path, fatal.Offset, fatal.Message);
                throw new CorruptionException(fatal.Path, fatal.Offset, fatal.Message,
                    "The store was not changed. Run 'bitcask verify' and 'bitcask repair' on the directory, or open it with ReadOnly or SkipDamagedRecords.");
            }
            Report(analysis);
            if (!ReadOnly)
            {
                analysis.Plan.Apply(_fs, _directory, _logger);
            }
        }
        catch (AggregateException e)
        {
            Abandon(loaded);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        catch
        {
            Abandon(loaded);
            throw;
        }

        ulong maxSequence = 0;
        foreach (var segment in loaded)
        {
            Segments.Add(segment!);
            maxSequence = Math.Max(maxSequence, Math.Max(segment!.MaxSequence, segment.Header.BaseSequence));
        }
        // Base sequences of segments that are not loaded count too: sequence numbers never go backwards.
        foreach (var s in analysis.Segments) if (s.Header is { } h) maxSequence = Math.Max(maxSequence, h.BaseSequence);
        KeyDir.EndRecovery();
        foreach (var (id, bytes) in KeyDir.LiveBytesBySegment()) Segments.Find(id)?.AddLive(bytes);
        NextSequence = maxSequence + 1;
        NextSegmentId = analysis.NextSegmentId;
        LastWriteSegmentId = analysis.LastWriteSegmentId;
        Elapsed = clock.Elapsed;
    }

    private void Abandon(Segment?[] loaded)
    {
        foreach (var s in loaded) s?.Retire();
        Segments.RetireAll();
    }

    /// <summary>The analysis's findings as the store reports them, with what this open did about each.</summary>
    private void Report(StoreAnalysis analysis)
    {
        foreach (var name in analysis.TempNames)
        {
            var path = Path.Combine(_directory, name);
            _findings.Add(new RecoveryFinding(path, 0, "leftover temporary file from an interrupted write", ReadOnly ? "ignored (read-only open)" : "removed"));
        }
        foreach (var f in analysis.Findings)
        {
            var action = ReadOnly ? f.ReadOnlyAction : f.OpenAction;
            if (f.Kind == ProblemKind.TornTail) Log.TornTail(_logger, f.Path, f.Offset, f.Length, action, f.Message);
            else if (f.Kind == ProblemKind.BadHint) Log.HintRejected(_logger, f.Path, f.Message);
            else Log.Damaged(_logger, f.Path, f.Offset, f.Message, action);
            _findings.Add(new RecoveryFinding(f.Path, f.Offset, $"{f.Kind.DisplayName()}: {f.Message}", action) { Kind = f.Kind });
        }
    }

    /// <summary>Pre-sizing the keydir avoids rehashing while loading: a hint entry is about 40 bytes for a short key, a
    /// record about 160 bytes; the keydir clamps what it does with the estimate.</summary>
    /// <summary>Keys and key bytes the keydir should expect, from the hints' trailers (entry counts) and sizes (an entry
    /// is at least <see cref="HintFile.EntryHeaderSize"/> bytes besides its key: version 2's, the smaller), else from
    /// segment sizes.</summary>
    private (long Keys, long KeyBytes) EstimateKeys(SegmentFile[] candidates)
    {
        long keys = 0, keyBytes = 0;
        foreach (var c in candidates)
        {
            long perSegment = c.Length / 160, perSegmentKeyBytes = perSegment * 24;
            if (c.HintPath is not null)
            {
                try
                {
                    using var f = _fs.OpenFile(c.HintPath, StorageOpenMode.ReadOnly);
                    perSegment = HintFile.EntryCountHint(f) ?? Math.Min(f.Length, c.Length) / 31;
                    perSegmentKeyBytes = Math.Clamp(f.Length - HintFile.HeaderSize - HintFile.TrailerSize - perSegment * HintFile.EntryHeaderSize, perSegment, perSegment * 24);
                }
                catch (IOException) { }
            }
            keys = Math.Min(keys + perSegment, int.MaxValue);
            keyBytes = Math.Min(keyBytes + perSegmentKeyBytes, long.MaxValue / 2);
        }
        return (keys, keyBytes);
    }

    /// <summary>Loads one segment the analysis keeps: from its hint when whole, else from the records the analysis walks.</summary>
    private Segment Load(StoreAnalysis analysis, SegmentFile c)
    {
        using (var hint = analysis.CheckHint(c))
        {
            if (hint is not null)
            {
                var (file, mapping) = c.Detach();
                var hinted = Segment.Open(c.Header!, file, c.Length, mapping);
                ApplyHint(hinted, hint);
                hinted.HasHint = true;
                lock (_sync) HintedSegments++;
                return hinted;
            }
        }
        var sink = new KeyDirSink(KeyDir, c.Id);
        var verdict = analysis.Walk(c, ref sink);
        var (segmentFile, segmentMapping) = c.Detach();
        // A torn tail is cut by the plan (read-write) or ignored (read-only): either way the store sees only the valid part.
        var segment = Segment.Open(c.Header!, segmentFile, verdict.ValidEnd, segmentMapping);
        segment.MinSequence = verdict.MinSequence;
        segment.MaxSequence = verdict.MaxSequence;
        if (verdict.Damage.Count == 0) lock (_sync) SegmentsWithoutHint.Add(segment);
        return segment;
    }

    /// <summary>Puts every entry the analysis keeps into the keydir.</summary>
    private readonly struct KeyDirSink(KeyDir keyDir, uint segmentId) : ILayoutSink
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Entry(ReadOnlySpan<byte> entry, int offset, int batchOffset) =>
            keyDir.Recover(RecordCodec.Key(entry), new KeyLocation(segmentId, (uint)offset, (uint)entry.Length), RecordCodec.ReadSequence(entry),
                RecordCodec.ReadExpiresAt(entry), RecordCodec.ReadKind(entry) == RecordKind.Tombstone);

        public void Item(in LayoutItem item) { }
    }

    /// <summary>
    /// Applies a validated hint. Inserting keys in file order touches the keydir's stripes at random, one cache miss after
    /// another; so the entries are first grouped by stripe (one pass hashing the keys, a counting sort of entry positions),
    /// then inserted stripe by stripe, a stripe's arrays staying in cache while it fills, and with stripes split between
    /// threads. Temporary memory: 32 bytes per entry of the largest hint, per loading thread, reused from hint to hint and
    /// released when the open ends; nothing per key.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    private void ApplyHint(Segment segment, HintBytes hint)
    {
        var entryCount = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hint.Span[^(HintFile.TrailerSize - 8)..]);
        // Segments load two or more at a time; each load takes scratch arrays from the open's pool and gives them back, so
        // an open allocates (and the OS faults in) them about once per thread instead of once per hint.
        var scratch = _hintScratch.TryTake(out var pooled) ? pooled : new HintScratch();
        try
        {
            ApplyHint(segment, hint, entryCount, scratch.For(entryCount));
        }
        finally
        {
            _hintScratch.Add(scratch);
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentBag<HintScratch> _hintScratch = [];

    /// <summary>The temporary arrays of one <see cref="ApplyHint(Segment, HintBytes)"/>, reused by the next one (every
    /// element below the entry count is written before it is read, so they are neither cleared nor zeroed).</summary>
    private sealed class HintScratch
    {
        public int[] Positions = [], SortedPositions = [];
        public uint[] Offsets = [], SortedOffsets = [];
        public ulong[] Hashes = [], SortedHashes = [];
        public readonly int[] PerStripe = new int[KeyDir.StripeTotal + 1];

        public HintScratch For(int entries)
        {
            if (Positions.Length < entries)
            {
                Positions = GC.AllocateUninitializedArray<int>(entries);
                SortedPositions = GC.AllocateUninitializedArray<int>(entries);
                Offsets = GC.AllocateUninitializedArray<uint>(entries);
                SortedOffsets = GC.AllocateUninitializedArray<uint>(entries);
                Hashes = GC.AllocateUninitializedArray<ulong>(entries);
                SortedHashes = GC.AllocateUninitializedArray<ulong>(entries);
            }
            Array.Clear(PerStripe);
            return this;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    private void ApplyHint(Segment segment, HintBytes hint, int entryCount, HintScratch scratch)
    {
        ReadOnlySpan<byte> Hint() => hint.Span;
        var version = HintFile.VersionOf(hint.Span);
        var positions = scratch.Positions;
        var offsets = scratch.Offsets; // version 2 entries do not store their offset: it follows from the walk
        var hashes = scratch.Hashes;
        var perStripe = scratch.PerStripe;
        ulong min = ulong.MaxValue, max = 0;
        var reader = new HintFile.Reader(Hint()[..^HintFile.TrailerSize], checkEntryCrc: false);
        for (var i = 0; i < entryCount; i++)
        {
            positions[i] = reader.Position;
            reader.Next(out var entry, out var key, out _);
            offsets[i] = entry.Offset;
            hashes[i] = KeyDir.Hash(key);
            perStripe[KeyDir.StripeIndex(hashes[i]) + 1]++;
            min = Math.Min(min, entry.Sequence);
            max = Math.Max(max, entry.Sequence);
        }
        for (var s = 1; s <= KeyDir.StripeTotal; s++) perStripe[s] += perStripe[s - 1]; // perStripe[s] = first slot of stripe s
        // Scatter (position, hash) pairs into stripe order, so the insert loop reads both arrays sequentially.
        var sortedPositions = scratch.SortedPositions;
        var sortedOffsets = scratch.SortedOffsets;
        var sortedHashes = scratch.SortedHashes;
        var next = perStripe[..KeyDir.StripeTotal];
        for (var i = 0; i < entryCount; i++)
        {
            var slot = next[KeyDir.StripeIndex(hashes[i])]++;
            sortedPositions[slot] = positions[i];
            sortedOffsets[slot] = offsets[i];
            sortedHashes[slot] = hashes[i];
        }

        var parts = entryCount < 100_000 ? 1 : Math.Max(1, Environment.ProcessorCount);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            for (var stripe = KeyDir.StripeTotal * part / parts; stripe < KeyDir.StripeTotal * (part + 1) / parts; stripe++)
                InsertHintEntries(segment.Id, Hint(), version, stripe, sortedPositions, sortedOffsets, sortedHashes, perStripe[stripe], perStripe[stripe + 1]);
        });
        segment.MinSequence = min == ulong.MaxValue ? 0 : min;
        segment.MaxSequence = max;
    }

    /// <summary>Inserts the entries at <c>positions[from..to)</c>, all of keydir stripe <paramref name="stripe"/>, under one
    /// acquisition of its lock, prefetching each hint entry a few iterations ahead (they sit at random places in the hint).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    private void InsertHintEntries(uint segmentId, ReadOnlySpan<byte> hint, ushort version, int stripe, int[] positions, uint[] offsets, ulong[] hashes, int from, int to)
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
            HintFile.Reader.ReadValidated(hint, version, positions[j], out var kind, out var length, out var sequence, out var expiresAt, out var key);
            keyDir.Recover(key, hashes[j], new KeyLocation(segmentId, offsets[j], length), sequence, expiresAt, kind == RecordKind.Tombstone);
        }
    }

}
