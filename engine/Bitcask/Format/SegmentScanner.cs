using System.Runtime.CompilerServices;
using System.Buffers.Binary;

namespace Bitcask.Format;

/// <summary>
/// Walks the records of a segment's bytes in file order, validating each (lengths against the format's limits before
/// anything else, then the CRC, and for a batch every nested record). Stops at the first invalid record and says why.
/// It judges nothing: what an invalid record means (torn tail, damage, a salvageable batch) is decided in one place,
/// <see cref="Bitcask.Analysis.SegmentLayout"/>. Used as is only where every record must be valid (hint building,
/// compaction inputs).
/// </summary>
internal ref struct SegmentScanner
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly RecordLimits _limits;

    public SegmentScanner(ReadOnlySpan<byte> data, int start, RecordLimits limits)
    {
        _data = data;
        _limits = limits;
        Position = start;
    }

    /// <summary>Offset of the next record to read (after a failure: of the record that failed).</summary>
    public int Position { get; private set; }
    /// <summary>Why the last <see cref="Next"/> returned false; null at a clean end of data.</summary>
    public string? Error { get; private set; }

    /// <summary>Reads the next record. False at the end of the data or at an invalid record (see <see cref="Error"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    public bool Next(out int offset, out ReadOnlySpan<byte> record)
    {
        offset = Position;
        record = default;
        Error = null;
        if (Position >= _data.Length) return false;
        var rest = _data[Position..];
        var check = RecordCodec.CheckHeader(rest, rest.Length, _limits);
        if (!check.IsValid)
        {
            Error = check.Error;
            return false;
        }
        var candidate = rest[..check.Length];
        var problem = RecordCodec.CheckBody(candidate, _limits);
        if (problem is not null)
        {
            Error = problem;
            return false;
        }
        record = candidate;
        Position += check.Length;
        return true;
    }
}

/// <summary>
/// The puts and tombstones in one validated record: the record itself, or each record nested in a batch; none for a
/// sync marker.
/// Offsets are absolute within the segment.
/// </summary>
internal ref struct RecordEntries
{
    private readonly ReadOnlySpan<byte> _record;
    private readonly int _recordOffset;
    private int _position;
    private readonly bool _isBatch;
    private bool _done;

    public RecordEntries(ReadOnlySpan<byte> record, int recordOffset)
    {
        _record = record;
        _recordOffset = recordOffset;
        _isBatch = RecordCodec.ReadKind(record) == RecordKind.Batch;
        _position = _isBatch ? RecordCodec.HeaderSize : 0;
        _done = RecordCodec.ReadKind(record) == RecordKind.SyncMarker; // a marker holds no entry
    }

    public bool Next(out int offset, out ReadOnlySpan<byte> entry)
    {
        if (!_isBatch)
        {
            offset = _recordOffset;
            entry = _record;
            if (_done) return false;
            _done = true;
            return true;
        }
        if (_position >= _record.Length)
        {
            offset = 0;
            entry = default;
            return false;
        }
        var rest = _record[_position..];
        var length = RecordCodec.HeaderSize + (int)RecordCodec.ReadKeyLength(rest) + (int)RecordCodec.ReadValueLength(rest)
                     + RecordCodec.TrailerSize(RecordCodec.ReadFlags(rest));
        offset = _recordOffset + _position;
        entry = rest[..length];
        _position += length;
        return true;
    }
}
