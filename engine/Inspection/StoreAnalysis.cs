using System.Buffers;
using System.Runtime.InteropServices;
using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask.Inspection;

internal enum LayoutKind { Record, Damage, TornTail }

/// <summary>A stretch of a segment file: a valid record, a damaged range, or a torn tail.</summary>
internal readonly record struct LayoutItem(LayoutKind Kind, int Offset, int Length, string? Error);

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

/// <summary>One segment file opened for reading: header, mapped bytes and (after analysis) its layout.</summary>
internal sealed class SegmentFile : IDisposable
{
    private IStorageFile? _file;
    private FileMapping? _mapping;
    private byte[]? _bytes;

    public SegmentFile(uint id, string path)
    {
        Id = id;
        Path = path;
        Name = System.IO.Path.GetFileName(path);
    }

    public uint Id { get; }
    public string Path { get; }
    public string Name { get; }
    public long Length { get; private set; }
    public SegmentHeader? Header { get; set; }
    /// <summary>Why the header is unusable (null when it is fine). The segment is then not loaded.</summary>
    public string? HeaderProblemKind { get; set; }
    public string? HeaderProblem { get; set; }
    public long HeaderProblemOffset { get; set; }
    /// <summary>Excluded from loading by compaction bookkeeping (stale input / unfinished output), as open does.</summary>
    public string? ExcludedKind { get; set; }
    public bool MayHaveTornTail { get; set; }
    public List<LayoutItem> Layout { get; } = [];
    public Dictionary<byte[], KeyState> Newest { get; } = new(ByteArrayComparer.Instance);
    /// <summary>Every valid put/tombstone by its offset (what a hint entry must match), with its key.</summary>
    public Dictionary<uint, (byte[] Key, KeyState State)> ByOffset { get; } = [];
    public bool Loaded => Header is not null && HeaderProblemKind is null && ExcludedKind is null;

    public void Open(IStorageFileSystem fs)
    {
        _file = fs.OpenFile(Path, StorageOpenMode.ReadOnly);
        Length = _file.Length;
        if (Length > int.MaxValue)
        {
            Length = int.MaxValue; // a segment is at most 2 GiB - 1 bytes; bytes past that are reported as damage
        }
        _mapping = _file.Map(Length);
        if (_mapping is null)
        {
            _bytes = new byte[Length];
            var n = _file.Read(0, _bytes);
            if (n < Length) { Length = n; }
        }
    }

    public ReadOnlySpan<byte> Data =>
        Length == 0 ? default : _mapping is not null ? _mapping.GetSpan(0, (int)Length) : _bytes.AsSpan(0, (int)Length);

    public void Dispose()
    {
        _mapping?.Dispose();
        _mapping = null;
        _file?.Dispose();
        _file = null;
    }
}

internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>
{
    public static readonly ByteArrayComparer Instance = new();
    public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);
    public int GetHashCode(byte[] obj) => (int)System.IO.Hashing.XxHash3.HashToUInt64(obj);
}

/// <summary>
/// Reads a whole store directory the way open does (FORMAT.md §5), but never changes a byte and never stops at the
/// first problem: every header, record, CRC, length and hint file is checked, and every problem is listed.
/// </summary>
internal sealed class StoreAnalysis : IDisposable
{
    private readonly IStorageFileSystem _fs;
    private readonly InspectOptions _options;
    private readonly RecordLimits _limits;
    private readonly List<StoreProblem> _problems = [];
    private readonly List<string> _notes = [];
    private long _bytesDone, _bytesTotal;

    public StoreAnalysis(string directory, InspectOptions options, IStorageFileSystem? fs = null)
    {
        _fs = fs ?? OsFileSystem.Instance;
        _options = options;
        _limits = new RecordLimits(options.MaxKeyBytes, options.MaxValueBytes, options.MaxSegmentBytes);
        Directory = StoreInspector.CheckStoreDirectory(directory);
    }

