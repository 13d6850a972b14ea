using Bitcask.Analysis;
using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask.Inspection;

/// <summary>
/// The steps of <see cref="StoreInspector.Repair(string, InspectOptions?)"/>: analysis (the same judge open uses) → repair plan → apply. Repair keeps
/// exactly the records a read-write open with <see cref="BitcaskOptions.SkipDamagedRecords"/> keeps (intact entries of a
/// committed batch included), and every byte it removes from a segment or hint is first written to quarantine/. Every
/// file change is crash-safe (a copy in quarantine fsynced first; rewrites as temp + fsync + rename + directory fsync), so
/// a repair cut short is finished by running it again, and the store opens in between.
/// </summary>
internal sealed class StoreRepair(string directory, InspectOptions options, IStorageFileSystem fs)
{
    private readonly List<string> _actions = [];
    private readonly List<string> _quarantined = [];
    private string _directory = directory;
    private string _quarantine = "";

    /// <summary>Test seam: called with a description before each file change (a fault-injection test throws here).</summary>
    internal Action<string>? BeforeStep { get; init; }

    public RepairReport Run()
    {
        _directory = fs is OsFileSystem ? StoreInspector.CheckStoreDirectory(_directory) : _directory;
        _quarantine = Path.Combine(_directory, StoreInspector.QuarantineDirectoryName);
        VerifyReport before;
        IReadOnlyList<RecoveryFinding> findings = [];
        using (fs.Lock(Path.Combine(_directory, StoreFiles.LockFile)))
        {
            using (var first = new InspectedStore(_directory, options, fs))
            {
                first.Run();
                before = first.ToReport();
                FixSegments(first);
            }
            using (var second = new InspectedStore(_directory, options with { Progress = null }, fs))
            {
                second.Run();
                FixHints(second);
            }
        }
        // The engine's own open settles what is left (temporary files, compaction leftovers) and proves the store opens.
        if (!before.Problems.Any(p => p.Kind == ProblemKind.UnsupportedVersion))
        {
            try
            {
                Step("open the store read-write to settle leftovers");
                using var store = BitcaskStore.Open(_directory, new BitcaskOptions
                {
                    TimeProvider = options.TimeProvider,
                    CompactionEnabled = false,
                }, fs);
                findings = store.GetStats().RecoveryFindings;
                foreach (var f in findings) _actions.Add($"engine open: {Path.GetFileName(f.Path)}:{f.Offset}: {f.Problem} ({f.Action})");
                _actions.Add($"a read-write open succeeds: {store.Count} live keys");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                _actions.Add($"a read-write open still fails: {e.Message}");
            }
        }
        else _actions.Add("left segments of an unsupported format version untouched; upgrade Bitcask to read them");
        var after = StoreInspector.Verify(_directory, options with { Progress = null }, fs);
        return new RepairReport
        {
            Directory = _directory, QuarantineDirectory = _quarantine, Actions = _actions.ToArray(),
            QuarantinedFiles = _quarantined.ToArray(), Before = before, After = after, OpenFindings = findings,
        };
    }

    private void Step(string what) => BeforeStep?.Invoke(what);

