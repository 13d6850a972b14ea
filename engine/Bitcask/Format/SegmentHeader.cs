using System.Buffers.Binary;
using System.IO.Hashing;

namespace Bitcask.Format;

/// <summary>What produced a segment, at offset 6 of its header.</summary>
internal enum SegmentKind : ushort
{
    /// <summary>Appended to by writers; only its tail can be torn by a crash.</summary>
    Write = 1,
    /// <summary>Written whole by a compaction, fsynced and renamed into place; never torn.</summary>
    Compacted = 2,
}

/// <summary>
/// The header at the start of every segment file (FORMAT.md, "Segment header"):
/// <code>
/// 0  4B  magic "BCSK"
/// 4  u16 format version (1)
/// 6  u16 kind: 1 write segment, 2 compaction output
/// 8  u32 segment id
/// 12 u32 previous write segment id (0 = none)
/// 16 u64 base sequence
/// 24 i64 created at, unix ms
/// 32 u32 merge id (compaction outputs), 36 u16 output index, 38 u16 output count
/// 40 u32 superseded range count n
/// 44 u32 created at, the part below a millisecond in 100 ns ticks (0 in files written before it was recorded)
/// 48 12B reserved, zero
/// 60 u32 CRC-32 of [0, 60) followed by [64, 64 + 8n)
/// 64 n x (u32 first id, u32 last id)  segments this compaction output replaces, inclusive ranges
/// </code>
/// </summary>
internal sealed record SegmentHeader
{
    public const uint Magic = 0x4B534342; // "BCSK" little-endian
    /// <summary>The version this build writes: 2 adds the sync marker record (FORMAT.md §2.2).</summary>
    public const ushort CurrentVersion = 2;
    /// <summary>The oldest version this build reads.</summary>
    public const ushort OldestReadableVersion = 1;
    public const int FixedSize = 64;
    /// <summary>The format's own bound on the superseded-range count: a header must fit in a segment (at most 2 GiB - 1
    /// bytes). Readers also require the ranges to lie inside the file, so a corrupt count never sizes a buffer.</summary>
    public const int MaxRanges = (int.MaxValue - FixedSize) / 8;

    public ushort Version { get; init; } = CurrentVersion;
    public SegmentKind Kind { get; init; } = SegmentKind.Write;
    public uint SegmentId { get; init; }
    public uint PreviousWriteSegmentId { get; init; }
    public ulong BaseSequence { get; init; }
    public long CreatedAtUnixMs { get; init; }
    /// <summary>The creation time's part below a millisecond, in 100 ns ticks: with the millisecond it makes the header (and
    /// so its CRC, which a hint file records) differ between two files given the same id, length and base sequence.</summary>
    public uint CreatedAtSubMillisecondTicks { get; init; }

    /// <summary>Sets <see cref="CreatedAtUnixMs"/> and <see cref="CreatedAtSubMillisecondTicks"/> from one clock reading.</summary>
    public SegmentHeader CreatedAt(DateTimeOffset now) => this with
    {
        CreatedAtUnixMs = now.ToUnixTimeMilliseconds(),
        CreatedAtSubMillisecondTicks = (uint)(now.UtcTicks % TimeSpan.TicksPerMillisecond),
    };
    public uint MergeId { get; init; }
    public ushort OutputIndex { get; init; }
    public ushort OutputCount { get; init; }
    public IReadOnlyList<(uint First, uint Last)> Superseded { get; init; } = [];

    public int Size => FixedSize + 8 * Superseded.Count;

    /// <summary>The header's CRC (offset 60): unique per segment file in practice (it covers the id, the creation time and
    /// the base sequence), so a hint file records it to prove which file it describes.</summary>
    public uint Crc => BinaryPrimitives.ReadUInt32LittleEndian(Encode().AsSpan(60));