    public string Directory { get; }
    public int MaxValueBytes => _options.MaxValueBytes;
    public List<SegmentFile> Segments { get; } = [];
    public Dictionary<byte[], KeyState> Keys { get; } = new(ByteArrayComparer.Instance);
    public List<string> HintNames { get; } = [];
    public List<string> TempNames { get; } = [];
    public IReadOnlyList<StoreProblem> Problems => _problems;
    public long Records, Batches, Tombstones, Bytes;
    public IReadOnlyList<(uint First, uint Last)> Covered { get; private set; } = [];
    /// <summary>Previous-write-segment ids that are missing, with the segment that names them.</summary>
    public List<(uint Missing, SegmentFile Follower)> Gaps { get; } = [];

    public void Run(bool checkHints = true)
    {
        var names = _fs.ListFiles(Directory).Order(StringComparer.Ordinal).ToList();
        var ids = new List<uint>();
        foreach (var name in names)
        {
            if (name.EndsWith(StoreFiles.TempExtension, StringComparison.Ordinal)) TempNames.Add(name);
            else if (StoreFiles.TryParseId(name, StoreFiles.SegmentExtension, out var id)) ids.Add(id);
            else if (StoreFiles.TryParseId(name, StoreFiles.HintExtension, out _)) HintNames.Add(name);
        }
        foreach (var t in TempNames) _notes.Add($"{t}: leftover temporary file (a compaction or hint write in progress, or interrupted); a read-write open removes it");
        ids.Sort();
        foreach (var id in ids)
        {
            var file = new SegmentFile(id, Path.Combine(Directory, StoreFiles.SegmentName(id)));
            Segments.Add(file);
            file.Open(_fs);
            _bytesTotal += file.Length;
        }
        foreach (var h in HintNames) _bytesTotal += SafeLength(Path.Combine(Directory, h));

        ReadHeaders();
        SettleCompactions();
        CheckGaps();
        var newestWrite = Segments.Where(s => s.Loaded && s.Header!.Kind == SegmentKind.Write).Select(s => s.Id).DefaultIfEmpty(0u).Max();
        foreach (var s in Segments)
        {
            if (s.Loaded)
            {
                s.MayHaveTornTail = s.Id == newestWrite;
                Scan(s);
            }
            Advance(s.Length);
        }
        if (checkHints) CheckHints();
        _problems.Sort((a, b) => string.CompareOrdinal(a.File, b.File) is var c && c != 0 ? c : a.Offset.CompareTo(b.Offset));
    }

    private long SafeLength(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (IOException) { return 0; }
    }

    private void Advance(long bytes)
    {
        _bytesDone += bytes;
        Bytes += bytes;
        _options.Progress?.Invoke(_bytesDone, _bytesTotal);
    }

    public void Problem(string file, long offset, string kind, string message, long length = 0) =>
        _problems.Add(new StoreProblem(file, offset, kind, message) { Length = length });

    private void ReadHeaders()
    {
        var highest = Segments.Count == 0 ? 0u : Segments[^1].Id;
        foreach (var s in Segments)
        {
            var data = s.Data;
            string? error = null;
            var unsupported = false;
            SegmentHeader? header = null;
            if (data.Length >= SegmentHeader.FixedSize)
            {
                var total = SegmentHeader.TotalSize(data);
                header = total < 0 || total > data.Length
                    ? null
                    : SegmentHeader.TryDecode(data[..total], out error, out unsupported);
                if (total < 0 || total > data.Length) error = "segment header's superseded-range count runs past the end of the file";
            }
            else
            {
                header = SegmentHeader.TryDecode(data, out error, out unsupported);
                error ??= "segment header is cut short";
            }
            if (header is not null && header.SegmentId != s.Id)
            {
                header = null;
                error = $"segment header names id {System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data[8..])} but the file is named for id {s.Id}";
            }
            if (header is not null)
            {
                s.Header = header;
                continue;
            }
            error ??= "invalid segment header";
            if (unsupported)
            {
                (s.HeaderProblemKind, s.HeaderProblem, s.HeaderProblemOffset) = (ProblemKinds.UnsupportedVersion, error, 4);
            }
            else if (s.Id == highest && s.Length <= SegmentHeader.FixedSize)
            {
                (s.HeaderProblemKind, s.HeaderProblem, s.HeaderProblemOffset) = (ProblemKinds.IncompleteSegment,
                    $"{s.Length}-byte segment with an invalid header ({error}): an interrupted segment creation; it holds no records", 0);
            }
            else
            {
                (s.HeaderProblemKind, s.HeaderProblem, s.HeaderProblemOffset) = (ProblemKinds.BadSegmentHeader, $"{error}; the whole segment ({s.Length} bytes) is unreadable", 0);
            }
            Problem(s.Name, s.HeaderProblemOffset, s.HeaderProblemKind!, s.HeaderProblem!, s.Length);
        }
    }

