namespace Bitcask;

/// <summary>A snapshot of a store's state from <see cref="BitcaskStore.GetStats"/>.</summary>
public sealed record StoreStats
{
    /// <summary>How many live, unexpired keys the store holds (a count; <see cref="BitcaskStore.Keys"/> enumerates them).</summary>
    public long LiveKeys { get; init; }
    /// <summary>Keys the keydir holds, including expired ones not yet removed by a compaction.</summary>
    public long KeydirEntries { get; init; }
    /// <summary>Every segment, in id order.</summary>
    public required IReadOnlyList<SegmentStats> Segments { get; init; }
    /// <summary>Bytes of every segment file, headers included.</summary>
    public long TotalBytes { get; init; }
    /// <summary>Bytes of the records the keydir points at.</summary>
    public long LiveBytes { get; init; }
    /// <summary>Bytes of overwritten, deleted and tombstone records (what a compaction reclaims).</summary>
    public long DeadBytes { get; init; }
    /// <summary>Dead bytes / record bytes over all segments, 0 to 1.</summary>
    public double Fragmentation { get; init; }
    /// <summary>Approximate managed bytes used by the keydir.</summary>
    public long KeydirBytes { get; init; }
    /// <summary>What the last open found and did: truncated torn tails, skipped damaged records, removed leftovers.</summary>
    public required IReadOnlyList<RecoveryFinding> RecoveryFindings { get; init; }
    /// <summary>How long the open (recovery) took.</summary>
    public TimeSpan OpenDuration { get; init; }
    /// <summary>Whether the store was opened read-only.</summary>
    public bool ReadOnly { get; init; }
    /// <summary>Set when a failed write or fsync stopped the store from accepting writes (reopen to recover).</summary>
    public string? WriteFailure { get; init; }
    /// <summary>Whether a compaction is running now.</summary>
    public bool CompactionRunning { get; init; }
    /// <summary>What the last compaction that merged anything did (null before the first).</summary>
    public CompactionResult? LastCompaction { get; init; }
}

/// <summary>Per-segment space accounting.</summary>
public sealed record SegmentStats
{
    /// <summary>The segment id (the number in its file name).</summary>
    public uint Id { get; init; }
    /// <summary>The segment file's name, e.g. <c>0000000003.seg</c>.</summary>
    public required string FileName { get; init; }
    /// <summary>File length including the header.</summary>
    public long TotalBytes { get; init; }
    /// <summary>Bytes of records the keydir points at.</summary>
    public long LiveBytes { get; init; }
    /// <summary>Bytes of overwritten, deleted and tombstone records.</summary>
    public long DeadBytes { get; init; }
    /// <summary>DeadBytes / (DeadBytes + LiveBytes), 0 when empty.</summary>
    public double Fragmentation { get; init; }
    /// <summary>Whether writes are appended to it now.</summary>
    public bool IsActive { get; init; }
    /// <summary>Whether a compaction wrote it (else writers did).</summary>
    public bool IsCompactionOutput { get; init; }
    /// <summary>Whether it has a usable hint file (loaded from it at open, or written since).</summary>
    public bool HasHintFile { get; init; }
}

/// <summary>Something recovery found: file, offset, what was wrong and what was done about it.</summary>
public sealed record RecoveryFinding(string Path, long Offset, string Problem, string Action)
{
    /// <summary>The kind of problem; null for a leftover temporary file.</summary>
    public Inspection.ProblemKind? Kind { get; init; }

    /// <summary>Whether the open read past data that was written and acknowledged: a damaged record or value, an unreadable
    /// or missing segment. Its keys are missing from the store, or show an older value. (A torn tail was never
    /// acknowledged in Flushed or Synced mode; a bad hint only cost a scan.)</summary>
    public bool HidesData => Kind is Inspection.ProblemKind.DamagedRecord or Inspection.ProblemKind.UndecodableValue
        or Inspection.ProblemKind.BadSegmentHeader or Inspection.ProblemKind.UnsupportedVersion or Inspection.ProblemKind.MissingSegment;

    /// <summary>The finding as <c>path:offset: problem (action)</c>.</summary>
    public override string ToString() => $"{Path}:{Offset}: {Problem} ({Action})";
}

/// <summary>What one compaction did.</summary>
public sealed record CompactionResult
{
    /// <summary>Segments merged.</summary>
    public int SegmentsIn { get; init; }
    /// <summary>Segments written.</summary>
    public int SegmentsOut { get; init; }
    /// <summary>Bytes of the merged segments.</summary>
    public long BytesBefore { get; init; }
    /// <summary>Bytes of the segments written.</summary>
    public long BytesAfter { get; init; }
    /// <summary>Live records copied.</summary>
    public long RecordsKept { get; init; }
    /// <summary>Overwritten or deleted records dropped, and tombstones no longer needed.</summary>
    public long RecordsDropped { get; init; }
    /// <summary>Puts dropped because their time to live had run out.</summary>
    public long RecordsExpired { get; init; }
    /// <summary>Tombstones copied because an older record of their key may still exist outside the merge.</summary>
    public long TombstonesKept { get; init; }
    /// <summary>How long the compaction took.</summary>
    public TimeSpan Duration { get; init; }
    /// <summary>Whether it was cancelled (then nothing changed).</summary>
    public bool Cancelled { get; init; }
}