    public byte[] Encode()
    {
        var buffer = new byte[Size];
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], (ushort)Kind);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], SegmentId);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], PreviousWriteSegmentId);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], BaseSequence);
        BinaryPrimitives.WriteInt64LittleEndian(span[24..], CreatedAtUnixMs);
        BinaryPrimitives.WriteUInt32LittleEndian(span[32..], MergeId);
        BinaryPrimitives.WriteUInt16LittleEndian(span[36..], OutputIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(span[38..], OutputCount);
        BinaryPrimitives.WriteUInt32LittleEndian(span[40..], (uint)Superseded.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(span[44..], CreatedAtSubMillisecondTicks);
        for (var i = 0; i < Superseded.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[(FixedSize + 8 * i)..], Superseded[i].First);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(FixedSize + 8 * i + 4)..], Superseded[i].Last);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(span[60..], ComputeCrc(span));
        return buffer;
    }

    private static uint ComputeCrc(ReadOnlySpan<byte> header)
    {
        var crc = new Crc32();
        crc.Append(header[..60]);
        crc.Append(header[FixedSize..]);
        return crc.GetCurrentHashAsUInt32();
    }

    /// <summary>How many header bytes to read, given the fixed part (which must be <see cref="FixedSize"/> bytes).</summary>
    public static int TotalSize(ReadOnlySpan<byte> fixedPart)
    {
        var ranges = BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[40..]);
        return ranges > MaxRanges ? -1 : FixedSize + 8 * (int)ranges;
    }

    /// <summary>Parses a header. Returns null and an error when the bytes are not a header this version can read.</summary>
    public static SegmentHeader? TryDecode(ReadOnlySpan<byte> bytes, out string? error, out bool unsupportedVersion)
    {
        unsupportedVersion = false;
        if (bytes.Length < FixedSize) { error = $"segment header is cut short ({bytes.Length} of {FixedSize} bytes)"; return null; }
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic) { error = "segment header has a wrong magic number"; return null; }
        // The version comes before the CRC: a later version may lay out (and checksum) its header differently, so its
        // header is "unsupported", never "damaged".
        var version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version is < OldestReadableVersion or > CurrentVersion)
        {
            unsupportedVersion = true;
            error = $"segment format version {version} is not supported (this build reads versions {OldestReadableVersion} to {CurrentVersion})";
            return null;
        }
        var total = TotalSize(bytes);
        if (total < 0) { error = "segment header has an impossible superseded-range count"; return null; }
        if (bytes.Length < total) { error = $"segment header is cut short ({bytes.Length} of {total} bytes)"; return null; }
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes[60..]) != ComputeCrc(bytes[..total])) { error = "segment header CRC mismatch"; return null; }
        var kind = (SegmentKind)BinaryPrimitives.ReadUInt16LittleEndian(bytes[6..]);
        if (kind is not (SegmentKind.Write or SegmentKind.Compacted)) { error = $"unknown segment kind {(ushort)kind}"; return null; }
        var ranges = new (uint, uint)[(total - FixedSize) / 8];
        for (var i = 0; i < ranges.Length; i++)
            ranges[i] = (BinaryPrimitives.ReadUInt32LittleEndian(bytes[(FixedSize + 8 * i)..]), BinaryPrimitives.ReadUInt32LittleEndian(bytes[(FixedSize + 8 * i + 4)..]));
        error = null;
        return new SegmentHeader
        {
            Version = version,
            Kind = kind,
            SegmentId = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]),
            PreviousWriteSegmentId = BinaryPrimitives.ReadUInt32LittleEndian(bytes[12..]),
            BaseSequence = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]),
            CreatedAtUnixMs = BinaryPrimitives.ReadInt64LittleEndian(bytes[24..]),
            CreatedAtSubMillisecondTicks = BinaryPrimitives.ReadUInt32LittleEndian(bytes[44..]),
            MergeId = BinaryPrimitives.ReadUInt32LittleEndian(bytes[32..]),
            OutputIndex = BinaryPrimitives.ReadUInt16LittleEndian(bytes[36..]),
            OutputCount = BinaryPrimitives.ReadUInt16LittleEndian(bytes[38..]),
            Superseded = ranges,
        };
    }
}
