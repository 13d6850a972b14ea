using System.Runtime.CompilerServices;
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using Bitcask.Storage;

namespace Bitcask.Format;

/// <summary>One hint entry: where a record is and what open needs to know about it, without its value.</summary>
internal readonly record struct HintEntry(RecordKind Kind, uint Offset, uint Length, ulong Sequence, long ExpiresAt);

/// <summary>
/// Hint files (FORMAT.md §4): for one sealed segment, every put and tombstone it holds, without values, so open fills the
/// keydir by reading a fraction of the bytes. Layout of version 2 (written; version 1 is still read):
/// <code>
/// header  32 B: "BCHT", u16 version, u16 0, u32 segment id, u32 records start (v1: 0), u64 segment length,
///               u32 segment header CRC, u32 CRC-32 of [0,28)
/// entry   15 B (+ 8) + key: u8 (bits 0-1 kind, bit 2 has expiry, bits 3-4 gap / 32), u16 keyLength, u32 length,
///                     u64 sequence, [i64 expiresAt when bit 2], key. The record starts gap bytes after the previous
///                     entry's record ended (the first: after records start); gap is 0, 32 or 64 (a sync marker or a
///                     batch header in between).
/// v1 entry 24 B (+ 8) + key: u32 CRC-32 of the rest of the entry, u8 kind, u8 flags (bit 0: has expiry), u16 keyLength,
///                     u32 offset, u32 length, u64 sequence, [i64 expiresAt when flag bit 0], key
/// trailer 24 B: "BCHE", u32 0, u64 entry count, u32 CRC-32 of every byte before the trailer, u32 CRC-32 of [0,20)
/// </code>
/// Version 2 drops v1's per-entry CRC (the whole-file CRC already covers every entry, and open checks it before using
/// any) and its offsets (the entries tile the segment, so each offset follows from the one before): 31 bytes per entry
/// for a 16-byte key instead of 40.
/// </summary>
internal static class HintFile
{
    public const uint HeaderMagic = 0x54484342;  // "BCHT"
    public const uint TrailerMagic = 0x45484342; // "BCHE"
    /// <summary>The version written.</summary>
    public const ushort Version = 2;
    public const int HeaderSize = 32;
    public const int EntryHeaderSizeV1 = 24;
    public const int EntryHeaderSize = 15;
    public const byte HasExpiryFlag = 1;          // v1 flags byte
    private const byte KindMask = 0x03, ExpiryBit = 0x04, GapShift = 3, GapMask = 0x18; // v2 first byte
    /// <summary>The bytes a record may start after the previous one ends: none, a sync marker or a batch header, or both.</summary>
    public const int GapUnit = RecordCodec.HeaderSize;
    public const int TrailerSize = 24;

    /// <summary>Builds the hint bytes for a segment by walking its (already validated) records.</summary>
    public static void Build(ReadOnlySpan<byte> segmentData, int recordsStart, uint segmentId, RecordLimits limits, ArrayBufferWriter<byte> output)
    {
        BeginIncremental(output, segmentId);
        FinishIncrementalHeader(output.GetSpanOfWritten(), segmentId, recordsStart, segmentData.Length, BinaryPrimitives.ReadUInt32LittleEndian(segmentData[60..]));

        ulong count = 0;
        long next = recordsStart;
        var scanner = new SegmentScanner(segmentData, recordsStart, limits);
        while (scanner.Next(out var offset, out var record))
        {
            var entries = new RecordEntries(record, offset);
            while (entries.Next(out var entryOffset, out var entry))
            {
                AppendEntry(output, new HintEntry(RecordCodec.ReadKind(entry), (uint)entryOffset, (uint)entry.Length,
                    RecordCodec.ReadSequence(entry), RecordCodec.ReadExpiresAt(entry)), RecordCodec.Key(entry), ref next);
                count++;
            }
        }
        if (scanner.Error is not null)
            throw new InvalidDataException($"segment {segmentId} has an invalid record at offset {scanner.Position}: {scanner.Error}");
        AppendTrailer(output, count);
    }

