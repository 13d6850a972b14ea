namespace Bitcask.Inspection;

/// <summary>What kind of problem <see cref="StoreInspector.Verify(string, InspectOptions?)"/> found. <see cref="ProblemKindNames.DisplayName"/> gives
/// the stable text the CLI prints (scripts match on it).</summary>
public enum ProblemKind
{
    /// <summary>The newest write segment ends in bytes that are not a whole valid record, and nothing proves they were
    /// durable: what a crash mid-append leaves. A read-write open (or <c>repair</c>) truncates it.</summary>
    TornTail,
    /// <summary>Bytes that fail validation (length, kind, flags, CRC) and are not a torn tail.</summary>
    DamagedRecord,
    /// <summary>A put whose CRC is right but whose LZ4 value does not decode to its recorded length.</summary>
    UndecodableValue,
    /// <summary>A segment header that is invalid (magic, CRC, id): the whole segment is unreadable.</summary>
    BadSegmentHeader,
    /// <summary>The newest segment holds no more than a partial header: an interrupted segment creation.</summary>
    IncompleteSegment,
    /// <summary>A segment of a format version this build does not read.</summary>
    UnsupportedVersion,
    /// <summary>A write segment names a previous write segment that is neither present nor replaced by a compaction, or a
    /// hint file is the only trace of its segment.</summary>
    MissingSegment,
    /// <summary>Output of a compaction that did not finish (some outputs missing); open removes it, the inputs stay.</summary>
    InterruptedCompaction,
    /// <summary>Input of a finished compaction that is still present; open removes it.</summary>
    StaleSegment,
    /// <summary>A hint file that is not whole (header, entry, trailer or whole-file CRC wrong, truncated).</summary>
    BadHint,
    /// <summary>A whole hint file that does not describe its segment (wrong id or length, entries that disagree).</summary>
    HintMismatch,
    /// <summary>A hint file whose segment is not present.</summary>
    OrphanHint,
}

/// <summary>The stable names of <see cref="ProblemKind"/> values, as the CLI prints them.</summary>
public static class ProblemKindNames
{
    /// <summary>"torn tail", "damaged record", …: lower case words, stable across versions.</summary>
    public static string DisplayName(this ProblemKind kind) => kind switch
    {
        ProblemKind.TornTail => "torn tail",
        ProblemKind.DamagedRecord => "damaged record",
        ProblemKind.UndecodableValue => "undecodable value",
        ProblemKind.BadSegmentHeader => "bad segment header",
        ProblemKind.IncompleteSegment => "incomplete segment",
        ProblemKind.UnsupportedVersion => "unsupported version",
        ProblemKind.MissingSegment => "missing segment",
        ProblemKind.InterruptedCompaction => "interrupted compaction",
        ProblemKind.StaleSegment => "stale segment",
        ProblemKind.BadHint => "bad hint",
        ProblemKind.HintMismatch => "hint mismatch",
        ProblemKind.OrphanHint => "orphan hint",
        _ => kind.ToString(),
    };
}

/// <summary>One problem: the file (name inside the store directory), the byte offset, the kind and what is wrong.</summary>
public sealed record StoreProblem(string File, long Offset, ProblemKind Kind, string Message)
{
    /// <summary>Bytes the problem covers (damaged range or torn tail length; 0 when not a byte range).</summary>
    public long Length { get; init; }

    /// <summary>The problem as the CLI prints it: <c>file:offset: kind: message</c>.</summary>
    public override string ToString() => $"{File}:{Offset}: {Kind.DisplayName()}: {Message}";
}

/// <summary>The result of <see cref="StoreInspector.Verify(string, InspectOptions?)"/>.</summary>
public sealed record VerifyReport
{
    /// <summary>The store directory (full path).</summary>
    public required string Directory { get; init; }
    /// <summary>Segment files found (including unreadable ones).</summary>
    public int Segments { get; init; }
    /// <summary>Hint files found.</summary>
    public int HintFiles { get; init; }
    /// <summary>Valid puts and tombstones (entries of a batch counted one by one).</summary>
    public long Records { get; init; }
    /// <summary>Valid batch records.</summary>
    public long Batches { get; init; }
    /// <summary>Valid tombstones (entries of a batch counted one by one).</summary>
    public long Tombstones { get; init; }
    /// <summary>Live, unexpired keys: what a read-only open would serve.</summary>
    public long LiveKeys { get; init; }
    /// <summary>Bytes read: every segment and hint file.</summary>
    public long Bytes { get; init; }
    /// <summary>Every problem found, by file and offset.</summary>
    public required IReadOnlyList<StoreProblem> Problems { get; init; }
    /// <summary>Things that are not problems but worth knowing (e.g. leftover temporary files, which a read-write open removes).</summary>
    public required IReadOnlyList<string> Notes { get; init; }
    /// <summary>True when no problem was found.</summary>
    public bool Healthy => Problems.Count == 0;
}

