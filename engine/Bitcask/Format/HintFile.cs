using System.Runtime.CompilerServices;
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace Bitcask.Format;

/// <summary>One hint entry: where a record is and what open needs to know about it, without its value.</summary>
internal readonly record struct HintEntry(RecordKind Kind, uint Offset, uint Length, ulong Sequence, long ExpiresAt);

/// <summary>
/// Hint files (FORMAT.md §4): for one sealed segment, every put and tombstone it holds, without values, so open fills the
/// keydir by reading a fraction of the bytes. Layout:
/// <code>
/// header  32 B: "BCHT", u16 version, u16 0, u32 segment id, u32 0, u64 segment length, u32 segment header CRC,
///               u32 CRC-32 of [0,28)
/// entry   24 B (+ 8) + key: u32 CRC-32 of the rest of the entry, u8 kind, u8 flags (bit 0: has expiry), u16 keyLength,
///                     u32 offset, u32 length, u64 sequence, [i64 expiresAt when flag bit 0], key
/// trailer 24 B: "BCHE", u32 0, u64 entry count, u32 CRC-32 of every byte before the trailer, u32 CRC-32 of [0,20)
/// </code>
/// </summary>
internal static class HintFile
{
    public const uint HeaderMagic = 0x54484342;  // "BCHT"
    public const uint TrailerMagic = 0x45484342; // "BCHE"
    public const ushort Version = 1;
    public const int HeaderSize = 32;
    public const int EntryHeaderSize = 24;
    public const byte HasExpiryFlag = 1;
    public const int TrailerSize = 24;

    /// <summary>Builds the hint bytes for a segment by walking its (already validated) records.</summary>
    public static void Build(ReadOnlySpan<byte> segmentData, int recordsStart, uint segmentId, RecordLimits limits, ArrayBufferWriter<byte> output)
    {
        BeginIncremental(output, segmentId);
        FinishIncrementalHeader(output.GetSpanOfWritten(), segmentId, segmentData.Length, BinaryPrimitives.ReadUInt32LittleEndian(segmentData[60..]));

        ulong count = 0;
        var scanner = new SegmentScanner(segmentData, recordsStart, limits);
        while (scanner.Next(out var offset, out var record))
        {
            var entries = new RecordEntries(record, offset);
            while (entries.Next(out var entryOffset, out var entry))
            {
                AppendEntry(output, new HintEntry(RecordCodec.ReadKind(entry), (uint)entryOffset, (uint)entry.Length,
                    RecordCodec.ReadSequence(entry), RecordCodec.ReadExpiresAt(entry)), RecordCodec.Key(entry));
                count++;
            }
        }
        if (scanner.Error is not null)
            throw new InvalidDataException($"segment {segmentId} has an invalid record at offset {scanner.Position}: {scanner.Error}");
        AppendTrailer(output, count);
    }

