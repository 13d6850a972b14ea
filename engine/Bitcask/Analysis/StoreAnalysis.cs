using System.Buffers.Binary;
using Bitcask.Format;
using Bitcask.Inspection;
using Bitcask.Storage;

namespace Bitcask.Analysis;

/// <summary>
/// The one analysis of a store directory (FORMAT.md §5), shared by open (read-write and read-only), verify, dump and
/// repair. It reads every segment header, settles what interrupted compactions left, finds missing segments and stray
/// hint files, chooses the newest write segment, checks hint files and walks segments through <see cref="SegmentLayout"/>;
/// it records every finding and the <see cref="Plan"/> of file changes a read-write open would make. It changes nothing.
/// <para>Use: <see cref="ReadDirectory"/> once, then for each segment with <see cref="SegmentFile.Loaded"/>
/// <see cref="CheckHint"/> and/or <see cref="Walk"/> (safe to call for different segments on several threads), then
/// <see cref="Complete"/>.</para>
/// </summary>
internal sealed class StoreAnalysis : IDisposable
{
    private readonly IStorageFileSystem _fs;
    private readonly List<Finding> _findings = [];
    private HashSet<uint> _segmentIds = [];

    public StoreAnalysis(IStorageFileSystem fs, string directory)
    {
        _fs = fs;
        Directory = directory;
    }

    public string Directory { get; }
    /// <summary>Every <c>*.seg</c> file, by id.</summary>
    public List<SegmentFile> Segments { get; } = [];
    /// <summary>Names of hint files present.</summary>
    public List<string> HintNames { get; } = [];
    /// <summary>Names of <c>*.tmp</c> files present (a read-write open deletes them).</summary>
    public List<string> TempNames { get; } = [];
    /// <summary>Id ranges that finished compactions replaced.</summary>
    public IReadOnlyList<(uint First, uint Last)> Covered { get; private set; } = [];
    /// <summary>Every problem found, sorted by file and offset after <see cref="Complete"/>.</summary>
    public IReadOnlyList<Finding> Findings => _findings;
    /// <summary>The file changes a read-write open makes once it knows it will succeed.</summary>
    public RecoveryPlan Plan { get; } = new();
    /// <summary>One above every segment or hint id seen and every id a finished compaction replaced.</summary>
    public uint NextSegmentId { get; private set; } = 1;
    /// <summary>The highest loaded write segment: the next write segment names it as its predecessor.</summary>
    public uint LastWriteSegmentId { get; private set; }
    public IEnumerable<SegmentFile> Loaded => Segments.Where(s => s.Loaded);

    private void Add(Finding finding)
    {
        lock (_findings) _findings.Add(finding);
    }

    private string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>Lists the directory, opens and maps every segment, and judges everything that does not need a segment's
    /// records: headers, compaction runs, missing segments, orphan hints, temporary files, the newest write segment.</summary>
    public void ReadDirectory()
    {
        var names = _fs.ListFiles(Directory).Order(StringComparer.Ordinal).ToList();
        var hintIds = new HashSet<uint>();
        foreach (var name in names)
        {
            if (name.EndsWith(StoreFiles.TempExtension, StringComparison.Ordinal)) TempNames.Add(name);
            else if (StoreFiles.TryParseId(name, StoreFiles.SegmentExtension, out var id)) Segments.Add(new SegmentFile(id, PathOf(name)));
            else if (StoreFiles.TryParseId(name, StoreFiles.HintExtension, out var hintId))
            {
                HintNames.Add(name);
                hintIds.Add(hintId);
            }
        }
        Segments.Sort((a, b) => a.Id.CompareTo(b.Id));
        _segmentIds = Segments.Select(s => s.Id).ToHashSet();
        foreach (var t in TempNames) Plan.Add(new PlanStep.DeleteFile(PathOf(t), "temporary file from an interrupted hint or compaction write"));
        foreach (var s in Segments)
        {
            s.Open(_fs);
            if (hintIds.Contains(s.Id)) s.HintPath = PathOf(StoreFiles.HintName(s.Id));
            NextSegmentId = Math.Max(NextSegmentId, s.Id + 1);
        }
        foreach (var id in hintIds) NextSegmentId = Math.Max(NextSegmentId, id + 1);

        ReadHeaders();
        SettleCompactions();
        FindMissingSegments();
        SettleOrphanHints(hintIds);
        ChooseNewestWriteSegment();
    }