    /// <summary>Appends the entry of the record at <paramref name="entry"/>.Offset, which must start where the previous
    /// entry's record ended (<paramref name="next"/>, the records start for the first), or one or two record headers later.</summary>
    public static void AppendEntry(ArrayBufferWriter<byte> output, HintEntry entry, ReadOnlySpan<byte> key, ref long next)
    {
        var gap = entry.Offset - next;
        if (gap is not (0 or GapUnit or 2 * GapUnit))
            throw new InvalidOperationException($"hint entry for the record at offset {entry.Offset} does not follow the previous record (which ends at {next}); this is a bug");
        var expiry = entry.ExpiresAt != 0 ? 8 : 0;
        var size = EntryHeaderSize + expiry + key.Length;
        var span = output.GetSpan(size)[..size];
        span[0] = (byte)((byte)entry.Kind | (expiry != 0 ? ExpiryBit : 0) | (int)(gap / GapUnit) << GapShift);
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], (ushort)key.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[3..], entry.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(span[7..], entry.Sequence);
        if (expiry != 0) BinaryPrimitives.WriteInt64LittleEndian(span[EntryHeaderSize..], entry.ExpiresAt);
        key.CopyTo(span[(EntryHeaderSize + expiry)..]);
        output.Advance(size);
        next = (long)entry.Offset + entry.Length;
    }

    /// <summary>The entry count a hint's trailer records (its own CRC checked), for sizing the keydir before loading;
    /// null when the trailer is not intact. Only an estimate: whether the hint is used is decided by <see cref="Validate"/>.</summary>
    public static long? EntryCountHint(IStorageFile file)
    {
        if (file.Length < HeaderSize + TrailerSize) return null;
        Span<byte> trailer = stackalloc byte[TrailerSize];
        if (file.Read(file.Length - TrailerSize, trailer) != TrailerSize) return null;
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer) != TrailerMagic || BinaryPrimitives.ReadUInt32LittleEndian(trailer[20..]) != Crc32.HashToUInt32(trailer[..20]))
            return null;
        var count = BinaryPrimitives.ReadUInt64LittleEndian(trailer[8..]);
        return count <= (ulong)file.Length ? (long)count : null; // an entry takes more than a byte: anything larger is not a count
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

    /// <summary>Fills in the segment id, where its records start, the segment length and its header's CRC (known only when
    /// a compaction output is complete) and the hint header's own CRC.</summary>
    public static void FinishIncrementalHeader(Span<byte> hint, uint segmentId, int recordsStart, long segmentLength, uint segmentHeaderCrc)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(hint[8..], segmentId);
        BinaryPrimitives.WriteUInt32LittleEndian(hint[12..], (uint)recordsStart);
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
        var version = BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
        if (version is not (1 or 2)) return $"hint format version {version} is not supported (this build reads 1 and 2)";
        if (BinaryPrimitives.ReadUInt16LittleEndian(header[6..]) != 0 || (version == 1 && BinaryPrimitives.ReadUInt32LittleEndian(header[12..]) != 0))
            return "hint header reserved bytes are not zero";
        if (version >= 2 && BinaryPrimitives.ReadUInt32LittleEndian(header[12..]) != (uint)recordsStart)
            return $"hint says the segment's records start at {BinaryPrimitives.ReadUInt32LittleEndian(header[12..])} but they start at {recordsStart}";
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
        var reader = new Reader(body, checkEntryCrc: false); // the whole-file CRC above already covers every entry (v1's own CRCs too)
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

    /// <summary>The format version in a hint's header (1 or 2 once <see cref="Validate"/> accepted it).</summary>
    public static ushort VersionOf(ReadOnlySpan<byte> hint) => BinaryPrimitives.ReadUInt16LittleEndian(hint[4..]);

    /// <summary>Walks the entries of a hint, in file order (every entry's offset follows from the one before in version 2).</summary>
    public ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _body;
        private readonly bool _checkEntryCrc;
        private readonly ushort _version;
        private long _next;

        /// <param name="body">The hint bytes without the trailer, starting with its header.</param>
        /// <param name="checkEntryCrc">Check each v1 entry's own CRC (verify does; open relies on the whole-file CRC).</param>
        public Reader(ReadOnlySpan<byte> body, bool checkEntryCrc = true)
        {
            _body = body;
            _checkEntryCrc = checkEntryCrc;
            _version = body.Length >= HeaderSize ? VersionOf(body) : Version;
            _next = body.Length >= HeaderSize ? BinaryPrimitives.ReadUInt32LittleEndian(body[12..]) : 0;
            Position = HeaderSize;
        }

        public int Position { get; private set; }
        public string? Error { get; private set; }

        /// <summary>Decodes the entry at <paramref name="position"/> of a hint that <see cref="Validate"/> accepted (no checks).
        /// The entry's offset is not decoded (version 2 does not store it): take it from a walk with <see cref="Next"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public static void ReadValidated(ReadOnlySpan<byte> hint, ushort version, int position, out RecordKind kind, out uint length, out ulong sequence,
            out long expiresAt, out ReadOnlySpan<byte> key)
        {
            var span = hint[position..];
            if (version == 1)
            {
                var expiry = (span[5] & HasExpiryFlag) != 0 ? 8 : 0;
                kind = (RecordKind)span[4];
                length = BinaryPrimitives.ReadUInt32LittleEndian(span[12..]);
                sequence = BinaryPrimitives.ReadUInt64LittleEndian(span[16..]);
                expiresAt = expiry != 0 ? BinaryPrimitives.ReadInt64LittleEndian(span[24..]) : 0;
                key = span.Slice(EntryHeaderSizeV1 + expiry, BinaryPrimitives.ReadUInt16LittleEndian(span[6..]));
            }
            else
            {
                var expiry = (span[0] & ExpiryBit) != 0 ? 8 : 0;
                kind = (RecordKind)(span[0] & KindMask);
                length = BinaryPrimitives.ReadUInt32LittleEndian(span[3..]);
                sequence = BinaryPrimitives.ReadUInt64LittleEndian(span[7..]);
                expiresAt = expiry != 0 ? BinaryPrimitives.ReadInt64LittleEndian(span[EntryHeaderSize..]) : 0;
                key = span.Slice(EntryHeaderSize + expiry, BinaryPrimitives.ReadUInt16LittleEndian(span[1..]));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
        public bool Next(out HintEntry entry, out ReadOnlySpan<byte> key, out string? error)
        {
            entry = default;
            key = default;
            error = null;
            if (Position >= _body.Length) return false;
            var rest = _body[Position..];
            return _version == 1 ? NextV1(rest, out entry, out key, out error) : NextV2(rest, out entry, out key, out error);
        }

        private bool NextV2(ReadOnlySpan<byte> rest, out HintEntry entry, out ReadOnlySpan<byte> key, out string? error)
        {
            entry = default;
            key = default;
            error = null;
            if (rest.Length < EntryHeaderSize) { Error = error = $"hint entry at offset {Position} is cut short"; return false; }
            var first = rest[0];
            var kind = (RecordKind)(first & KindMask);
            var gap = (first & GapMask) >> GapShift;
            if (kind is not (RecordKind.Put or RecordKind.Tombstone) || gap > 2 || (first & ~(KindMask | ExpiryBit | GapMask)) != 0)
            {
                Error = error = $"hint entry at offset {Position}: unknown kind {(int)kind}, gap {gap} or flags 0x{first:x2}";
                return false;
            }
            var expiry = (first & ExpiryBit) != 0 ? 8 : 0;
            var keyLength = BinaryPrimitives.ReadUInt16LittleEndian(rest[1..]);
            if (rest.Length < EntryHeaderSize + expiry + keyLength) { Error = error = $"hint entry at offset {Position} is cut short"; return false; }
            var offset = _next + gap * GapUnit;
            var length = BinaryPrimitives.ReadUInt32LittleEndian(rest[3..]);
            if (offset + length > uint.MaxValue) { Error = error = $"hint entry at offset {Position} describes a record past 4 GiB (offset {offset}, length {length})"; return false; }
            entry = new HintEntry(kind, (uint)offset, length, BinaryPrimitives.ReadUInt64LittleEndian(rest[7..]),
                expiry != 0 ? BinaryPrimitives.ReadInt64LittleEndian(rest[EntryHeaderSize..]) : 0);
            key = rest.Slice(EntryHeaderSize + expiry, keyLength);
            _next = offset + length;
            Position += EntryHeaderSize + expiry + keyLength;
            return true;
        }

        private bool NextV1(ReadOnlySpan<byte> rest, out HintEntry entry, out ReadOnlySpan<byte> key, out string? error)
        {
            entry = default;
            key = default;
            error = null;
            if (rest.Length < EntryHeaderSizeV1) { Error = error = $"hint entry at offset {Position} is cut short"; return false; }
            var keyLength = BinaryPrimitives.ReadUInt16LittleEndian(rest[6..]);
            var flags = rest[5];
            var expiry = (flags & HasExpiryFlag) != 0 ? 8 : 0;
            if (rest.Length < EntryHeaderSizeV1 + expiry + keyLength) { Error = error = $"hint entry at offset {Position} is cut short"; return false; }
            var span = rest[..(EntryHeaderSizeV1 + expiry + keyLength)];
            if (_checkEntryCrc && BinaryPrimitives.ReadUInt32LittleEndian(span) != Crc32.HashToUInt32(span[4..])) { Error = error = $"hint entry at offset {Position}: CRC mismatch"; return false; }
            var kind = (RecordKind)span[4];
            if (kind is not (RecordKind.Put or RecordKind.Tombstone) || (flags & ~HasExpiryFlag) != 0) { Error = error = $"hint entry at offset {Position}: unknown kind {(byte)kind} or flags 0x{flags:x2}"; return false; }
            entry = new HintEntry(kind, BinaryPrimitives.ReadUInt32LittleEndian(span[8..]), BinaryPrimitives.ReadUInt32LittleEndian(span[12..]),
                BinaryPrimitives.ReadUInt64LittleEndian(span[16..]), expiry != 0 ? BinaryPrimitives.ReadInt64LittleEndian(span[24..]) : 0);
            key = span[(EntryHeaderSizeV1 + expiry)..];
            Position += span.Length;
            return true;
        }
    }
}
