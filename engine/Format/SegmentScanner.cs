using System.Runtime.CompilerServices;
using System.Buffers.Binary;

namespace Bitcask.Format;

/// <summary>
/// Walks the records of a segment's bytes in file order, validating each (lengths against the limits before anything
/// else, then the CRC, and for a batch every nested record). Stops at the first invalid record and says why.
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

    /// <summary>Moves past a damaged region: to the next offset after <paramref name="bad"/> where a whole valid record
    /// starts, or to the end. Returns that offset, or -1 when nothing valid follows.</summary>
    public int SkipTo(int bad)
    {
        var next = FindNextValidAfter(_data, bad, _limits);
        Position = next < 0 ? _data.Length : next;
        return next;
    }

    /// <summary>
    /// The first whole valid record after the invalid record at <paramref name="bad"/>, or -1 when there is none (a torn
    /// tail). The entries nested in a batch are valid records themselves, so when the bad record is a batch whose entries
    /// run on intact up to the damage (a batch torn by a crash), the search starts where that chain breaks: a torn batch
    /// at the end of a file is a torn tail, not damage followed by valid data.
    /// </summary>
    public static int FindNextValidAfter(ReadOnlySpan<byte> data, int bad, RecordLimits limits)
    {
        var from = bad + 1;
        if (bad + RecordCodec.HeaderSize <= data.Length && (RecordKind)data[bad + 4] == RecordKind.Batch)
        {
            var p = bad + RecordCodec.HeaderSize;
            while (p < data.Length)
            {
                var rest = data[p..];
                var check = RecordCodec.CheckHeader(rest, rest.Length, limits, nested: true);
                if (!check.IsValid || RecordCodec.CheckBody(rest[..check.Length], limits) is not null) break;
                p += check.Length;
            }
            if (p > bad + RecordCodec.HeaderSize) from = p;
        }
        return FindNextValid(data, from, limits);
    }

    /// <summary>The first offset at or after <paramref name="from"/> where a whole valid record starts, or -1.
    /// Used to tell a torn tail (nothing valid after the first bad byte) from damage in the middle of a file.</summary>
    public static int FindNextValid(ReadOnlySpan<byte> data, int from, RecordLimits limits)
    {
        for (var p = from; p + RecordCodec.HeaderSize <= data.Length; p++)
        {
            var kind = data[p + 4];
            if (kind is < 1 or > 3 || (data[p + 5] & ~(int)RecordFlags.Known) != 0) continue; // cheap rejects first
            var rest = data[p..];
            var check = RecordCodec.CheckHeader(rest, rest.Length, limits);
            if (!check.IsValid) continue;
            if (RecordCodec.CheckBody(rest[..check.Length], limits) is null) return p;
        }
        return -1;
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
        var length = RecordCodec.HeaderSize + (int)RecordCodec.ReadKeyLength(rest) + (int)RecordCodec.ReadValueLength(rest);
        offset = _recordOffset + _position;
        entry = rest[..length];
        _position += length;
        return true;
    }
}
