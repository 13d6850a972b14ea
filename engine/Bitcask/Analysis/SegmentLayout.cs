using System.Runtime.CompilerServices;
using Bitcask.Format;

namespace Bitcask.Analysis;

/// <summary>What a stretch of a segment file is, as <see cref="SegmentLayout"/> judges it.</summary>
internal enum RangeKind : byte
{
    /// <summary>A valid top-level record (put, tombstone or whole batch): kept.</summary>
    Record,
    /// <summary>A valid sync marker (format version 2): kept, holds no entry.</summary>
    SyncMarker,
    /// <summary>An intact entry of a damaged batch that was proven committed: kept as if it were a record of its own.</summary>
    SalvagedEntry,
    /// <summary>Bytes that fail validation and are not a torn tail: dropped, reported.</summary>
    Damage,
    /// <summary>The unsynced end of the newest write segment, torn by a crash: cut, reported.</summary>
    TornTail,
}

/// <summary>
/// One stretch of a segment. <see cref="Offset"/>/<see cref="Length"/> is the byte range; for damage,
/// <see cref="ProblemOffset"/> is where the record that failed validation starts (a damaged entry inside a batch names
/// the entry, not the batch) and <see cref="Error"/> says what failed.
/// </summary>
internal readonly record struct LayoutItem(RangeKind Kind, int Offset, int Length, int ProblemOffset = 0, string? Error = null)
{
    public int End => Offset + Length;
    public bool IsKept => Kind is RangeKind.Record or RangeKind.SyncMarker or RangeKind.SalvagedEntry;
}

/// <summary>Receives what <see cref="SegmentLayout.Walk"/> finds, in file order.</summary>
internal interface ILayoutSink
{
    /// <summary>A put or tombstone that readers of the store see: a record, an entry of a valid batch, or a salvaged entry.
    /// <paramref name="batchOffset"/> is the enclosing batch's offset, or -1.</summary>
    void Entry(ReadOnlySpan<byte> entry, int offset, int batchOffset);

    /// <summary>Every item of the layout (records, markers, salvaged entries, damage, torn tail) in file order.</summary>
    void Item(in LayoutItem item);
}

/// <summary>What one segment holds, once walked.</summary>
internal sealed class SegmentVerdict
{
    /// <summary>Where the valid data ends: the file length, or the start of a torn tail.</summary>
    public int ValidEnd { get; set; }
    /// <summary>The torn tail, when the segment ends in one.</summary>
    public LayoutItem? TornTail { get; set; }
    /// <summary>True when the torn tail holds a valid record after its first bad byte (its bytes go to quarantine when cut).</summary>
    public bool TornTailHoldsRecords { get; set; }
    /// <summary>Damaged ranges (not the torn tail), in file order.</summary>
    public List<LayoutItem> Damage { get; } = [];
    public ulong MinSequence { get; set; }
    public ulong MaxSequence { get; set; }
}

