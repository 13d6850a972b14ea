using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask;

/// <summary>
/// Follows a writer's log from another (read-only) open: each <see cref="Poll"/> lists the segments, reads what was
/// appended to each write segment past the last whole record seen in it, and returns the changes at or above a revision.
/// A segment's header is read once; a compaction output is never read past its header; a write segment that a newer one
/// has sealed is not opened again once read to its end. A record being appended at that moment ends the read of its
/// segment early; the next poll reads it whole.
/// <para>Thread-safety: one watch polls it at a time.</para>
/// </summary>
internal sealed class LogTail(IStorageFileSystem fs, string directory)
{
    private sealed class Known(SegmentHeader header)
    {
        public readonly SegmentHeader Header = header;
        public long ReadUpTo = header.Size;
        public bool Finished; // sealed by a newer write segment and read to its end
    }

    private readonly Dictionary<uint, Known> _segments = [];
    private ulong _horizon = 1;

    public List<WatchEvent> Poll(ReadOnlySpan<byte> prefix, ulong from, out ulong horizon)
    {
        var events = new List<WatchEvent>();
        var listed = new List<uint>();
        foreach (var name in fs.ListFiles(directory).Order(StringComparer.Ordinal))
            if (StoreFiles.TryParseId(name, StoreFiles.SegmentExtension, out var id)) listed.Add(id);
        foreach (var gone in _segments.Keys.Except(listed).ToList()) _segments.Remove(gone); // compacted away
        foreach (var id in listed)
        {
            if (_segments.TryGetValue(id, out var known) && (known.Finished || known.Header.Kind == SegmentKind.Compacted)) continue;
            var newerWrite = _segments.Any(kv => kv.Key > id && kv.Value.Header.Kind == SegmentKind.Write);
            try
            {
                using var file = fs.OpenFile(Path.Combine(directory, StoreFiles.SegmentName(id)), StorageOpenMode.ReadOnly);
                var length = Math.Min(file.Length, int.MaxValue);
                if (known is null)
                {
                    if (ReadHeader(file, length) is not { } header) continue; // being created, or not ours to follow
                    _segments[id] = known = new Known(header);
                    if (header.Kind == SegmentKind.Compacted)
                    {
                        _horizon = Math.Max(_horizon, header.BaseSequence + 1);
                        continue;
                    }
                }
                if (length > known.ReadUpTo)
                {
                    var bytes = new byte[length - known.ReadUpTo];
                    bytes = bytes[..file.Read(known.ReadUpTo, bytes)];
                    known.ReadUpTo += Collect(bytes, known.Header.Version, prefix, from, events);
                }
                known.Finished = newerWrite && known.ReadUpTo == length;
            }
            catch (IOException)
            {
                // compacted away between listing and opening
            }
        }
        events.Sort((a, b) => a.Revision.CompareTo(b.Revision));
        horizon = _horizon;
        return events;
    }

    /// <summary>The segment's header, or null when the file does not (yet) hold a valid one.</summary>
    private static SegmentHeader? ReadHeader(IStorageFile file, long length)
    {
        if (length < SegmentHeader.FixedSize) return null;
        var head = new byte[SegmentHeader.FixedSize];
        if (file.Read(0, head) < head.Length) return null;
        var size = SegmentHeader.TotalSize(head);
        if (size < 0 || size > length) return null;
        if (size > head.Length)
        {
            head = new byte[size];
            if (file.Read(0, head) < head.Length) return null;
        }
        return SegmentHeader.TryDecode(head, out _, out _);
    }

    /// <summary>Adds the changes in the whole records of <paramref name="bytes"/>; returns how many bytes they span.</summary>
    private static int Collect(ReadOnlySpan<byte> bytes, ushort version, ReadOnlySpan<byte> prefix, ulong from, List<WatchEvent> into)
    {
        var scanner = new SegmentScanner(bytes, 0, RecordLimits.For(version));
        while (scanner.Next(out _, out var record))
        {
            var entries = new RecordEntries(record, 0);
            while (entries.Next(out _, out var entry))
            {
                var key = RecordCodec.Key(entry);
                if (RecordCodec.ReadSequence(entry) >= from && key.StartsWith(prefix) && !Leases.IsReserved(key)) into.Add(LogReplay.ToEvent(entry));
            }
        }
        return scanner.Position;
    }
}