    private void FixSegments(InspectedStore store)
    {
        var a = store.Analysis;
        // 1. Unreadable segments move whole into quarantine (never deleted); unsupported versions stay for a newer build.
        foreach (var s in a.Segments.Where(s => s.State is SegmentState.BadHeader or SegmentState.IncompleteCreation))
        {
            var target = Quarantine(s.Name, 0, s.Data);
            MoveHintAway(s.Id, "its segment was quarantined");
            var sibling = a.Segments.Select(x => x.Header).FirstOrDefault(h => h is { Kind: SegmentKind.Compacted } && s.Id >= h.MergeId && s.Id < h.MergeId + h.OutputCount);
            if (sibling is not null)
            {
                // An output of a finished run: deleting it would make the run read as interrupted and take its intact
                // siblings with it. Its place is taken by an empty output with the run's header instead.
                Step($"replace {s.Name}");
                var placeholder = sibling with { SegmentId = s.Id, OutputIndex = (ushort)(s.Id - sibling.MergeId) };
                WriteDurably(s.Path, placeholder.Encode());
                _actions.Add($"{s.Name}: {ProblemKind.BadSegmentHeader.DisplayName()}: moved the whole file ({s.Length} bytes) to {Rel(target)}; replaced by an empty output of compaction run {sibling.MergeId}, so the run's other outputs stay");
                continue;
            }
            Step($"delete {s.Name}");
            fs.Delete(s.Path);
            fs.SyncDirectory(_directory); // the removal is durable (its bytes are in quarantine)
            _actions.Add($"{s.Name}: {(s.State == SegmentState.BadHeader ? ProblemKind.BadSegmentHeader : ProblemKind.IncompleteSegment).DisplayName()}: moved the whole file ({s.Length} bytes) to {Rel(target)}");
        }

        // 1b. Segments open removes (stale inputs of finished compactions, outputs of interrupted ones) hold copies of data
        // that lives elsewhere, but repair removes no byte without a copy in quarantine.
        foreach (var s in a.Segments.Where(s => s.State is SegmentState.StaleInput or SegmentState.InterruptedCompaction))
        {
            var target = Quarantine(s.Name, 0, s.Data);
            _actions.Add($"{s.Name}: {(s.State == SegmentState.StaleInput ? ProblemKind.StaleSegment : ProblemKind.InterruptedCompaction).DisplayName()}: copied to {Rel(target)}; the open below removes it");
        }

        // 2. Write segments whose predecessor is gone: relink to the nearest older write segment still loaded.
        var relink = new Dictionary<uint, uint>();
        foreach (var follower in a.Loaded.Where(s => s.Header!.Kind == SegmentKind.Write))
        {
            var previous = follower.Header!.PreviousWriteSegmentId;
            if (previous == 0 || a.Loaded.Any(x => x.Id == previous) || a.IsCovered(previous)) continue;
            relink[follower.Id] = a.Loaded.Where(x => x.Header!.Kind == SegmentKind.Write && x.Id < follower.Id).Select(x => x.Id).DefaultIfEmpty(0u).Max();
        }

        // 3. Damaged ranges and torn tails: every byte that is not kept goes to quarantine, then the segment is truncated
        // (only a torn tail) or rewritten with exactly the kept records.
        foreach (var s in a.Loaded)
        {
            var layout = store.Contents[s.Id].Layout;
            var removed = RemovedRanges(s, layout);
            var newPrevious = relink.TryGetValue(s.Id, out var p) ? p : (uint?)null;
            if (removed.Count == 0 && newPrevious is null) continue;
            foreach (var (offset, length) in removed)
            {
                var target = Quarantine(s.Name, offset, s.Data.Slice(offset, length));
                var item = layout.FirstOrDefault(i => !i.IsKept && i.Offset <= offset && offset < Math.Max(i.End, i.Offset + 1));
                var what = item.Kind == RangeKind.TornTail ? ProblemKind.TornTail : ProblemKind.DamagedRecord;
                _actions.Add($"{s.Name}:{offset}: {what.DisplayName()}: moved {length} bytes to {Rel(target)}");
            }
            MoveHintAway(s.Id, "its segment changes");
            var tornTailOnly = layout.All(i => i.IsKept || i.Kind == RangeKind.TornTail);
            if (newPrevious is null && tornTailOnly && s.Verdict?.TornTail is { } tail)
            {
                Step($"truncate {s.Name}");
                using (var file = fs.OpenFile(s.Path, StorageOpenMode.ReadWrite))
                {
                    file.Truncate(tail.Offset);
                    file.Sync(); // the cut is durable (the bytes are in quarantine)
                }
                _actions.Add($"{s.Name}: truncated to {tail.Offset} bytes");
            }
            else
            {
                var header = newPrevious is { } np ? s.Header! with { PreviousWriteSegmentId = np } : s.Header!;
                Rewrite(s, header, layout);
                if (newPrevious is { } n)
                    _actions.Add($"{s.Name}: its previous write segment {s.Header!.PreviousWriteSegmentId} is gone; now follows {(n == 0 ? "nothing" : n.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
            }
        }
    }

    /// <summary>The byte ranges after the header that no kept item covers: exactly what a rewrite leaves out.</summary>
    private static List<(int Offset, int Length)> RemovedRanges(SegmentFile s, List<LayoutItem> layout)
    {
        var result = new List<(int, int)>();
        var position = s.Header!.Size;
        foreach (var item in layout.Where(i => i.IsKept).OrderBy(i => i.Offset))
        {
            if (item.Offset > position) result.Add((position, item.Offset - position));
            position = Math.Max(position, item.End);
        }
        if (s.Length > position) result.Add((position, (int)s.Length - position));
        return result;
    }

    private void Rewrite(SegmentFile s, SegmentHeader header, List<LayoutItem> layout)
    {
        var data = s.Data;
        var headerBytes = header.Encode();
        var temp = s.Path + StoreFiles.TempExtension;
        Step($"rewrite {s.Name}");
        if (fs.FileExists(temp)) fs.Delete(temp);
        long kept = 0;
        using (var file = fs.OpenFile(temp, StorageOpenMode.CreateNew))
        {
            file.Write(0, headerBytes);
            long position = headerBytes.Length;
            // Sync markers are kept as they are: the durable length one carries may now lie past its new offset, which
            // only says what is true anyway (the whole rewritten file is fsynced below, and nothing is ever appended to it).
            foreach (var item in layout.Where(i => i.IsKept).OrderBy(i => i.Offset))
            {
                file.Write(position, data.Slice(item.Offset, item.Length));
                position += item.Length;
                if (item.Kind != RangeKind.SyncMarker) kept++;
            }
            file.Sync(); // the rewritten segment is durable before its name replaces the damaged one
        }
        Step($"rename {Path.GetFileName(temp)}");
        fs.Rename(temp, s.Path);
        fs.SyncDirectory(_directory); // the replacement is durable
        _actions.Add($"{s.Name}: rewritten without the damaged bytes ({kept} valid records kept; written as {Path.GetFileName(temp)}, fsynced, renamed)");
    }

    private void FixHints(InspectedStore store)
    {
        foreach (var problem in store.Problems.Where(p => p.Kind is ProblemKind.BadHint or ProblemKind.HintMismatch or ProblemKind.OrphanHint)
                     .GroupBy(p => p.File).Select(g => g.First()))
        {
            if (!StoreFiles.TryParseId(problem.File, StoreFiles.HintExtension, out var id)) continue;
            MoveHintAway(id, $"{problem.Kind.DisplayName()}: {problem.Message}");
        }
        foreach (var s in store.Analysis.Loaded)
        {
            var hint = Path.Combine(_directory, StoreFiles.HintName(s.Id));
            if (fs.FileExists(hint) || s.Verdict is not { Damage.Count: 0, TornTail: null }) continue;
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            HintFile.Build(s.Data, s.Header!.Size, s.Id, s.Limits, buffer);
            Step($"write {StoreFiles.HintName(s.Id)}");
            WriteDurably(hint, buffer.WrittenSpan);
            _actions.Add($"{StoreFiles.HintName(s.Id)}: written ({store.Contents[s.Id].ByOffset.Count} entries for {s.Name})");
        }
    }

    private void MoveHintAway(uint id, string why)
    {
        var name = StoreFiles.HintName(id);
        var path = Path.Combine(_directory, name);
        if (!fs.FileExists(path)) return;
        byte[] bytes;
        using (var hint = HintBytes.Read(fs, path, long.MaxValue)) bytes = hint!.Span.ToArray();
        var target = Quarantine(name, 0, bytes);
        Step($"delete {name}");
        fs.Delete(path);
        fs.SyncDirectory(_directory); // the removal is durable (its bytes are in quarantine)
        _actions.Add($"{name}: moved to {Rel(target)} ({why})");
    }

    /// <summary>Writes <paramref name="bytes"/> into the quarantine directory as <c>name-offset.bin</c>, durably, before
    /// anything is removed from the store. An existing file with the same bytes is reused (a repeated repair).</summary>
    private string Quarantine(string name, long offset, ReadOnlySpan<byte> bytes)
    {
        if (!fs.DirectoryExists(_quarantine))
        {
            Step("create quarantine/");
            fs.CreateDirectory(_quarantine);
            fs.SyncDirectory(_directory); // quarantine/ itself survives a crash
        }
        var stem = $"{name}-{offset}";
        var path = Path.Combine(_quarantine, stem + ".bin");
        for (var n = 2; fs.FileExists(path); n++)
        {
            using (var existing = HintBytes.Read(fs, path, long.MaxValue))
                if (existing!.Span.SequenceEqual(bytes)) return path;
            path = Path.Combine(_quarantine, $"{stem}.{n}.bin");
        }
        Step($"quarantine {Path.GetFileName(path)}");
        WriteDurably(path, bytes);
        _quarantined.Add(path);
        return path;
    }

    private void WriteDurably(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = path + StoreFiles.TempExtension;
        if (fs.FileExists(temp)) fs.Delete(temp);
        using (var file = fs.OpenFile(temp, StorageOpenMode.CreateNew))
        {
            file.Write(0, bytes);
            file.Sync(); // the bytes are durable before their name appears
        }
        fs.Rename(temp, path);
        fs.SyncDirectory(Path.GetDirectoryName(path)!); // and so is the name
    }

    private string Rel(string path) => Path.GetRelativePath(_directory, path);
}
