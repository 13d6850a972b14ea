using Bitcask.Inspection;

namespace Bitcask.Analysis;

/// <summary>What a read-write open must do about a finding.</summary>
internal enum FindingWeight : byte
{
    /// <summary>Open settles it by itself (torn tail, leftovers, a hint it scans around); never stops an open.</summary>
    Settled,
    /// <summary>Damage: a read-write open stops unless <see cref="BitcaskOptions.SkipDamagedRecords"/>; read-only skips it.</summary>
    Damage,
    /// <summary>A format version this build cannot read: a read-write open always stops; read-only skips the file.</summary>
    Unsupported,
}

/// <summary>
/// One thing the analysis found: the file (full path), the offset of the damaged bytes, how many bytes it covers, what is
/// wrong, and what a read-write open does about it (<see cref="OpenAction"/>) or a read-only one (<see cref="ReadOnlyAction"/>).
/// </summary>
internal sealed record Finding(ProblemKind Kind, string Path, long Offset, long Length, string Message, FindingWeight Weight)
{
    public string OpenAction { get; init; } = "";
    public string ReadOnlyAction { get; init; } = "ignored (read-only open)";
    public string FileName => System.IO.Path.GetFileName(Path);
}
