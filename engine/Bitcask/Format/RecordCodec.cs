using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using System.IO.Hashing;
using K4os.Compression.LZ4;

namespace Bitcask.Format;

/// <summary>
/// Encodes and validates records. Layout (little-endian, FORMAT.md "Record"):
/// <code>
/// 0  u32 crc     CRC-32 of bytes [4, 32 + keyLength + valueLength)
/// 4  u8  kind    1 put, 2 tombstone, 3 batch
/// 5  u8  flags   bit 0: value is LZ4-compressed
/// 6  u16 keyLength
/// 8  u64 sequence
/// 16 i64 expiresAt  unix milliseconds, 0 = never
/// 24 u32 valueLength (stored bytes)
/// 28 u32 durableLength  bytes of this segment already fsynced when the record was written
/// 32 key, value
/// </code>
/// </summary>
internal static class RecordCodec
{
    public const int HeaderSize = 32;
    /// <summary>Bytes in front of an LZ4 block: the uncompressed length.</summary>
    public const int CompressedPrefixSize = 4;

    public static int EncodedSize(int keyLength, int storedValueLength) => HeaderSize + keyLength + storedValueLength;

    /// <summary>Writes the header fields except CRC and sequence (both filled by <see cref="Seal"/>).</summary>
    public static void WriteHeader(Span<byte> destination, RecordKind kind, RecordFlags flags, long expiresAt, int keyLength, int storedValueLength)
    {
        destination[4] = (byte)kind;
        destination[5] = (byte)flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], checked((ushort)keyLength));
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], expiresAt);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], (uint)storedValueLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[28..], 0);
    }

    /// <summary>
    /// Encodes a put or tombstone record without sequence and CRC. The value is compressed when it is at least
    /// <paramref name="compressionThreshold"/> bytes long (0 = never) and compression actually saves space.
    /// Returns the number of bytes written; <paramref name="destination"/> must hold <see cref="MaxEncodedSize"/>.
    /// </summary>
    public static int Encode(Span<byte> destination, RecordKind kind, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt, int compressionThreshold) =>
        Encode(destination, kind, key, value, expiresAt, compressionThreshold, RecordFlags.None, 0);

    /// <summary>
    /// Encodes a put with its version 2 trailers: <paramref name="trailers"/> may hold <see cref="RecordFlags.CreateRevision"/>
    /// (an 8-byte slot the write path stamps, <see cref="StampCreateRevision"/>) and <see cref="RecordFlags.Lease"/>
    /// (<paramref name="leaseId"/>); or a tombstone with <see cref="RecordFlags.Expired"/>.
    /// </summary>
    public static int Encode(Span<byte> destination, RecordKind kind, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt,
        int compressionThreshold, RecordFlags trailers, long leaseId)
    {
        key.CopyTo(destination[HeaderSize..]);
        var valueStart = HeaderSize + key.Length;
        var flags = RecordFlags.None;
        var stored = value.Length;
        if (compressionThreshold > 0 && value.Length >= compressionThreshold)
        {
            var target = destination.Slice(valueStart + CompressedPrefixSize, LZ4Codec.MaximumOutputSize(value.Length));
            var compressed = LZ4Codec.Encode(value, target, LZ4Level.L00_FAST);
            if (compressed > 0 && compressed + CompressedPrefixSize < value.Length)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(destination[valueStart..], (uint)value.Length);
                flags = RecordFlags.Lz4;
                stored = compressed + CompressedPrefixSize;
            }
        }
        if (flags == RecordFlags.None) value.CopyTo(destination[valueStart..]);
        var end = valueStart + stored;
        if ((trailers & RecordFlags.CreateRevision) != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[end..], 0);
            end += TrailerFieldSize;
        }
        if ((trailers & RecordFlags.Lease) != 0)
        {
            BinaryPrimitives.WriteInt64LittleEndian(destination[end..], leaseId);
            end += TrailerFieldSize;
        }
        if ((trailers & RecordFlags.PreviousVersion) != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[end..], 0);
            end += TrailerFieldSize;
        }
        WriteHeader(destination, kind, flags | trailers, expiresAt, key.Length, stored);
        return end;
    }

    /// <summary>Bytes of one trailer field (create revision, lease id).</summary>
    public const int TrailerFieldSize = 8;

    /// <summary>Bytes after the value: 8 per trailer flag set.</summary>
    public static int TrailerSize(RecordFlags flags) =>
        ((flags & RecordFlags.CreateRevision) != 0 ? TrailerFieldSize : 0) + ((flags & RecordFlags.Lease) != 0 ? TrailerFieldSize : 0)
        + ((flags & RecordFlags.PreviousVersion) != 0 ? TrailerFieldSize : 0);

    /// <summary>The key's version before this write (0: it was absent), when the record carries it; else null.</summary>
    public static ulong? ReadPreviousVersion(ReadOnlySpan<byte> record)
    {
        var flags = ReadFlags(record);
        if ((flags & RecordFlags.PreviousVersion) == 0) return null;
        return BinaryPrimitives.ReadUInt64LittleEndian(record[(TrailerStart(record) + TrailerSize(flags) - TrailerFieldSize)..]);
    }

    /// <summary>Writes the previous version into a record's trailer slot (before <see cref="Seal"/>).</summary>
    public static void StampPreviousVersion(Span<byte> record, ulong previousVersion)
    {
        var flags = ReadFlags(record);
        if ((flags & RecordFlags.PreviousVersion) != 0)
            BinaryPrimitives.WriteUInt64LittleEndian(record[(TrailerStart(record) + TrailerSize(flags) - TrailerFieldSize)..], previousVersion);
    }

    /// <summary>The revision that created the key: the create-revision trailer, or (records without one: version 1, or
    /// a put that created its key) the record's own sequence.</summary>
    public static ulong ReadCreateRevision(ReadOnlySpan<byte> record)
    {
        if ((ReadFlags(record) & RecordFlags.CreateRevision) == 0) return ReadSequence(record);
        var value = BinaryPrimitives.ReadUInt64LittleEndian(record[TrailerStart(record)..]);
        return value == 0 ? ReadSequence(record) : value;
    }

    /// <summary>The lease the put is attached to, 0 for none.</summary>
    public static long ReadLeaseId(ReadOnlySpan<byte> record)
    {
        var flags = ReadFlags(record);
        if ((flags & RecordFlags.Lease) == 0) return 0;
        var at = TrailerStart(record) + ((flags & RecordFlags.CreateRevision) != 0 ? TrailerFieldSize : 0);
        return BinaryPrimitives.ReadInt64LittleEndian(record[at..]);
    }

    /// <summary>Writes the create revision into a put's trailer slot (before <see cref="Seal"/> computes the CRC). 0 means
    /// "this put created the key": readers then report its own sequence.</summary>
    public static void StampCreateRevision(Span<byte> record, ulong createRevision)
    {
        if ((ReadFlags(record) & RecordFlags.CreateRevision) != 0)
            BinaryPrimitives.WriteUInt64LittleEndian(record[TrailerStart(record)..], createRevision);
    }

    private static int TrailerStart(ReadOnlySpan<byte> record) => HeaderSize + (int)ReadKeyLength(record) + (int)ReadValueLength(record);

    /// <summary>Upper bound of <see cref="Encode(Span{byte}, RecordKind, ReadOnlySpan{byte}, ReadOnlySpan{byte}, long, int, RecordFlags, long)"/>'s output for these lengths.</summary>
    public static int MaxEncodedSize(int keyLength, int valueLength, int compressionThreshold) =>
        HeaderSize + keyLength + 3 * TrailerFieldSize + (compressionThreshold > 0 && valueLength >= compressionThreshold
            ? Math.Max(valueLength, CompressedPrefixSize + LZ4Codec.MaximumOutputSize(valueLength))
            : valueLength);

    /// <summary>Stamps the sequence number, the segment's durable length, and then the CRC into an encoded record.</summary>
    public static void Seal(Span<byte> record, ulong sequence, uint durableLength = 0)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(record[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(record[28..], durableLength);
        BinaryPrimitives.WriteUInt32LittleEndian(record, Crc32.HashToUInt32(record[4..]));
    }

    public static uint ComputeCrc(ReadOnlySpan<byte> record) => Crc32.HashToUInt32(record[4..]);

    /// <summary>A sync marker (format version 2): 32 bytes, no key, value or sequence, <paramref name="syncedLength"/> in
    /// the durable-length field. Written right after an fdatasync that made the first <paramref name="syncedLength"/> bytes
    /// of the segment durable (FORMAT.md §2.2).</summary>
    public static void EncodeSyncMarker(Span<byte> destination, uint syncedLength)
    {
        WriteHeader(destination, RecordKind.SyncMarker, RecordFlags.None, 0, 0, 0);
        Seal(destination[..HeaderSize], 0, syncedLength);
    }

    public static RecordKind ReadKind(ReadOnlySpan<byte> header) => (RecordKind)header[4];
    public static RecordFlags ReadFlags(ReadOnlySpan<byte> header) => (RecordFlags)header[5];
    public static ulong ReadSequence(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
    public static long ReadExpiresAt(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
    public static uint ReadKeyLength(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt16LittleEndian(header[6..]);
    public static uint ReadValueLength(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt32LittleEndian(header[24..]);
    /// <summary>How many bytes of its segment were known durable (fsynced) when the record was written: lets recovery
    /// prove that damage followed by valid records is an unsynced tail torn by a crash, not rot of synced data.</summary>
    public static uint ReadDurableLength(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt32LittleEndian(header[28..]);

    /// <summary>
    /// Checks a record header against the limits before anything is allocated or read past it, so that a
    /// hostile length field can never cause a large allocation or an out-of-range read.
    /// Returns the record's total length, or an error describing what is wrong.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    public static RecordCheck CheckHeader(ReadOnlySpan<byte> header, long available, in RecordLimits limits, bool nested = false)
    {
        if (available < HeaderSize) return RecordCheck.Fail("record header is cut short");
        var kind = ReadKind(header);
        var known = kind is RecordKind.Put or RecordKind.Tombstone
                    || (!nested && (kind == RecordKind.Batch || (kind == RecordKind.SyncMarker && limits.SyncMarkers)));
        if (!known) return RecordCheck.Fail($"unknown record kind {(byte)kind}{(nested ? " inside a batch" : "")}");
        var flags = ReadFlags(header);
        var allowed = kind switch { RecordKind.Put => limits.PutFlags, RecordKind.Tombstone => limits.TombstoneFlags, _ => RecordFlags.None };
        if ((flags & ~allowed) != 0) return RecordCheck.Fail($"unknown record flags 0x{(byte)flags:x2} for a {kind.ToString().ToLowerInvariant()}");
        var keyLength = ReadKeyLength(header);
        var valueLength = ReadValueLength(header);
        if (kind == RecordKind.SyncMarker)
        {
            if (keyLength != 0 || valueLength != 0 || flags != RecordFlags.None || ReadExpiresAt(header) != 0 || ReadSequence(header) != 0)
                return RecordCheck.Fail("sync marker with a key, value, flags, expiry or sequence");
            return RecordCheck.Ok(HeaderSize);
        }
        long maxValue = kind switch
        {
            RecordKind.Batch => limits.MaxBatchBytes,
            RecordKind.Tombstone => 0,
            _ => limits.MaxValueBytes,
        };
        if (kind == RecordKind.Batch ? keyLength != 0 : keyLength > limits.MaxKeyBytes)
            return RecordCheck.Fail($"key length {keyLength} exceeds the limit {(kind == RecordKind.Batch ? 0 : limits.MaxKeyBytes)}");
        if (valueLength > maxValue) return RecordCheck.Fail($"value length {valueLength} exceeds the limit {maxValue}");
        if (kind == RecordKind.Batch && ReadExpiresAt(header) != 0) return RecordCheck.Fail("batch header carries an expiry");
        var total = HeaderSize + (long)keyLength + valueLength + TrailerSize(flags);
        if (total > available) return RecordCheck.Fail($"record of {total} bytes runs past the end of the data ({available} bytes left)");
        return RecordCheck.Ok((int)total);
    }

    /// <summary>Full validation of one record that <see cref="CheckHeader"/> accepted: CRC, and for a batch every nested record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    public static string? CheckBody(ReadOnlySpan<byte> record, in RecordLimits limits)
    {
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(record);
        if (stored != ComputeCrc(record)) return "CRC mismatch";
        if (ReadKind(record) == RecordKind.Batch)
        {
            var inner = record[HeaderSize..];
            var expected = ReadSequence(record);
            if (inner.IsEmpty) return "empty batch";
            while (!inner.IsEmpty)
            {
                var check = CheckHeader(inner, inner.Length, limits, nested: true);
                if (!check.IsValid) return "batch entry: " + check.Error;
                var entry = inner[..check.Length];
                if (BinaryPrimitives.ReadUInt32LittleEndian(entry) != ComputeCrc(entry)) return "batch entry: CRC mismatch";
                if (ReadSequence(entry) != expected) return "batch entry: sequence out of order";
                expected++;
                inner = inner[check.Length..];
            }
        }
        return null;
    }

    /// <summary>Length of the value a reader gets back (after decompression), or -1 when an LZ4 value cannot be decoded
    /// because it is too short to hold its <see cref="CompressedPrefixSize"/>-byte uncompressed length (or that length passes
    /// <see cref="int.MaxValue"/>). A CRC-valid record can say so, so callers treat -1 as damage.</summary>
    public static int RawValueLength(ReadOnlySpan<byte> record)
    {
        var valueLength = ReadValueLength(record);
        if ((ReadFlags(record) & RecordFlags.Lz4) == 0) return (int)valueLength;
        var start = HeaderSize + (int)ReadKeyLength(record);
        if (valueLength < CompressedPrefixSize || record.Length - start < CompressedPrefixSize) return -1;
        var rawLength = BinaryPrimitives.ReadUInt32LittleEndian(record[start..]);
        return rawLength > int.MaxValue ? -1 : (int)rawLength;
    }

    public static ReadOnlySpan<byte> Key(ReadOnlySpan<byte> record) => record.Slice(HeaderSize, (int)ReadKeyLength(record));

    public static ReadOnlySpan<byte> StoredValue(ReadOnlySpan<byte> record) =>
        record.Slice(HeaderSize + (int)ReadKeyLength(record), (int)ReadValueLength(record));

    /// <summary>Copies (or decompresses) the value into <paramref name="destination"/>, which holds <see cref="RawValueLength"/> bytes.
    /// Returns false when the value cannot be decoded: an LZ4 value shorter than its length prefix, or a compressed block
    /// that does not decode to exactly that length.</summary>
    public static bool TryDecodeValue(ReadOnlySpan<byte> record, Span<byte> destination)
    {
        var stored = StoredValue(record);
        if ((ReadFlags(record) & RecordFlags.Lz4) == 0)
        {
            stored.CopyTo(destination);
            return true;
        }
        if (stored.Length < CompressedPrefixSize) return false;
        var decoded = LZ4Codec.Decode(stored[CompressedPrefixSize..], destination);
        return decoded == destination.Length;
    }
}

/// <summary>The limits a record read from disk is checked against before anything is allocated.</summary>
/// <summary>
/// The limits a record read from disk is checked against before anything is allocated. Readers use the format's own
/// limits (<see cref="For"/>), never the options of the current open: <c>MaxKeyBytes</c>/<c>MaxValueBytes</c>/
/// <c>MaxSegmentBytes</c> bound new writes only, so a store written with larger limits still reads whole.
/// </summary>
internal readonly record struct RecordLimits(int MaxKeyBytes, int MaxValueBytes, long MaxBatchBytes, bool SyncMarkers = false,
    RecordFlags PutFlags = RecordFlags.Lz4, RecordFlags TombstoneFlags = RecordFlags.None)
{
    /// <summary>The format's limits for records in a segment of <paramref name="segmentVersion"/>: any u16 key length, any
    /// value or batch that fits in its segment (at most 2 GiB - 1 bytes); from version 2 on, sync markers, put trailers
    /// (create revision, lease) and the expired flag on tombstones.</summary>
    public static RecordLimits For(ushort segmentVersion) => segmentVersion >= 2 ? V2 : V1;

    public static readonly RecordLimits V1 = new(ushort.MaxValue, int.MaxValue, int.MaxValue);
    public static readonly RecordLimits V2 = V1 with
    {
        SyncMarkers = true,
        PutFlags = RecordFlags.Lz4 | RecordFlags.CreateRevision | RecordFlags.Lease | RecordFlags.PreviousVersion,
        TombstoneFlags = RecordFlags.Expired | RecordFlags.PreviousVersion,
    };
}

internal readonly struct RecordCheck
{
    public readonly int Length;
    public readonly string? Error;
    private RecordCheck(int length, string? error) { Length = length; Error = error; }
    public bool IsValid => Error is null;
    public static RecordCheck Ok(int length) => new(length, null);
    public static RecordCheck Fail(string error) => new(0, error);
}
