using System.Buffers;
using System.Runtime.InteropServices;
using Bitcask.Analysis;
using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask.Inspection;

/// <summary>The newest record of a key in one segment, or (in the store-wide map) in the whole store.</summary>
internal struct KeyState
{
    public uint SegmentId;
    public uint Offset;
    public uint Length;
    public ulong Sequence;
    public long ExpiresAt;
    public byte Kind;
}

/// <summary>What the walk of one segment left for verify, dump and repair: its layout and its entries by offset.</summary>
internal sealed class SegmentContents
{
    public List<LayoutItem> Layout { get; } = [];
    /// <summary>Every kept put/tombstone by its offset (what a hint entry must match), with its key and enclosing batch.</summary>
    public Dictionary<uint, (byte[] Key, KeyState State, int BatchOffset)> ByOffset { get; } = [];
    public Dictionary<byte[], KeyState> Newest { get; } = new(ByteArrayComparer.Instance);
}

/// <summary>
/// A store read in full for verify, dump and repair: the one <see cref="StoreAnalysis"/> (the same judge open uses), with
/// every loaded segment walked (a whole hint only proves the segment durable; its bytes are still read) and every hint
/// file compared with the records it describes. Never changes a byte.
/// </summary>
internal sealed class InspectedStore : IDisposable
{
    private readonly InspectOptions _options;
    private readonly List<StoreProblem> _problems = [];
    private long _bytesDone, _bytesTotal;

    public InspectedStore(string directory, InspectOptions options, IStorageFileSystem? fs = null)
    {
        _options = options;
        FileSystem = fs ?? OsFileSystem.Instance;
        Directory = FileSystem is OsFileSystem ? StoreInspector.CheckStoreDirectory(directory) : directory;
        Analysis = new StoreAnalysis(FileSystem, Directory);
    }

    public string Directory { get; }
    public IStorageFileSystem FileSystem { get; }
    public StoreAnalysis Analysis { get; }
    public Dictionary<uint, SegmentContents> Contents { get; } = [];
    public Dictionary<byte[], KeyState> Keys { get; } = new(ByteArrayComparer.Instance);
    public IReadOnlyList<StoreProblem> Problems => _problems;
    public long Records, Batches, Tombstones, Bytes;

    public void Run(bool checkHints = true)
    {
        Analysis.ReadDirectory();
        _bytesTotal = Analysis.Segments.Sum(s => s.Length) + (checkHints ? Analysis.HintNames.Sum(h => SafeLength(Path.Combine(Directory, h))) : 0);
        foreach (var s in Analysis.Segments)
        {
            if (s.Loaded)
            {
                var hint = Analysis.CheckHint(s); // a whole hint proves the segment durable, exactly as on open
                try
                {
                    var sink = new Collector(this, s);
                    Analysis.Walk(s, ref sink);
                    if (checkHints && s.HintPath is not null) CompareHint(s, hint);
                }
                finally
                {
                    hint?.Dispose();
                }
            }
            Advance(s.Length);
        }
        Analysis.Complete();
        foreach (var f in Analysis.Findings)
        {
            if (f.Kind == ProblemKind.BadHint) continue; // reported in detail by CompareHint
            if (f.Kind == ProblemKind.OrphanHint && !checkHints) continue;
            _problems.Add(new StoreProblem(f.FileName, f.Offset, f.Kind, f.Message) { Length = f.Length });
        }
        _problems.Sort((a, b) => string.CompareOrdinal(a.File, b.File) is var c && c != 0 ? c : a.Offset.CompareTo(b.Offset));
    }

    private long SafeLength(string path)
    {
        try
        {
            using var f = FileSystem.OpenFile(path, StorageOpenMode.ReadOnly);
            return f.Length;
        }
        catch (IOException) { return 0; }
    }

    private void Advance(long bytes)
    {
        _bytesDone += bytes;
        Bytes += bytes;
        _options.Progress?.Invoke(_bytesDone, _bytesTotal);
    }

