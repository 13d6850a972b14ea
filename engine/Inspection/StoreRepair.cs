using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask.Inspection;

/// <summary>The steps of <see cref="StoreInspector.Repair"/>; every file change is crash-safe (temp + fsync + rename + dir fsync).</summary>
internal sealed class StoreRepair(string directory, InspectOptions options, IStorageFileSystem fs)
{
    private readonly List<string> _actions = [];
    private readonly List<string> _quarantined = [];
    private string _directory = directory;
    private string _quarantine = "";
    private bool _quarantineCreated;

    public RepairReport Run()
    {
        _directory = StoreInspector.CheckStoreDirectory(_directory);
        _quarantine = Path.Combine(_directory, StoreInspector.QuarantineDirectoryName);
        VerifyReport before;
        IReadOnlyList<RecoveryFinding> findings = [];
        using (fs.Lock(Path.Combine(_directory, StoreFiles.LockFile)))
        {
            using (var first = new StoreAnalysis(_directory, options, fs))
            {
                first.Run();
                before = first.ToReport();
                FixSegments(first);
            }
            using (var second = new StoreAnalysis(_directory, options, fs))
            {
                second.Run();
                FixHints(second);
            }
        }
        // The engine's own open settles what is left (temporary files, compaction leftovers) and proves the store opens.
        if (!before.Problems.Any(p => p.Kind == ProblemKinds.UnsupportedVersion))
        {
            try
            {
                using var store = BitcaskStore.Open(_directory, new BitcaskOptions
                {
                    MaxKeyBytes = options.MaxKeyBytes,
                    MaxValueBytes = options.MaxValueBytes,
                    MaxSegmentBytes = options.MaxSegmentBytes,
                    CompressionThreshold = 0,
                    TimeProvider = options.TimeProvider,
                    CompactionEnabled = false,
                });
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
        var after = StoreInspector.Verify(_directory, options with { Progress = null });
        return new RepairReport
        {
            Directory = _directory, QuarantineDirectory = _quarantine, Actions = _actions.ToArray(),
            QuarantinedFiles = _quarantined.ToArray(), Before = before, After = after, OpenFindings = findings,
        };
    }

    private void FixSegments(StoreAnalysis a)
    {
        // 1. Unreadable segments move whole into quarantine (never deleted); unsupported versions stay for a newer build.
        var moved = new HashSet<uint>();
        foreach (var s in a.Segments.Where(s => s.HeaderProblemKind is ProblemKinds.BadSegmentHeader or ProblemKinds.IncompleteSegment))
        {
            var target = Quarantine(s.Name, 0, s.Data);
            fs.Delete(s.Path);
            fs.SyncDirectory(_directory);
            moved.Add(s.Id);
            _actions.Add($"{s.Name}: {s.HeaderProblemKind}: moved the whole file ({s.Length} bytes) to {Rel(target)}");
            MoveHintAway(s.Id, "its segment was quarantined");
        }

        // 2. Predecessor links that point at a segment that is gone: relink to the nearest older write segment present.
        var relink = new Dictionary<uint, uint>();
        foreach (var (missing, follower) in a.Gaps)
        {
            var previous = a.Segments.Where(x => x.Loaded && x.Header!.Kind == SegmentKind.Write && x.Id < follower.Id)
                .Select(x => x.Id).DefaultIfEmpty(0u).Max();
            relink[follower.Id] = previous;
        }

        // 3. Damaged ranges and torn tails: quarantine the bytes, then rewrite or truncate the segment.
        foreach (var s in a.Segments.Where(s => s.Loaded))
        {
            var bad = s.Layout.Where(i => i.Kind != LayoutKind.Record).ToList();
            var newPrevious = relink.TryGetValue(s.Id, out var p) ? p : (uint?)null;
            if (bad.Count == 0 && newPrevious is null) continue;
            foreach (var item in bad)
            {
                var target = Quarantine(s.Name, item.Offset, s.Data.Slice(item.Offset, item.Length));
                var what = item.Kind == LayoutKind.TornTail ? ProblemKinds.TornTail : ProblemKinds.DamagedRecord;
                _actions.Add($"{s.Name}:{item.Offset}: {what}: moved {item.Length} bytes to {Rel(target)}");
            }
            if (newPrevious is null && bad.Count == 1 && bad[0].Kind == LayoutKind.TornTail)
            {
                using (var file = fs.OpenFile(s.Path, StorageOpenMode.ReadWrite))
                {
                    file.Truncate(bad[0].Offset);
                    file.Sync();
                }
                _actions.Add($"{s.Name}: truncated to {bad[0].Offset} bytes");
            }
            else
            {
                var header = newPrevious is { } np ? s.Header! with { PreviousWriteSegmentId = np } : s.Header!;
                Rewrite(s, header);
                if (newPrevious is { } n)
                    _actions.Add($"{s.Name}: its previous write segment {s.Header!.PreviousWriteSegmentId} is gone; now follows {(n == 0 ? "nothing" : n.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
            }
            MoveHintAway(s.Id, "its segment changed");
        }
    }

    private void Rewrite(SegmentFile s, SegmentHeader header)
    {
        var data = s.Data;
        var headerBytes = header.Encode();
        var temp = s.Path + StoreFiles.TempExtension;
        if (fs.FileExists(temp)) fs.Delete(temp);
        long kept = 0;
        using (var file = fs.OpenFile(temp, StorageOpenMode.CreateNew))
        {
            file.Write(0, headerBytes);
            long position = headerBytes.Length;
            foreach (var item in s.Layout.Where(i => i.Kind == LayoutKind.Record))
            {
                file.Write(position, data.Slice(item.Offset, item.Length));
                position += item.Length;
                kept++;
            }
            file.Sync();
        }
        fs.Rename(temp, s.Path);
        fs.SyncDirectory(_directory);
        _actions.Add($"{s.Name}: rewritten without the damaged bytes ({kept} valid records kept; written as {Path.GetFileName(temp)}, fsynced, renamed)");
    }

    private void FixHints(StoreAnalysis a)
    {
        foreach (var problem in a.Problems.Where(p => p.Kind is ProblemKinds.BadHint or ProblemKinds.HintMismatch or ProblemKinds.OrphanHint)
                     .GroupBy(p => p.File).Select(g => g.First()))
        {
            if (!StoreFiles.TryParseId(problem.File, StoreFiles.HintExtension, out var id)) continue;
            MoveHintAway(id, $"{problem.Kind}: {problem.Message}");
        }
        foreach (var s in a.Segments.Where(s => s.Loaded))
        {
            var hint = Path.Combine(_directory, StoreFiles.HintName(s.Id));
            if (fs.FileExists(hint)) continue;
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            HintFile.Build(s.Data, s.Header!.Size, s.Id, new RecordLimits(options.MaxKeyBytes, options.MaxValueBytes, options.MaxSegmentBytes), buffer);
            WriteDurably(hint, buffer.WrittenSpan);
            var entries = s.ByOffset;
            _actions.Add($"{StoreFiles.HintName(s.Id)}: written ({entries.Count} entries for {s.Name})");
        }
    }

    private void MoveHintAway(uint id, string why)
    {
        var name = StoreFiles.HintName(id);
        var path = Path.Combine(_directory, name);
        if (!fs.FileExists(path)) return;
        var target = Quarantine(name, 0, File.ReadAllBytes(path));
        fs.Delete(path);
        fs.SyncDirectory(_directory);
        _actions.Add($"{name}: moved to {Rel(target)} ({why})");
    }

    /// <summary>Writes <paramref name="bytes"/> into the quarantine directory as <c>name-offset.bin</c>, durably, before
    /// anything is removed from the store. An existing file with the same bytes is reused (a repeated repair).</summary>
    private string Quarantine(string name, long offset, ReadOnlySpan<byte> bytes)
    {
        if (!_quarantineCreated)
        {
            if (!fs.DirectoryExists(_quarantine))
            {
                fs.CreateDirectory(_quarantine);
                fs.SyncDirectory(_directory);
            }
            _quarantineCreated = true;
        }
        var stem = $"{name}-{offset}";
        var path = Path.Combine(_quarantine, stem + ".bin");
        for (var n = 2; fs.FileExists(path); n++)
        {
            if (File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) return path;
            path = Path.Combine(_quarantine, $"{stem}.{n}.bin");
        }
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
            file.Sync();
        }
        fs.Rename(temp, path);
        fs.SyncDirectory(Path.GetDirectoryName(path)!);
    }

    private string Rel(string path) => Path.GetRelativePath(_directory, path);
}