    private void ReadHeaders()
    {
        var highest = Segments.Count == 0 ? 0u : Segments[^1].Id;
        foreach (var s in Segments)
        {
            var data = s.Data;
            var header = SegmentHeader.TryDecode(data, out var error, out var unsupported); // reads only the header's own bytes
            if (header is not null && header.SegmentId != s.Id)
            {
                error = $"segment header names id {BinaryPrimitives.ReadUInt32LittleEndian(data[8..])} but the file is named for id {s.Id}";
                header = null;
            }
            if (header is not null)
            {
                s.Header = header;
                continue;
            }
            s.HeaderProblem = error ?? "invalid segment header";
            if (unsupported)
            {
                s.State = SegmentState.UnsupportedVersion;
                Add(new Finding(ProblemKind.UnsupportedVersion, s.Path, 4, s.Length, s.HeaderProblem, FindingWeight.Unsupported)
                    { ReadOnlyAction = "segment skipped (read-only open)" });
            }
            else if (s.Id == highest && s.Length <= SegmentHeader.FixedSize)
            {
                // A crash while creating the newest segment leaves at most a header: no record is written before the header
                // is fsynced, so the file never held an acknowledged write.
                s.State = SegmentState.IncompleteCreation;
                Add(new Finding(ProblemKind.IncompleteSegment, s.Path, 0, s.Length,
                    $"{s.Length}-byte segment with an invalid header ({s.HeaderProblem}): an interrupted segment creation; it holds no records",
                    FindingWeight.Settled) { OpenAction = "removed; it held no records" });
                if (s.HintPath is not null) Plan.Add(new PlanStep.DeleteFile(s.HintPath, "hint of an interrupted segment creation"));
                Plan.Add(new PlanStep.DeleteFile(s.Path, "interrupted segment creation"));
            }
            else
            {
                s.State = SegmentState.BadHeader;
                Add(new Finding(ProblemKind.BadSegmentHeader, s.Path, 0, s.Length,
                    $"{s.HeaderProblem}; the whole segment ({s.Length} bytes) is unreadable", FindingWeight.Damage)
                    { OpenAction = "segment skipped", ReadOnlyAction = "segment skipped" });
            }
        }
    }

    /// <summary>FORMAT.md §5 step 3, through <see cref="CompactionRuns"/>.</summary>
    private void SettleCompactions()
    {
        var valid = Segments.Where(s => s.Loaded).ToList();
        var unreadable = Segments.Where(s => s.State == SegmentState.BadHeader).Select(s => s.Id).ToHashSet();
        var settlement = CompactionRuns.Settle(valid.Select(s => s.Header!), unreadable);
        foreach (var s in valid)
        {
            if (settlement.Interrupted.TryGetValue(s.Id, out var why))
            {
                s.State = SegmentState.InterruptedCompaction;
                Add(new Finding(ProblemKind.InterruptedCompaction, s.Path, 0, s.Length, why + "; open removes it and keeps the inputs",
                    FindingWeight.Settled) { OpenAction = "removed", ReadOnlyAction = "not loaded (read-only open)" });
            }
            else if (CompactionRuns.IsCovered(settlement.Covered, s.Id))
            {
                s.State = SegmentState.StaleInput;
                Add(new Finding(ProblemKind.StaleSegment, s.Path, 0, s.Length,
                    "input of a finished compaction that is still present (its removal was interrupted); open removes it",
                    FindingWeight.Settled) { OpenAction = "removed", ReadOnlyAction = "not loaded (read-only open)" });
            }
            else continue;
            // With an unreadable segment in the store, a stale input may hold the only readable copy of records of a damaged
            // output: it is not loaded (that could bring back what the run dropped), but it is not deleted either.
            if (s.State == SegmentState.StaleInput && unreadable.Count > 0) continue;
            if (s.HintPath is not null) Plan.Add(new PlanStep.DeleteFile(s.HintPath, $"hint of a segment open removes ({s.State})"));
            Plan.Add(new PlanStep.DeleteFile(s.Path, s.State == SegmentState.StaleInput
                ? "input of a finished compaction whose removal was interrupted"
                : "output of an interrupted compaction"));
        }
        Covered = settlement.Covered;
        // Never hand out an id a finished run replaced: a segment carrying it would be taken for a stale input.
        foreach (var (_, last) in Covered) NextSegmentId = Math.Max(NextSegmentId, last + 1);
    }

    public bool IsCovered(uint id) => CompactionRuns.IsCovered(Covered, id);