    private void Problem(string file, long offset, ProblemKind kind, string message, long length = 0) =>
        _problems.Add(new StoreProblem(file, offset, kind, message) { Length = length });

    /// <summary>Collects the layout and entries of one segment, and checks that LZ4 values decode.</summary>
    private struct Collector(InspectedStore owner, SegmentFile segment) : ILayoutSink
    {
        private readonly SegmentContents _contents = owner.Contents[segment.Id] = new SegmentContents();
        private byte[]? _scratch;

        public void Item(in LayoutItem item)
        {
            _contents.Layout.Add(item);
            if (item.Kind == RangeKind.Record && RecordCodec.ReadKind(segment.Data[item.Offset..]) == RecordKind.Batch) owner.Batches++;
        }

        public void Entry(ReadOnlySpan<byte> entry, int offset, int batchOffset)
        {
            owner.Records++;
            var kind = RecordCodec.ReadKind(entry);
            if (kind == RecordKind.Tombstone) owner.Tombstones++;
            else if ((RecordCodec.ReadFlags(entry) & RecordFlags.Lz4) != 0 && !Decodes(entry, ref _scratch))
                owner.Problem(segment.Name, offset, ProblemKind.UndecodableValue, "the CRC matches but the LZ4 value does not decode to its recorded length", entry.Length);
            var state = new KeyState
            {
                SegmentId = segment.Id, Offset = (uint)offset, Length = (uint)entry.Length, Sequence = RecordCodec.ReadSequence(entry),
                ExpiresAt = RecordCodec.ReadExpiresAt(entry), Kind = (byte)kind,
            };
            var key = RecordCodec.Key(entry).ToArray();
            _contents.ByOffset[(uint)offset] = (key, state, batchOffset);
            ref var local = ref CollectionsMarshal.GetValueRefOrAddDefault(_contents.Newest, key, out var existsLocal);
            if (!existsLocal || Wins(state, local)) local = state;
            ref var global = ref CollectionsMarshal.GetValueRefOrAddDefault(owner.Keys, key, out var exists);
            if (!exists || Wins(state, global)) global = state;
        }
    }

    /// <summary>The keydir's rule: the higher sequence wins; at an equal sequence a tombstone wins.</summary>
    private static bool Wins(in KeyState candidate, in KeyState current) =>
        candidate.Sequence > current.Sequence || (candidate.Sequence == current.Sequence && candidate.Kind == (byte)RecordKind.Tombstone);

    private static bool Decodes(ReadOnlySpan<byte> entry, ref byte[]? scratch)
    {
        var raw = RecordCodec.RawValueLength(entry);
        if (raw < 0 || raw > Array.MaxLength) return false;
        if (scratch is null || scratch.Length < raw)
        {
            if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
            scratch = ArrayPool<byte>.Shared.Rent(Math.Max(raw, 1));
        }
        try
        {
            return RecordCodec.TryDecodeValue(entry, scratch.AsSpan(0, raw));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException)
        {
            return false;
        }
    }

    /// <summary>Live unexpired keys (what a read-only open serves).</summary>
    public long LiveKeyCount()
    {
        var now = _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        return Keys.Values.LongCount(k => IsLive(k, now));
    }

    /// <summary>Live at <paramref name="now"/>: a put whose expiry, if any, is after now (an expiry equal to now has passed).</summary>
    public static bool IsLive(in KeyState state, long now) =>
        state.Kind == (byte)RecordKind.Put && (state.ExpiresAt == 0 || state.ExpiresAt > now);