/// <summary>
/// The one judge of a segment's bytes (FORMAT.md §5): walks the records from the end of the header and classifies every
/// byte as record, sync marker, salvaged batch entry, damage or torn tail, using only the format's own limits
/// (<see cref="RecordLimits.For"/>), never the options of an open. Open (read-write and read-only), verify, dump and
/// repair all walk segments through here, so they never disagree on what a byte is. Changes nothing.
/// <para>The rules, in the order applied at the first invalid byte X:</para>
/// <list type="number">
/// <item>The extent of the bad record: a batch whose header is plausible (kind, zero key length and flags, length inside
/// the file) and whose entries tile it exactly spans its header's length; a batch whose header is not spans the unbroken
/// chain of intact entries after its header; anything else spans to the next offset where a whole valid record starts
/// (searched byte by byte).</item>
/// <item>Torn tail: only in the newest write segment, only without a proof that the file was durable (a whole hint), and
/// only when no valid record after the bad record carries a durable length above X (none was written after X was
/// fsynced). Everything from X on is the tail.</item>
/// <item>Otherwise damage. A damaged batch whose bytes were proven durable (a sealed segment, a whole hint, or a later
/// record's durable length reaching its end) was committed: its intact entries are kept and each damaged piece reported.
/// A batch not proven committed is dropped whole.</item>
/// </list>
/// </summary>
internal static class SegmentLayout
{
    /// <param name="data">The whole segment file.</param>
    /// <param name="recordsStart">The end of the segment header.</param>
    /// <param name="limits">The format's limits for the segment's version.</param>
    /// <param name="mayHaveTornTail">True for the newest write segment when nothing proves it durable.</param>
    /// <param name="sink">Receives every kept entry and every item, in file order.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a million times during open, before tiered JIT would optimize it
    public static SegmentVerdict Walk<TSink>(ReadOnlySpan<byte> data, int recordsStart, in RecordLimits limits, bool mayHaveTornTail, ref TSink sink)
        where TSink : ILayoutSink, allows ref struct
    {
        var verdict = new SegmentVerdict { ValidEnd = data.Length };
        ulong min = ulong.MaxValue, max = 0;
        var position = Math.Min(recordsStart, data.Length);
        while (position < data.Length)
        {
            var rest = data[position..];
            var check = RecordCodec.CheckHeader(rest, rest.Length, limits);
            var error = check.IsValid ? RecordCodec.CheckBody(rest[..check.Length], limits) : check.Error;
            if (error is null)
            {
                var record = rest[..check.Length];
                var kind = RecordCodec.ReadKind(record);
                sink.Item(new LayoutItem(kind == RecordKind.SyncMarker ? RangeKind.SyncMarker : RangeKind.Record, position, record.Length));
                var entries = new RecordEntries(record, position);
                var batchOffset = kind == RecordKind.Batch ? position : -1;
                while (entries.Next(out var entryOffset, out var entry))
                {
                    var sequence = RecordCodec.ReadSequence(entry);
                    if (sequence < min) min = sequence;
                    if (sequence > max) max = sequence;
                    sink.Entry(entry, entryOffset, batchOffset);
                }
                position += record.Length;
                continue;
            }

            var bad = position;
            var batch = RecordCodec.HeaderSize <= rest.Length && (RecordKind)rest[4] == RecordKind.Batch
                ? DamagedBatch.Find(data, bad, limits)
                : default;
            if (batch.IsBatch && !batch.Aligned && batch.IntactEntries == 0) batch = default; // nothing batch-like follows its header
            var extentEnd = batch.IsBatch ? batch.End : -1;
            var after = batch.IsBatch ? FindNextValid(data, batch.End, limits) : FindNextValid(data, bad + 1, limits);
            if (mayHaveTornTail && MaxDurableLengthFrom(data, after, limits, stopAbove: (uint)bad) <= (uint)bad)
            {
                var tail = new LayoutItem(RangeKind.TornTail, bad, data.Length - bad, bad, error);
                sink.Item(tail);
                verdict.TornTail = tail;
                verdict.TornTailHoldsRecords = after >= 0 || (batch.IsBatch && batch.IntactEntries > 0);
                verdict.ValidEnd = bad;
                break;
            }
            if (!batch.IsBatch)
            {
                var end = after < 0 ? data.Length : after;
                var item = new LayoutItem(RangeKind.Damage, bad, end - bad, bad, error);
                sink.Item(item);
                verdict.Damage.Add(item);
                position = end;
                continue;
            }
            // A damaged batch: committed when its bytes were durable, i.e. not in a segment that may hold a torn tail, or a
            // later record was written after its end had been fsynced.
            var committed = !mayHaveTornTail || MaxDurableLengthFrom(data, after, limits, stopAbove: (uint)extentEnd - 1) >= (uint)extentEnd;
            if (committed && batch.IntactEntries > 0)
                batch.Salvage(data, limits, ref sink, verdict, ref min, ref max, error);
            else
            {
                var item = new LayoutItem(RangeKind.Damage, bad, extentEnd - bad, batch.FirstProblemOffset,
                    $"{batch.FirstProblem ?? error}; the batch at {bad} ({extentEnd - bad} bytes) is dropped whole: " +
                    (committed ? "none of its entries is intact" : "nothing proves it was committed"));
                sink.Item(item);
                verdict.Damage.Add(item);
            }
            position = extentEnd;
        }
        verdict.MinSequence = min == ulong.MaxValue ? 0 : min;
        verdict.MaxSequence = max;
        return verdict;
    }