    /// <summary>FORMAT.md §5 step 4: each write segment's predecessor is present or replaced by a finished compaction.</summary>
    private void FindMissingSegments()
    {
        var present = Loaded.Select(s => s.Id).ToHashSet();
        foreach (var s in Loaded.Where(s => s.Header!.Kind == SegmentKind.Write))
        {
            var previous = s.Header!.PreviousWriteSegmentId;
            if (previous == 0 || present.Contains(previous) || IsCovered(previous)) continue;
            var why = _segmentIds.Contains(previous) ? " (it is present but unreadable)" : "";
            Add(new Finding(ProblemKind.MissingSegment, PathOf(StoreFiles.SegmentName(previous)), 0, 0,
                $"segment {previous} is missing{why}: segment {s.Id} names it as the previous write segment; its records are lost",
                FindingWeight.Damage) { OpenAction = "its records are lost", ReadOnlyAction = "its records are lost" });
        }
    }

    /// <summary>A hint whose segment is gone is debris when a finished compaction replaced that segment; otherwise it is
    /// the only trace of a lost segment: damage.</summary>
    private void SettleOrphanHints(HashSet<uint> hintIds)
    {
        foreach (var id in hintIds.Where(h => !_segmentIds.Contains(h)).Order())
        {
            var hint = PathOf(StoreFiles.HintName(id));
            if (IsCovered(id))
            {
                Add(new Finding(ProblemKind.OrphanHint, hint, 0, 0, $"hint file of segment {id}, which a finished compaction replaced",
                    FindingWeight.Settled) { OpenAction = "removed" });
                Plan.Add(new PlanStep.DeleteFile(hint, "hint file of a segment a finished compaction replaced"));
                continue;
            }
            var segment = PathOf(StoreFiles.SegmentName(id));
            Add(new Finding(ProblemKind.OrphanHint, hint, 0, 0, $"hint file for segment {id}, which is not present", FindingWeight.Settled)
                { OpenAction = "left alone", ReadOnlyAction = "left alone" });
            lock (_findings)
                if (_findings.Any(f => f.Kind == ProblemKind.MissingSegment && f.Path == segment)) continue; // its successor reported it
            Add(new Finding(ProblemKind.MissingSegment, segment, 0, 0,
                $"segment {id} is missing (its hint file {StoreFiles.HintName(id)} is still there)", FindingWeight.Damage)
                { OpenAction = "its records are lost", ReadOnlyAction = "its records are lost" });
        }
    }

    /// <summary>
    /// The newest write segment is the only one whose end may be an unsynced tail. It is the loaded write segment with the
    /// highest id, unless a compaction output (of any run, finished or not) has a base sequence at or above its own: then
    /// that segment was sealed and merged, which only happens to a segment that was fully fsynced, and no segment of the
    /// store can hold a torn tail (a partial merge may have replaced the true newest one and left older ones).
    /// </summary>
    private void ChooseNewestWriteSegment()
    {
        var newest = Loaded.Where(s => s.Header!.Kind == SegmentKind.Write).MaxBy(s => s.Id);
        LastWriteSegmentId = newest?.Id ?? 0;
        if (newest is null) return;
        var merged = Segments.Any(s => s.Header is { Kind: SegmentKind.Compacted } h && h.BaseSequence >= newest.Header!.BaseSequence);
        newest.IsNewestWrite = !merged;
    }

    /// <summary>
    /// Checks the segment's hint file exactly as open uses it (FORMAT.md §4). Returns the hint's bytes when it is whole
    /// (the caller disposes them), else null, recording why in <see cref="SegmentFile.HintProblem"/> and a finding.
    /// </summary>
    public HintBytes? CheckHint(SegmentFile s)
    {
        if (s.HintPath is null) return null;
        string? problem;
        HintBytes? bytes = null;
        try
        {
            bytes = HintBytes.Read(_fs, s.HintPath, maxLength: s.Length + HintFile.HeaderSize + HintFile.TrailerSize);
            problem = bytes is null
                ? "hint file is longer than its segment allows"
                : HintFile.Validate(bytes.Span, s.Id, s.Length, s.Header!.Crc, s.Header.Size, s.Header.Version, out _);
        }
        catch (IOException e)
        {
            problem = "hint file unreadable: " + e.Message;
        }
        if (problem is null)
        {
            s.HintIsWhole = true;
            return bytes;
        }
        bytes?.Dispose();
        s.HintProblem = problem;
        Add(new Finding(ProblemKind.BadHint, s.HintPath, 0, 0, "hint rejected: " + problem, FindingWeight.Settled)
            { OpenAction = "segment scanned instead; hint rewritten", ReadOnlyAction = "segment scanned instead" });
        return null;
    }