    /// <summary>Every way a hint file fails to describe its segment exactly.</summary>
    private void CompareHint(SegmentFile segment, HintBytes? whole)
    {
        var name = Path.GetFileName(segment.HintPath!);
        byte[] data;
        if (whole is not null) data = whole.Span.ToArray();
        else
        {
            try
            {
                using var bytes = HintBytes.Read(FileSystem, segment.HintPath!, long.MaxValue);
                data = bytes!.Span.ToArray();
            }
            catch (IOException e)
            {
                Problem(name, 0, ProblemKind.BadHint, $"cannot read the hint file: {e.Message}");
                return;
            }
        }
        Advance(data.Length);
        var parsed = HintImage.Parse(data, _options.MaxProblemsPerFile);
        foreach (var (offset, problem) in parsed.Problems) Problem(name, offset, ProblemKind.BadHint, problem);
        if (parsed.Problems.Count > 0) return;
        if (parsed.SegmentId != segment.Id)
            Problem(name, 8, ProblemKind.HintMismatch, $"hint names segment {parsed.SegmentId} but belongs to segment {segment.Id}");
        if (parsed.SegmentLength != segment.Length)
            Problem(name, 16, ProblemKind.HintMismatch, $"hint describes a segment of {parsed.SegmentLength} bytes but the segment has {segment.Length} (a hint of an older file)");
        if (parsed.SegmentId != segment.Id || parsed.SegmentLength != segment.Length) return;
        if (segment.HintProblem is { } rejected) Problem(name, 0, ProblemKind.HintMismatch, $"open would reject this hint: {rejected}");
        var contents = Contents[segment.Id];
        var seenOffsets = new HashSet<uint>();
        var listed = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var mismatches = 0;
        foreach (var (offset, entry) in parsed.Entries)
        {
            string? why = null;
            if (!seenOffsets.Add(entry.Offset)) why = $"offset {entry.Offset} is listed twice";
            else if (!contents.ByOffset.TryGetValue(entry.Offset, out var actual))
                why = contents.Layout.Any(i => !i.IsKept && entry.Offset >= i.Offset && entry.Offset < i.End)
                    ? $"points at offset {entry.Offset}, inside damaged bytes of the segment"
                    : $"points at offset {entry.Offset}, where no valid record starts";
            else if (!actual.Key.AsSpan().SequenceEqual(entry.Key)) why = $"at offset {entry.Offset} names another key than the record there";
            else if (actual.State.Length != entry.Length) why = $"says the record at {entry.Offset} is {entry.Length} bytes; it is {actual.State.Length}";
            else if (actual.State.Sequence != entry.Sequence) why = $"sequence {entry.Sequence} differs from the record's {actual.State.Sequence}";
            else if (actual.State.ExpiresAt != entry.ExpiresAt) why = $"expiry {entry.ExpiresAt} differs from the record's {actual.State.ExpiresAt}";
            else if (actual.State.Kind != entry.Kind) why = $"kind {entry.Kind} differs from the record's {actual.State.Kind}";
            if (why is null)
            {
                if (contents.Newest.TryGetValue(entry.Key, out var newest) && newest.Offset == entry.Offset) listed.Add(entry.Key);
                continue;
            }
            if (++mismatches <= _options.MaxProblemsPerFile) Problem(name, offset, ProblemKind.HintMismatch, "hint entry " + why);
        }
        var missing = contents.Newest.Keys.Count(k => !listed.Contains(k));
        if (missing > 0) Problem(name, data.Length - HintFile.TrailerSize, ProblemKind.HintMismatch, $"the newest record of {missing} key(s) of the segment is not listed in the hint");
        if (mismatches > _options.MaxProblemsPerFile) Problem(name, 0, ProblemKind.HintMismatch, $"{mismatches - _options.MaxProblemsPerFile} more mismatching hint entries not listed");
    }

    public VerifyReport ToReport() => new()
    {
        Directory = Directory,
        Segments = Analysis.Segments.Count,
        HintFiles = Analysis.HintNames.Count,
        Records = Records,
        Batches = Batches,
        Tombstones = Tombstones,
        LiveKeys = LiveKeyCount(),
        Bytes = Bytes,
        Problems = _problems.ToArray(),
        Notes = Analysis.TempNames.Select(t => $"{t}: leftover temporary file (a compaction or hint write in progress, or interrupted); a read-write open removes it").ToArray(),
    };

    public void Dispose() => Analysis.Dispose();
}
