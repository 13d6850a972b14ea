using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask;

/// <summary>
/// Follows a writer's log from another (read-only) open: each <see cref="Poll"/> lists the write segments, reads what was
/// appended past the last whole record seen in each, and returns the changes at or above a revision. A record being
/// appended at that moment ends the read of its segment early; the next poll reads it whole.
/// <para>Thread-safety: one watch polls it at a time.</para>
/// </summary>
internal sealed class LogTail(IStorageFileSystem fs, string directory)
{
    private readonly Dictionary<uint, long> _readUpTo = [];

    public List<WatchEvent> Poll(ReadOnlySpan<byte> prefix, ulong from, out ulong horizon)
    {
        var events = new List<WatchEvent>();
        horizon = 1;
        foreach (var name in fs.ListFiles(directory).Order(StringComparer.Ordinal))
        {
            if (!StoreFiles.TryParseId(name, StoreFiles.SegmentExtension, out var id)) continue;
            // Only the header and what was appended since the last poll are read.
            SegmentHeader? header;
            byte[] bytes;
            int start;
            try
            {
                using var file = fs.OpenFile(Path.Combine(directory, name), StorageOpenMode.ReadOnly);
                var length = file.Length;
                if (length < SegmentHeader.FixedSize || length > int.MaxValue) continue;
                var head = new byte[SegmentHeader.FixedSize];
                if (file.Read(0, head) < head.Length) continue;
                var headerSize = SegmentHeader.TotalSize(head);
                if (headerSize < 0 || headerSize > length) continue;
                if (headerSize > head.Length)
                {
                    head = new byte[headerSize];
                    if (file.Read(0, head) < head.Length) continue;
                }
                header = SegmentHeader.TryDecode(head, out _, out _);
                if (header is null) continue;
                if (header.Kind == SegmentKind.Compacted)
                {
                    horizon = Math.Max(horizon, header.BaseSequence + 1);
                    continue;
                }
                start = (int)Math.Max(header.Size, _readUpTo.GetValueOrDefault(id));
                bytes = new byte[length - start];
                bytes = bytes[..file.Read(start, bytes)];
            }
            catch (IOException)
            {
                continue; // compacted away between listing and opening
            }
            var scanner = new SegmentScanner(bytes, 0, RecordLimits.For(header.Version));
            while (scanner.Next(out _, out var record))
            {
                var entries = new RecordEntries(record, 0);
                while (entries.Next(out _, out var entry))
                {
                    var sequence = RecordCodec.ReadSequence(entry);
                    var key = RecordCodec.Key(entry);
                    if (sequence >= from && key.StartsWith(prefix) && !Leases.IsReserved(key)) events.Add(LogReplay.ToEvent(entry));
                }
            }
            _readUpTo[id] = start + scanner.Position;
        }
        events.Sort((a, b) => a.Revision.CompareTo(b.Revision));
        return events;
    }
}