    /// <summary>
    /// The largest durable length carried by any valid record at or after <paramref name="from"/> (0 when there is none,
    /// or <paramref name="from"/> is -1). Stops early once one exceeds <paramref name="stopAbove"/>.
    /// </summary>
    public static uint MaxDurableLengthFrom(ReadOnlySpan<byte> data, int from, in RecordLimits limits, uint stopAbove)
    {
        uint max = 0;
        var next = from;
        while (next >= 0 && next < data.Length)
        {
            var rest = data[next..];
            var check = RecordCodec.CheckHeader(rest, rest.Length, limits);
            if (!check.IsValid || RecordCodec.CheckBody(rest[..check.Length], limits) is not null)
            {
                next = FindNextValid(data, next + 1, limits);
                continue;
            }
            max = Math.Max(max, RecordCodec.ReadDurableLength(rest));
            if (max > stopAbove) return max;
            next += check.Length;
        }
        return max;
    }

    /// <summary>The first offset at or after <paramref name="from"/> where a whole valid top-level record starts, or -1.</summary>
    public static int FindNextValid(ReadOnlySpan<byte> data, int from, in RecordLimits limits)
    {
        for (var p = from; p + RecordCodec.HeaderSize <= data.Length; p++)
        {
            var kind = data[p + 4];
            if (kind is < 1 or > 4 || (data[p + 5] & ~(int)RecordFlags.Known) != 0) continue; // cheap rejects first
            var rest = data[p..];
            var check = RecordCodec.CheckHeader(rest, rest.Length, limits);
            if (!check.IsValid) continue;
            if (RecordCodec.CheckBody(rest[..check.Length], limits) is null) return p;
        }
        return -1;
    }

    private static bool IsValidRecordAt(ReadOnlySpan<byte> data, int offset, in RecordLimits limits)
    {
        var rest = data[offset..];
        var check = RecordCodec.CheckHeader(rest, rest.Length, limits);
        return check.IsValid && RecordCodec.CheckBody(rest[..check.Length], limits) is null;
    }

    /// <summary>An intact entry nested at <paramref name="offset"/>, bounded by <paramref name="limit"/>: its length, or 0.</summary>
    internal static int IntactEntryAt(ReadOnlySpan<byte> data, int offset, int limit, in RecordLimits limits)
    {
        if (offset + RecordCodec.HeaderSize > limit) return 0;
        var rest = data[offset..limit];
        var check = RecordCodec.CheckHeader(rest, rest.Length, limits, nested: true);
        if (!check.IsValid) return 0;
        var entry = rest[..check.Length];
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(entry) == RecordCodec.ComputeCrc(entry) ? check.Length : 0;
    }

