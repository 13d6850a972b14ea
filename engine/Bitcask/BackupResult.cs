namespace Bitcask;

/// <summary>
/// What <see cref="BitcaskStore.Backup"/> made: a store directory holding exactly the writes up to <see cref="Revision"/>.
/// Opening <see cref="TargetDirectory"/> (read-write or read-only) is the restore.
/// </summary>
public sealed record BackupResult
{
    /// <summary>The revision the backup is consistent at: it holds every write with a revision up to this one and none
    /// after it. For a writable store, its <see cref="BitcaskStore.Revision"/> at the moment of the cut; for a read-only
    /// one, the newest write its open loaded (at most its <see cref="BitcaskStore.Revision"/>).</summary>
    public long Revision { get; init; }

    /// <summary>The backup's directory (full path).</summary>
    public required string TargetDirectory { get; init; }

    /// <summary>Sealed segments that became hard links to the source's files (no bytes copied).</summary>
    public int SegmentsLinked { get; init; }

    /// <summary>Segments whose bytes were copied: the active segment's committed prefix, and sealed segments the file
    /// system would not link (another file system, no hard links, or a file a compaction deleted after the cut).</summary>
    public int SegmentsCopied { get; init; }

    /// <summary>Hint files written: copies of the source's valid hints, and hints built from the segment bytes for
    /// segments without one (among them the copied active prefix), so the backup opens from hints alone.</summary>
    public int HintFiles { get; init; }

    /// <summary>Bytes written into the backup (segment and hint bytes; a hard link writes none).</summary>
    public long BytesCopied { get; init; }

    /// <summary>Wall-clock time of the whole backup, from waiting for the cut to the final directory fsync.</summary>
    public TimeSpan Duration { get; init; }
}
