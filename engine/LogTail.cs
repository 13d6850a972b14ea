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
            byte[] bytes;
            try
            {
                using var file = fs.OpenFile(Path.Combine(directory, name), StorageOpenMode.ReadOnly);
                bytes = new byte[file.Length];
                bytes = bytes[..file.Read(0, bytes)];
            }
            catch (IOException)
            {
                continue; // compacted away between listing and opening
            }
            var header = SegmentHeader.TryDecode(bytes, out _, out _);
            if (header is null) continue;
            if (header.Kind == SegmentKind.Compacted)
            {
                horizon = Math.Max(horizon, header.BaseSequence + 1);
                continue;
            }
            var start = (int)Math.Max(header.Size, _readUpTo.GetValueOrDefault(id));
            var scanner = new SegmentScanner(bytes, start, RecordLimits.For(header.Version));
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
            _readUpTo[id] = scanner.Position;
        }
        events.Sort((a, b) => a.Revision.CompareTo(b.Revision));
        return events;
    }
}