    /// <summary>
    /// The extent of a batch that failed validation, and which of its entries are intact. With a plausible header (zero
    /// key length and flags, at least one entry's worth of value, ending inside the file) whose entries tile it exactly
    /// (a damaged entry is skipped to the next intact entry inside the batch), the batch spans its header's length.
    /// Otherwise its end cannot be known: it spans the unbroken chain of intact entries after its header.
    /// </summary>
    private readonly struct DamagedBatch
    {
        public bool IsBatch { get; private init; }
        public int Offset { get; private init; }
        public int End { get; private init; }
        public int IntactEntries { get; private init; }
        public int FirstProblemOffset { get; private init; }
        public string? FirstProblem { get; private init; }
        public bool Aligned { get; private init; }

        public static DamagedBatch Find(ReadOnlySpan<byte> data, int bad, in RecordLimits limits)
        {
            var header = data[bad..];
            var valueLength = (long)RecordCodec.ReadValueLength(header);
            var declaredEnd = bad + RecordCodec.HeaderSize + valueLength;
            var plausible = RecordCodec.ReadKeyLength(header) == 0 && RecordCodec.ReadFlags(header) == RecordFlags.None
                            && valueLength >= RecordCodec.HeaderSize && declaredEnd <= data.Length;
            var limit = plausible ? (int)declaredEnd : data.Length;
            var p = bad + RecordCodec.HeaderSize;
            var intact = 0;
            int? problemAt = null;
            string? problem = null;
            while (p < limit)
            {
                var length = IntactEntryAt(data, p, limit, limits);
                if (length > 0)
                {
                    intact++;
                    p += length;
                    continue;
                }
                problemAt ??= p;
                problem ??= "batch entry at " + p + ": " + EntryError(data, p, limit, limits);
                if (!plausible) break; // the chain ends at the first entry that is not intact
                var q = p + 1;
                while (q < limit && IntactEntryAt(data, q, limit, limits) == 0) q++;
                p = q;
            }
            // Aligned: the entries end exactly at the header's length, and there the file ends or a whole valid record
            // starts. A length field damaged to another value inside the file otherwise passes for aligned by skipping the
            // entry that straddles the false end as "damaged".
            var aligned = plausible && p == limit && (limit == data.Length || IsValidRecordAt(data, limit, limits));
            if (plausible && !aligned)
            {
                // The header's length does not match its entries: judge it as a batch whose end is unknown.
                return FindChain(data, bad, limits);
            }
            return new DamagedBatch
            {
                IsBatch = true, Offset = bad, End = p, IntactEntries = intact, Aligned = aligned,
                FirstProblemOffset = problemAt ?? bad,
                FirstProblem = problem ?? (aligned ? "batch CRC mismatch with every entry intact: the batch header is damaged" : null),
            };
        }

        /// <summary>A batch whose end cannot be known: it spans the unbroken chain of intact entries after its header.</summary>
        private static DamagedBatch FindChain(ReadOnlySpan<byte> data, int bad, in RecordLimits limits)
        {
            var p = bad + RecordCodec.HeaderSize;
            var intact = 0;
            while (p < data.Length && IntactEntryAt(data, p, data.Length, limits) is var length and > 0)
            {
                intact++;
                p += length;
            }
            return new DamagedBatch
            {
                IsBatch = true, Offset = bad, End = Math.Max(p, Math.Min(bad + RecordCodec.HeaderSize, data.Length)), IntactEntries = intact,
                FirstProblemOffset = bad, FirstProblem = "batch header length does not match its entries",
            };
        }

        private static string EntryError(ReadOnlySpan<byte> data, int offset, int limit, in RecordLimits limits)
        {
            var rest = data[offset..limit];
            var check = RecordCodec.CheckHeader(rest, rest.Length, limits, nested: true);
            return check.IsValid ? "CRC mismatch" : check.Error!;
        }

        /// <summary>Keeps every intact entry of a committed batch and reports each damaged piece.</summary>
        public void Salvage<TSink>(ReadOnlySpan<byte> data, in RecordLimits limits, ref TSink sink, SegmentVerdict verdict,
            ref ulong min, ref ulong max, string batchError) where TSink : ILayoutSink, allows ref struct
        {
            var p = Offset + RecordCodec.HeaderSize;
            var damageStart = -1;
            string? damageError = null;
            if (Aligned && FirstProblemOffset == Offset)
                Report(ref sink, verdict, Offset, RecordCodec.HeaderSize, Offset, FirstProblem ?? batchError);
            else if (!Aligned)
                Report(ref sink, verdict, Offset, RecordCodec.HeaderSize, Offset, "batch header: " + (FirstProblem ?? batchError));
            while (p < End)
            {
                var length = IntactEntryAt(data, p, End, limits);
                if (length == 0)
                {
                    if (damageStart < 0)
                    {
                        damageStart = p;
                        damageError = EntryError(data, p, End, limits);
                    }
                    p++;
                    continue;
                }
                if (damageStart >= 0)
                {
                    Report(ref sink, verdict, damageStart, p - damageStart, damageStart, "batch entry: " + damageError);
                    damageStart = -1;
                }
                var entry = data.Slice(p, length);
                sink.Item(new LayoutItem(RangeKind.SalvagedEntry, p, length));
                var sequence = RecordCodec.ReadSequence(entry);
                if (sequence < min) min = sequence;
                if (sequence > max) max = sequence;
                sink.Entry(entry, p, Offset);
                p += length;
            }
            if (damageStart >= 0) Report(ref sink, verdict, damageStart, End - damageStart, damageStart, "batch entry: " + damageError);
        }

        private void Report<TSink>(ref TSink sink, SegmentVerdict verdict, int offset, int length, int problemOffset, string error)
            where TSink : ILayoutSink, allows ref struct
        {
            var item = new LayoutItem(RangeKind.Damage, offset, length, problemOffset,
                $"{error}; the batch at {Offset} was committed (proven durable), so its intact entries are kept");
            sink.Item(item);
            verdict.Damage.Add(item);
        }
    }
}
