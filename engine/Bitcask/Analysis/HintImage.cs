using System.Buffers.Binary;
using System.IO.Hashing;

namespace Bitcask.Analysis;

/// <summary>One entry of a hint file (FORMAT.md §4): where the newest record of a key sits in the segment.</summary>
internal readonly record struct HintImageEntry(byte[] Key, byte Kind, uint Offset, uint Length, ulong Sequence, long ExpiresAt);

/// <summary>
/// Reads and writes hint files exactly as FORMAT.md §4 specifies, reporting every defect with its byte offset.
/// Used by verify (hint must agree with its segment) and repair (rebuild a missing or damaged hint).
/// </summary>
internal static class HintImage
{
    private const uint HeaderMagic = Format.HintFile.HeaderMagic;
    private const uint TrailerMagic = Format.HintFile.TrailerMagic;
    private const int HeaderSize = Format.HintFile.HeaderSize;
    private const int TrailerSize = Format.HintFile.TrailerSize;

    public sealed record ParseResult(uint SegmentId, long SegmentLength, List<(long Offset, HintImageEntry Entry)> Entries, List<(long Offset, string Problem)> Problems)
    {
        public bool IsWhole => Problems.Count == 0;
    }

    /// <summary>Parses a hint file's bytes. Never throws on bad bytes; every defect becomes a problem with its offset.</summary>
    public static ParseResult Parse(ReadOnlySpan<byte> data, int maxProblems = 20)
    {
        var problems = new List<(long, string)>();
        var entries = new List<(long, HintImageEntry)>();
        if (data.Length < HeaderSize + TrailerSize)
        {
            problems.Add((0, $"hint file of {data.Length} bytes is shorter than a header and trailer ({HeaderSize + TrailerSize} bytes)"));
            return new ParseResult(0, 0, entries, problems);
        }
        var header = data[..HeaderSize];
        uint segmentId = 0;
        long segmentLength = 0;
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != HeaderMagic) problems.Add((0, "hint header magic is not BCHT"));
        else if (BinaryPrimitives.ReadUInt32LittleEndian(header[28..]) != Crc32.HashToUInt32(header[..28])) problems.Add((28, "hint header CRC mismatch"));
        else if (BinaryPrimitives.ReadUInt16LittleEndian(header[4..]) is var v && v is not (1 or 2)) problems.Add((4, $"hint format version {v} is not supported (this build reads versions 1 and 2)"));
        else if (BinaryPrimitives.ReadUInt16LittleEndian(header[6..]) != 0 || (v == 1 && BinaryPrimitives.ReadUInt32LittleEndian(header[12..]) != 0))
            problems.Add((6, "hint header reserved bytes are not zero"));
        else
        {
            segmentId = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            segmentLength = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        }
        if (problems.Count > 0) return new ParseResult(0, 0, entries, problems);

        var trailerAt = data.Length - TrailerSize;
        var trailer = data[trailerAt..];
        var trailerOk = BinaryPrimitives.ReadUInt32LittleEndian(trailer) == TrailerMagic
                        && BinaryPrimitives.ReadUInt32LittleEndian(trailer[20..]) == Crc32.HashToUInt32(trailer[..20]);
        if (!trailerOk)
        {
            problems.Add((trailerAt, "hint trailer is missing or damaged (magic or trailer CRC wrong; the file may be truncated)"));
            return new ParseResult(segmentId, segmentLength, entries, problems);
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer[16..]) != Crc32.HashToUInt32(data[..trailerAt]))
            problems.Add((trailerAt + 16, "hint whole-file CRC mismatch (some byte before the trailer is damaged)"));
        var expectedCount = BinaryPrimitives.ReadInt64LittleEndian(trailer[8..]);

        // Entries are walked with the engine's own reader (v1's per-entry CRCs checked), so verify and open agree on the format.
        var reader = new Bitcask.Format.HintFile.Reader(data[..trailerAt]);
        long count = 0;
        while (true)
        {
            var at = reader.Position;
            if (!reader.Next(out var entry, out var key, out var error))
            {
                if (error is not null) problems.Add((at, error));
                break;
            }
            if ((long)entry.Offset + entry.Length > segmentLength)
                problems.Add((at, $"hint entry points at bytes [{entry.Offset}, {(long)entry.Offset + entry.Length}) past the segment length {segmentLength}"));
            else
                entries.Add((at, new HintImageEntry(key.ToArray(), (byte)entry.Kind, entry.Offset, entry.Length, entry.Sequence, entry.ExpiresAt)));
            count++;
            if (problems.Count >= maxProblems) break;
        }
        if (problems.Count == 0 && count != expectedCount)
            problems.Add((trailerAt + 8, $"hint trailer counts {expectedCount} entries but the file holds {count}"));
        return new ParseResult(segmentId, segmentLength, entries, problems);
    }
}