    public static void AppendEntry(ArrayBufferWriter<byte> output, HintEntry entry, ReadOnlySpan<byte> key)
    {
        var expiry = entry.ExpiresAt != 0 ? 8 : 0;
        var size = EntryHeaderSize + expiry + key.Length;
        var span = output.GetSpan(size)[..size];
        span[4] = (byte)entry.Kind;
        span[5] = expiry != 0 ? HasExpiryFlag : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], (ushort)key.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], entry.Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], entry.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], entry.Sequence);
        if (expiry != 0) BinaryPrimitives.WriteInt64LittleEndian(span[24..], entry.ExpiresAt);
        key.CopyTo(span[(EntryHeaderSize + expiry)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span, Crc32.HashToUInt32(span[4..]));
        output.Advance(size);
    }

    public static void AppendTrailer(ArrayBufferWriter<byte> output, ulong count)
    {
        var bodyCrc = Crc32.HashToUInt32(output.WrittenSpan);
        var trailer = output.GetSpan(TrailerSize)[..TrailerSize];
        trailer.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, TrailerMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(trailer[8..], count);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[16..], bodyCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[20..], Crc32.HashToUInt32(trailer[..20]));
        output.Advance(TrailerSize);
    }

    /// <summary>Writes a fresh header for the given segment into the first <see cref="HeaderSize"/> bytes of <paramref name="output"/>.</summary>
    public static void BeginIncremental(ArrayBufferWriter<byte> output, uint segmentId)
    {
        output.ResetWrittenCount();
        var header = output.GetSpan(HeaderSize)[..HeaderSize];
        header.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(header, HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], segmentId);
        output.Advance(HeaderSize);
    }

    /// <summary>Fills in the segment id, the segment length and its header's CRC (known only when a compaction output is
    /// complete) and the hint header's own CRC.</summary>
    public static void FinishIncrementalHeader(Span<byte> hint, uint segmentId, long segmentLength, uint segmentHeaderCrc)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(hint[8..], segmentId);
        BinaryPrimitives.WriteUInt64LittleEndian(hint[16..], (ulong)segmentLength);
        BinaryPrimitives.WriteUInt32LittleEndian(hint[24..], segmentHeaderCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(hint[28..], Crc32.HashToUInt32(hint[..28]));
    }

    /// <summary>
    /// Checks a whole hint file against its segment: header, trailer, whole-file CRC, then every entry's CRC and bounds.
    /// Returns null when it can be used, else why not. Nothing is applied until this passes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    public static string? Validate(ReadOnlySpan<byte> hint, uint segmentId, long segmentLength, uint segmentHeaderCrc, int recordsStart, ushort segmentVersion, out ulong entryCount)
    {
        entryCount = 0;
        if (hint.Length < HeaderSize + TrailerSize) return $"hint file is cut short ({hint.Length} bytes)";
        var header = hint[..HeaderSize];
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != HeaderMagic) return "hint header has a wrong magic number";
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[28..]) != Crc32.HashToUInt32(header[..28])) return "hint header CRC mismatch";
        if (BinaryPrimitives.ReadUInt16LittleEndian(header[4..]) != Version) return $"hint format version {BinaryPrimitives.ReadUInt16LittleEndian(header[4..])} is not supported";
        if (BinaryPrimitives.ReadUInt16LittleEndian(header[6..]) != 0 || BinaryPrimitives.ReadUInt32LittleEndian(header[12..]) != 0)
            return "hint header reserved bytes are not zero";
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[8..]) != segmentId) return "hint names another segment";
        var covered = BinaryPrimitives.ReadUInt64LittleEndian(header[16..]);
        if (covered != (ulong)segmentLength) return $"hint describes {covered} bytes of segment data but the segment has {segmentLength} (stale hint)";
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[24..]) != segmentHeaderCrc)
            return "hint describes another file with this segment id (its segment-header CRC differs: a stale or copied hint)";
        var trailer = hint[^TrailerSize..];
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer) != TrailerMagic) return "hint trailer missing (truncated hint file)";
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer[20..]) != Crc32.HashToUInt32(trailer[..20])) return "hint trailer CRC mismatch";
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) != 0) return "hint trailer reserved bytes are not zero";
        var body = hint[..^TrailerSize];
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer[16..]) != Crc32.HashToUInt32(body)) return "hint file CRC mismatch";
        var expected = BinaryPrimitives.ReadUInt64LittleEndian(trailer[8..]);
        var reader = new Reader(body, checkEntryCrc: false); // the whole-file CRC above already covers every entry
        // A hint lists every put and tombstone of its segment in file order, so its entries tile the segment's records: each
        // starts where the one before it ended, or one record header later (the first entry inside a batch, or the record
        // after a sync marker), or two (a sync marker, then a batch's first entry); after the last one the segment ends, or
        // holds one sync marker. An entry that points anywhere else (a buggy or foreign writer, with valid CRCs) would send
        // reads between records. Sync markers exist from format version 2 on.
        var markers = segmentVersion >= 2;
        long next = recordsStart;
        while (reader.Next(out var entry, out var key, out var error))
        {
            if (entry.Offset < recordsStart || (long)entry.Offset + entry.Length > segmentLength || entry.Length < RecordCodec.HeaderSize + key.Length)
                return $"hint entry points outside the segment's records (offset {entry.Offset}, length {entry.Length})";
            var gap = entry.Offset - next;
            if (gap != 0 && gap != RecordCodec.HeaderSize && !(markers && gap == 2 * RecordCodec.HeaderSize))
                return $"hint entry {entryCount} points at offset {entry.Offset}, which is not where a record starts (the previous one ends at {next})";
            next = (long)entry.Offset + entry.Length;
            entryCount++;
        }
        if (reader.Error is { } problem) return problem;
        if (entryCount != expected) return $"hint trailer counts {expected} entries but the file holds {entryCount}";
        if (next != segmentLength && !(markers && next + RecordCodec.HeaderSize == segmentLength))
            return $"hint entries end at offset {next} but the segment's records end at {segmentLength}";
        return null;
    }

    /// <summary>Walks the entries of a hint (after <see cref="Validate"/>).</summary>
    public ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _body;
        private readonly bool _checkEntryCrc;

        /// <param name="body">The hint bytes without the trailer.</param>
        /// <param name="checkEntryCrc">Check each entry's own CRC (verify does; open relies on the whole-file CRC).</param>
        public Reader(ReadOnlySpan<byte> body, bool checkEntryCrc = true)
        {
            _body = body;
            _checkEntryCrc = checkEntryCrc;
            Position = HeaderSize;
        }

        public int Position { get; private set; }
        public string? Error { get; private set; }

        /// <summary>Decodes the entry at <paramref name="position"/> of a hint that <see cref="Validate"/> accepted (no checks).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public static void ReadValidated(ReadOnlySpan<byte> hint, int position, out HintEntry entry, out ReadOnlySpan<byte> key)
        {
            var span = hint[position..];
            var expiry = (span[5] & HasExpiryFlag) != 0 ? 8 : 0;
            entry = new HintEntry((RecordKind)span[4], BinaryPrimitives.ReadUInt32LittleEndian(span[8..]), BinaryPrimitives.ReadUInt32LittleEndian(span[12..]),
                BinaryPrimitives.ReadUInt64LittleEndian(span[16..]), expiry != 0 ? BinaryPrimitives.ReadInt64LittleEndian(span[24..]) : 0);
            key = span.Slice(EntryHeaderSize + expiry, BinaryPrimitives.ReadUInt16LittleEndian(span[6..]));
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public bool Next(out HintEntry entry, out ReadOnlySpan<byte> key, out string? error)
        {
            entry = default;
            key = default;
            error = null;
            if (Position >= _body.Length) return false;
            var rest = _body[Position..];
            if (rest.Length < EntryHeaderSize) { Error = error = $"hint entry at offset {Position} is cut short"; return false; }
            var keyLength = BinaryPrimitives.ReadUInt16LittleEndian(rest[6..]);
            var flags = rest[5];
            var expiry = (flags & HasExpiryFlag) != 0 ? 8 : 0;
            if (rest.Length < EntryHeaderSize + expiry + keyLength) { Error = error = $"hint entry at offset {Position} is cut short"; return false; }
            var span = rest[..(EntryHeaderSize + expiry + keyLength)];
            if (_checkEntryCrc && BinaryPrimitives.ReadUInt32LittleEndian(span) != Crc32.HashToUInt32(span[4..])) { Error = error = $"hint entry at offset {Position}: CRC mismatch"; return false; }
            var kind = (RecordKind)span[4];
            if (kind is not (RecordKind.Put or RecordKind.Tombstone) || (flags & ~HasExpiryFlag) != 0) { Error = error = $"hint entry at offset {Position}: unknown kind {(byte)kind} or flags 0x{flags:x2}"; return false; }
            entry = new HintEntry(kind, BinaryPrimitives.ReadUInt32LittleEndian(span[8..]), BinaryPrimitives.ReadUInt32LittleEndian(span[12..]),
                BinaryPrimitives.ReadUInt64LittleEndian(span[16..]), expiry != 0 ? BinaryPrimitives.ReadInt64LittleEndian(span[24..]) : 0);
            key = span[(EntryHeaderSize + expiry)..];
            Position += span.Length;
            return true;
        }
    }
}