    private void SettleCompactions()
    {
        var valid = Segments.Where(s => s.Header is not null && s.HeaderProblemKind is null).ToList();
        var settlement = CompactionRuns.Settle(valid.Select(s => s.Header!));
        foreach (var s in valid)
        {
            if (settlement.Interrupted.TryGetValue(s.Id, out var why))
            {
                s.ExcludedKind = ProblemKinds.InterruptedCompaction;
                Problem(s.Name, 0, ProblemKinds.InterruptedCompaction, why + "; open removes it and keeps the inputs");
            }
            else if (CompactionRuns.IsCovered(settlement.Covered, s.Id))
            {
                s.ExcludedKind = ProblemKinds.StaleSegment;
                Problem(s.Name, 0, ProblemKinds.StaleSegment, "input of a finished compaction that is still present (its removal was interrupted); open removes it");
            }
        }
        Covered = settlement.Covered;
    }

    private void CheckGaps()
    {
        var present = Segments.Where(s => s.Loaded).Select(s => s.Id).ToHashSet();
        foreach (var s in Segments.Where(s => s.Loaded && s.Header!.Kind == SegmentKind.Write))
        {
            var previous = s.Header!.PreviousWriteSegmentId;
            if (previous == 0 || present.Contains(previous) || Covered.Any(r => previous >= r.First && previous <= r.Last)) continue;
            Gaps.Add((previous, s));
            var why = Segments.Any(x => x.Id == previous) ? " (it is present but unreadable)" : "";
            Problem(StoreFiles.SegmentName(previous), 0, ProblemKinds.MissingSegment,
                $"segment {previous} is missing{why}: segment {s.Id} names it as the previous write segment; its records are lost");
        }
    }

