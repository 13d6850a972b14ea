namespace Bitcask;

/// <summary>A snapshot of a store's state from <see cref="BitcaskStore.GetStats"/>.</summary>
public sealed record StoreStats
{
    /// <summary>How many live, unexpired keys the store holds (a count; <see cref="BitcaskStore.Keys"/> enumerates them).</summary>
    public long LiveKeys { get; init; }
    /// <summary>Keys the keydir holds, including expired ones not yet removed by a compaction.</summary>
    public long KeydirEntries { get; init; }
    public required IReadOnlyList<SegmentStats> Segments { get; init; }
    public long TotalBytes { get; init; }
    public long LiveBytes { get; init; }
    public long DeadBytes { get; init; }
    /// <summary>Dead bytes / record bytes over all segments, 0 to 1.</summary>
    public double Fragmentation { get; init; }
    /// <summary>Approximate managed bytes used by the keydir.</summary>
    public long KeydirBytes { get; init; }
    /// <summary>What the last open found and did: truncated torn tails, skipped damaged records, removed leftovers.</summary>
    public required IReadOnlyList<RecoveryFinding> RecoveryFindings { get; init; }
    public TimeSpan OpenDuration { get; init; }
    public bool ReadOnly { get; init; }
    /// <summary>Set when a failed write or fsync stopped the store from accepting writes (reopen to recover).</summary>
    public string? WriteFailure { get; init; }
    public bool CompactionRunning { get; init; }
    public CompactionResult? LastCompaction { get; init; }
}

/// <summary>Per-segment space accounting.</summary>
public sealed record SegmentStats
{
    public uint Id { get; init; }
    public required string FileName { get; init; }
    /// <summary>File length including the header.</summary>
    public long TotalBytes { get; init; }
    /// <summary>Bytes of records the keydir points at.</summary>
    public long LiveBytes { get; init; }
    /// <summary>Bytes of overwritten, deleted and tombstone records.</summary>
    public long DeadBytes { get; init; }
    /// <summary>DeadBytes / (DeadBytes + LiveBytes), 0 when empty.</summary>
    public double Fragmentation { get; init; }
    public bool IsActive { get; init; }
    public bool IsCompactionOutput { get; init; }
    public bool HasHintFile { get; init; }
}

/// <summary>Something recovery found: file, offset, what was wrong and what was done about it.</summary>
public sealed record RecoveryFinding(string Path, long Offset, string Problem, string Action)
{
    public override string ToString() => $"{Path}:{Offset}: {Problem} ({Action})";
}

/// <summary>What one compaction did.</summary>
public sealed record CompactionResult
{
    public int SegmentsIn { get; init; }
    public int SegmentsOut { get; init; }
    public long BytesBefore { get; init; }
    public long BytesAfter { get; init; }
    public long RecordsKept { get; init; }
    public long RecordsDropped { get; init; }
    public long RecordsExpired { get; init; }
    public long TombstonesKept { get; init; }
    public TimeSpan Duration { get; init; }
    public bool Cancelled { get; init; }
}
