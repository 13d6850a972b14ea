using Bitcask.Format;

namespace Bitcask;

/// <summary>
/// Reads changes back from the log for a watch that starts at an earlier revision. Every record at or above the
/// compaction horizon is still in a write segment (compaction only ever merges records below it), in revision order
/// across segments in id order; records below the horizon may be gone, so a watch from there throws
/// <see cref="RevisionCompactedException"/>.
/// <para>Thread-safety: stateless; segments are read under their reader references.</para>
/// </summary>
internal static class LogReplay
{
    /// <summary>The oldest revision whose changes the log holds in full: one above the highest base sequence of any
    /// compaction output (an output's base sequence is the highest sequence among its inputs).</summary>
    public static ulong Horizon(SegmentSet segments)
    {
        ulong horizon = 1;
        foreach (var s in segments.Snapshot())
            if (s.Header.Kind == SegmentKind.Compacted) horizon = Math.Max(horizon, s.Header.BaseSequence + 1);
        return horizon;
    }

    /// <summary>The changes with revisions in [<paramref name="from"/>, <paramref name="to"/>] under <paramref name="prefix"/>,
    /// in revision order.</summary>
    public static List<WatchEvent> Read(SegmentSet segments, ReadOnlySpan<byte> prefix, ulong from, ulong to)
    {
        var result = new List<WatchEvent>();
        byte[]? scratch = null;
        foreach (var segment in segments.Snapshot())
        {
            if (segment.Header.Kind != SegmentKind.Write || segment.MaxSequence < from || segment.MinSequence > to) continue;
            if (!segment.TryAcquire()) continue; // compacted away meanwhile: its records are below the horizon
            try
            {
                // The flushed part through the mapping, then what is still in the write buffer (they meet at a record boundary).
                var fileLength = segment.FileLength;
                Scan(segment.Read(0, (int)fileLength, ref scratch), segment.Header.Size, prefix, from, to, result);
                var total = segment.Length;
                if (total > fileLength)
                {
                    byte[]? tail = null;
                    Scan(segment.Read(fileLength, (int)(total - fileLength), ref tail), 0, prefix, from, to, result);
                }
            }
            finally
            {
                segment.Release();
            }
        }
        result.Sort((a, b) => a.Revision.CompareTo(b.Revision));
        return result;
    }

    private static void Scan(ReadOnlySpan<byte> data, int start, ReadOnlySpan<byte> prefix, ulong from, ulong to, List<WatchEvent> into)
    {
        var scanner = new SegmentScanner(data, start, RecordLimits.V2);
        while (scanner.Next(out _, out var record))
        {
            var entries = new RecordEntries(record, 0);
            while (entries.Next(out _, out var entry))
            {
                var sequence = RecordCodec.ReadSequence(entry);
                if (sequence < from || sequence > to) continue;
                var key = RecordCodec.Key(entry);
                if (!key.StartsWith(prefix) || Leases.IsReserved(key)) continue;
                into.Add(ToEvent(entry));
            }
        }
    }

    /// <summary>The event one applied put or tombstone stands for.</summary>
    public static WatchEvent ToEvent(ReadOnlySpan<byte> entry)
    {
        var kind = RecordCodec.ReadKind(entry);
        byte[]? value = null;
        if (kind == RecordKind.Put)
        {
            value = new byte[RecordCodec.RawValueLength(entry)];
            RecordCodec.TryDecodeValue(entry, value);
        }
        var eventKind = kind == RecordKind.Put ? WatchEventKind.Put
            : (RecordCodec.ReadFlags(entry) & RecordFlags.Expired) != 0 ? WatchEventKind.Expire : WatchEventKind.Delete;
        return new WatchEvent(eventKind, RecordCodec.Key(entry).ToArray(), value, (long)RecordCodec.ReadSequence(entry),
            (long)(RecordCodec.ReadPreviousVersion(entry) ?? 0));
    }
}