    /// <summary>
    /// Walks the segment's records through <see cref="SegmentLayout"/> (call <see cref="CheckHint"/> first: a whole hint
    /// proves the segment durable, so it cannot hold a torn tail), records its findings and, for a torn tail, the plan step.
    /// </summary>
    public SegmentVerdict Walk<TSink>(SegmentFile s, ref TSink sink) where TSink : ILayoutSink, allows ref struct
    {
        var verdict = SegmentLayout.Walk(s.Data, s.Header!.Size, s.Limits, s.IsNewestWrite && !s.HintIsWhole, ref sink);
        s.Verdict = verdict;
        foreach (var d in verdict.Damage)
            Add(new Finding(ProblemKind.DamagedRecord, s.Path, d.ProblemOffset, d.Length,
                $"{d.Error}; bytes [{d.Offset}, {d.End}) are unreadable", FindingWeight.Damage)
                { OpenAction = $"skipped {d.Length} bytes", ReadOnlyAction = $"skipped {d.Length} bytes" });
        if (verdict.TornTail is { } tail)
        {
            var what = verdict.TornTailHoldsRecords
                ? $"{tail.Length} bytes at the end of the newest segment start with an invalid record ({tail.Error}) and every valid record after it was written before offset {tail.Offset} was fsynced (an unsynced tail)"
                : $"{tail.Length} bytes at the end of the newest segment are not a whole record ({tail.Error})";
            Add(new Finding(ProblemKind.TornTail, s.Path, tail.Offset, tail.Length, what + "; a read-write open or repair truncates them",
                FindingWeight.Settled)
            {
                OpenAction = verdict.TornTailHoldsRecords
                    ? "truncated; the cut bytes, which hold unsynced records after a hole, were saved to " +
                      Path.Combine(StoreFiles.QuarantineDirectory, RecoveryPlan.TailQuarantineName(s.Path, tail.Offset))
                    : "truncated",
            });
            Plan.Add(new PlanStep.TruncateSegment(s.Path, tail.Offset, verdict.TornTailHoldsRecords, "torn tail"));
        }
        return verdict;
    }

    /// <summary>Sorts the findings by file and offset (segments may have been walked in parallel).</summary>
    public void Complete()
    {
        lock (_findings)
            _findings.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path) is var c and not 0 ? c : a.Offset.CompareTo(b.Offset));
    }

    /// <summary>The first finding that stops a read-write open, or null when it can proceed.</summary>
    public Finding? FirstFatal(bool skipDamagedRecords) =>
        _findings.FirstOrDefault(f => f.Weight == FindingWeight.Unsupported)
        ?? (skipDamagedRecords ? null : _findings.FirstOrDefault(f => f.Weight == FindingWeight.Damage));

    public void Dispose()
    {
        foreach (var s in Segments) s.Dispose();
    }
}

/// <summary>A hint file's bytes, mapped (or read when the file system cannot map).</summary>
internal sealed class HintBytes : IDisposable
{
    private IStorageFile? _file;
    private FileMapping? _mapping;
    private byte[]? _bytes;
    private int _length;

    /// <summary>Reads a hint file; null when it is longer than <paramref name="maxLength"/> (then it is not read into memory).</summary>
    public static HintBytes? Read(IStorageFileSystem fs, string path, long maxLength)
    {
        var file = fs.OpenFile(path, StorageOpenMode.ReadOnly);
        try
        {
            var length = file.Length;
            if (length > maxLength || length > int.MaxValue)
            {
                file.Dispose();
                return null;
            }
            var result = new HintBytes { _file = file, _length = (int)length };
            result._mapping = length == 0 ? null : file.Map(length);
            if (result._mapping is null)
            {
                result._bytes = new byte[length];
                result._length = file.Read(0, result._bytes);
            }
            return result;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public int Length => _length;
    public ReadOnlySpan<byte> Span => _mapping is not null ? _mapping.GetSpan(0, _length) : _bytes.AsSpan(0, _length);

    public void Dispose()
    {
        _mapping?.Dispose();
        _mapping = null;
        _file?.Dispose();
        _file = null;
    }
}