    private void Scan(SegmentFile s)
    {
        var data = s.Data;
        var scanner = new SegmentScanner(data, s.Header!.Size, _limits);
        byte[]? scratch = null;
        try
        {
            while (true)
            {
                if (scanner.Next(out var offset, out var record))
                {
                    s.Layout.Add(new LayoutItem(LayoutKind.Record, offset, record.Length, null));
                    var isBatch = RecordCodec.ReadKind(record) == RecordKind.Batch;
                    if (isBatch) Batches++;
                    var entries = new RecordEntries(record, offset);
                    while (entries.Next(out var entryOffset, out var entry))
                    {
                        Records++;
                        var kind = RecordCodec.ReadKind(entry);
                        if (kind == RecordKind.Tombstone) Tombstones++;
                        else if ((RecordCodec.ReadFlags(entry) & RecordFlags.Lz4) != 0 && !Decodes(entry, ref scratch))
                            Problem(s.Name, entryOffset, ProblemKinds.UndecodableValue, "the CRC matches but the LZ4 value does not decode to its recorded length", entry.Length);
                        Note(s, entry, entryOffset);
                    }
                    continue;
                }
                if (scanner.Error is null) break;
                var bad = scanner.Position;
                var next = SegmentScanner.FindNextValid(data, bad + 1, _limits);
                if (s.MayHaveTornTail && (next < 0 || IsUnsyncedTail(data, bad, next)))
                {
                    var bytes = data.Length - bad;
                    s.Layout.Add(new LayoutItem(LayoutKind.TornTail, bad, bytes, scanner.Error));
                    var what = next < 0
                        ? $"{bytes} bytes at the end of the newest segment are not a whole record ({scanner.Error})"
                        : $"{bytes} bytes at the end of the newest segment start with an invalid record ({scanner.Error}) and every valid record after it was written before offset {bad} was fsynced (an unsynced tail)";
                    Problem(s.Name, bad, ProblemKinds.TornTail, what + "; a read-write open or repair truncates them", bytes);
                    break;
                }
                var end = next < 0 ? data.Length : next;
                s.Layout.Add(new LayoutItem(LayoutKind.Damage, bad, end - bad, scanner.Error));
                Problem(s.Name, bad, ProblemKinds.DamagedRecord,
                    $"{scanner.Error}; {end - bad} bytes up to {(next < 0 ? "the end of the file" : $"the next valid record at {next}")} are unreadable", end - bad);
                scanner.SkipTo(bad);
            }
        }
        finally
        {
            if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>FORMAT.md §5 step 6: damage in the newest write segment is an unsynced tail when every valid record after
    /// it carries a durable length at most <paramref name="bad"/> (it was written before the damaged bytes were fsynced).</summary>
    private bool IsUnsyncedTail(ReadOnlySpan<byte> data, int bad, int next)
    {
        while (next >= 0)
        {
            if (RecordCodec.ReadDurableLength(data[next..]) > (uint)bad) return false;
            var check = RecordCodec.CheckHeader(data[next..], data.Length - next, _limits);
            next = SegmentScanner.FindNextValid(data, next + Math.Max(1, check.IsValid ? check.Length : 1), _limits);
        }
        return true;
    }

    private static bool Decodes(ReadOnlySpan<byte> entry, ref byte[]? scratch)
    {
        var raw = RecordCodec.RawValueLength(entry);
        if (raw < 0) return false;
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

    private void Note(SegmentFile s, ReadOnlySpan<byte> entry, int offset)
    {
        var state = new KeyState
        {
            SegmentId = s.Id,
            Offset = (uint)offset,
            Length = (uint)entry.Length,
            Sequence = RecordCodec.ReadSequence(entry),
            ExpiresAt = RecordCodec.ReadExpiresAt(entry),
            Kind = (byte)RecordCodec.ReadKind(entry),
        };
        var key = RecordCodec.Key(entry).ToArray();
        s.ByOffset[(uint)offset] = (key, state);
        ref var local = ref CollectionsMarshal.GetValueRefOrAddDefault(s.Newest, key, out var existsLocal);
        if (!existsLocal || state.Sequence >= local.Sequence) local = state;
        ref var global = ref CollectionsMarshal.GetValueRefOrAddDefault(Keys, key, out var exists);
        if (!exists || state.Sequence >= global.Sequence) global = state;
    }

    /// <summary>Live unexpired keys (after every segment is scanned).</summary>
    public long LiveKeyCount()
    {
        var now = _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        return Keys.Values.LongCount(k => k.Kind == (byte)RecordKind.Put && (k.ExpiresAt == 0 || k.ExpiresAt > now));
    }

    public bool IsLive(in KeyState state, long now) =>
        state.Kind == (byte)RecordKind.Put && (state.ExpiresAt == 0 || state.ExpiresAt > now);

    private void CheckHints()
    {
        var byId = Segments.ToDictionary(s => s.Id);
        foreach (var name in HintNames)
        {
            StoreFiles.TryParseId(name, StoreFiles.HintExtension, out var id);
            var path = Path.Combine(Directory, name);
            byte[] data;
            try
            {
                data = File.ReadAllBytes(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Problem(name, 0, ProblemKinds.BadHint, $"cannot read the hint file: {e.Message}");
                continue;
            }
            Advance(data.Length);
            if (!byId.TryGetValue(id, out var segment))
            {
                Problem(name, 0, ProblemKinds.OrphanHint, $"hint file for segment {id}, which is not present; open ignores it");
                continue;
            }
            foreach (var (offset, problem, kind) in CheckHint(segment, data, _options.MaxProblemsPerFile))
                Problem(name, offset, kind, problem);
        }
    }

    /// <summary>Every way a hint file's bytes fail to describe <paramref name="segment"/> exactly.</summary>
    public static List<(long Offset, string Problem, string Kind)> CheckHint(SegmentFile segment, ReadOnlySpan<byte> data, int maxProblems)
    {
        var result = new List<(long, string, string)>();
        var parsed = HintImage.Parse(data, maxProblems);
        foreach (var (offset, problem) in parsed.Problems) result.Add((offset, problem, ProblemKinds.BadHint));
        if (result.Count > 0) return result;
        if (parsed.SegmentId != segment.Id)
            result.Add((8, $"hint names segment {parsed.SegmentId} but belongs to segment {segment.Id}", ProblemKinds.HintMismatch));
        if (parsed.SegmentLength != segment.Length)
            result.Add((16, $"hint describes a segment of {parsed.SegmentLength} bytes but the segment has {segment.Length} (a hint of an older file)", ProblemKinds.HintMismatch));
        if (!segment.Loaded)
        {
            result.Add((0, "hint of a segment that is not loaded (unreadable header or compaction leftover)", ProblemKinds.HintMismatch));
            return result;
        }
        if (result.Count > 0) return result;
        // The engine's own acceptance test, so verify never calls a hint whole that open would reject.
        if (HintFile.Validate(data, segment.Id, segment.Length, segment.Header!.Crc, segment.Header!.Size, ushort.MaxValue, out _) is { } rejected)
            result.Add((0, $"open would reject this hint: {rejected}", ProblemKinds.HintMismatch));
        // Every entry must describe exactly the valid record at its offset; every key's newest record must be listed.
        var seenOffsets = new HashSet<uint>();
        var listed = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var mismatches = 0;
        foreach (var (offset, entry) in parsed.Entries)
        {
            string? why = null;
            if (!seenOffsets.Add(entry.Offset)) why = $"offset {entry.Offset} is listed twice";
            else if (!segment.ByOffset.TryGetValue(entry.Offset, out var actual))
                why = segment.Layout.Any(i => i.Kind != LayoutKind.Record && entry.Offset >= i.Offset && entry.Offset < i.Offset + i.Length)
                    ? $"points at offset {entry.Offset}, inside damaged bytes of the segment"
                    : $"points at offset {entry.Offset}, where no valid record starts";
            else if (!actual.Key.AsSpan().SequenceEqual(entry.Key)) why = $"at offset {entry.Offset} names another key than the record there";
            else if (actual.State.Length != entry.Length) why = $"says the record at {entry.Offset} is {entry.Length} bytes; it is {actual.State.Length}";
            else if (actual.State.Sequence != entry.Sequence) why = $"sequence {entry.Sequence} differs from the record's {actual.State.Sequence}";
            else if (actual.State.ExpiresAt != entry.ExpiresAt) why = $"expiry {entry.ExpiresAt} differs from the record's {actual.State.ExpiresAt}";
            else if (actual.State.Kind != entry.Kind) why = $"kind {entry.Kind} differs from the record's {actual.State.Kind}";
            if (why is null)
            {
                if (segment.Newest.TryGetValue(entry.Key, out var newest) && newest.Offset == entry.Offset) listed.Add(entry.Key);
                continue;
            }
            if (++mismatches <= maxProblems) result.Add((offset, "hint entry " + why, ProblemKinds.HintMismatch));
        }
        var missing = segment.Newest.Keys.Count(k => !listed.Contains(k));
        if (missing > 0) result.Add((data.Length - Format.HintFile.TrailerSize, $"the newest record of {missing} key(s) of the segment is not listed in the hint", ProblemKinds.HintMismatch));
        if (mismatches > maxProblems) result.Add((0, $"{mismatches - maxProblems} more mismatching hint entries not listed", ProblemKinds.HintMismatch));
        return result;
    }

    public VerifyReport ToReport() => new()
    {
        Directory = Directory,
        Segments = Segments.Count,
        HintFiles = HintNames.Count,
        Records = Records,
        Batches = Batches,
        Tombstones = Tombstones,
        Keys = LiveKeyCount(),
        Bytes = Bytes,
        Problems = _problems.ToArray(),
        Notes = _notes.ToArray(),
    };

    public void Dispose()
    {
        foreach (var s in Segments) s.Dispose();
    }
}