/// <summary>The kind of a record as <see cref="StoreInspector.ReadRecords"/> reports it.</summary>
public enum RecordType
{
    /// <summary>A put: the key has the value.</summary>
    Put = 1,
    /// <summary>A delete of the key.</summary>
    Tombstone = 2,
    /// <summary>Bytes that are not a valid record (see <see cref="RecordInfo.Problem"/>).</summary>
    Damaged = 100,
}

/// <summary>One record in file order. Entries of an atomic batch are reported one by one with <see cref="BatchOffset"/> set.</summary>
public sealed record RecordInfo
{
    /// <summary>The id of the segment the record is in.</summary>
    public uint SegmentId { get; init; }
    /// <summary>The segment file's name.</summary>
    public required string File { get; init; }
    /// <summary>Offset of the record (of the nested entry for a batch entry) in the segment file.</summary>
    public long Offset { get; init; }
    /// <summary>Bytes the record occupies on disk.</summary>
    public long Length { get; init; }
    /// <summary>Put, tombstone, or damaged bytes.</summary>
    public RecordType Kind { get; init; }
    /// <summary>The record's sequence number (its revision).</summary>
    public ulong Sequence { get; init; }
    /// <summary>Absolute Unix milliseconds; 0 = never.</summary>
    public long ExpiresAt { get; init; }
    /// <summary>The key.</summary>
    public byte[] Key { get; init; } = [];
    /// <summary>The value as a reader gets it (decompressed); empty for tombstones and when values were not requested.</summary>
    public byte[] Value { get; init; } = [];
    /// <summary>Length of the value as a reader gets it.</summary>
    public long ValueLength { get; init; }
    /// <summary>Whether the value is stored LZ4-compressed.</summary>
    public bool Compressed { get; init; }
    /// <summary>Offset of the enclosing batch record, when this entry is part of one.</summary>
    public long? BatchOffset { get; init; }
    /// <summary>True when the keydir of a fresh open would point at this record (the newest, unexpired put of its key).</summary>
    public bool Live { get; init; }
    /// <summary>For <see cref="RecordType.Damaged"/>: what is wrong.</summary>
    public string? Problem { get; init; }
}

/// <summary>Options for <see cref="StoreInspector"/>. Records are always judged by the format's own limits (FORMAT.md),
/// whatever options the store was written with.</summary>
public sealed record InspectOptions
{
    /// <summary>Called with (bytes done, bytes total) as files are read.</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>Clock for deciding which keys are expired. Default: the system clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>At most this many problems are listed per hint file (the rest are counted in one line).</summary>
    public int MaxProblemsPerFile { get; init; } = 20;
}

/// <summary>What <see cref="StoreInspector.Repair(string, InspectOptions?)"/> did.</summary>
public sealed record RepairReport
{
    /// <summary>The store directory (full path).</summary>
    public required string Directory { get; init; }
    /// <summary>The quarantine directory (inside the store directory) that holds every byte range repair removed.</summary>
    public required string QuarantineDirectory { get; init; }
    /// <summary>One line per action, in the order they were done.</summary>
    public required IReadOnlyList<string> Actions { get; init; }
    /// <summary>Files written into the quarantine directory.</summary>
    public required IReadOnlyList<string> QuarantinedFiles { get; init; }
    /// <summary>What verify reported before the repair.</summary>
    public required VerifyReport Before { get; init; }
    /// <summary>What verify reports after it.</summary>
    public required VerifyReport After { get; init; }
    /// <summary>What the engine's own read-write open found and did at the end of the repair.</summary>
    public required IReadOnlyList<RecoveryFinding> OpenFindings { get; init; }
}

/// <summary>The path names an existing directory that holds no store files (no segment, hint or LOCK file).</summary>
public sealed class NotAStoreException(string directory)
    : IOException($"'{directory}' is not a Bitcask store: it holds no segment (*.seg), hint (*.hint) or LOCK file.")
{
    /// <summary>The directory that holds no store.</summary>
    public string Directory { get; } = directory;
}
