using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask.Inspection;

/// <summary>
/// Looks inside a store directory without opening it as a store: verify every byte, list every record, repair damage.
/// Verify and the record readers never change a byte and work beside a live writer (they see what was written to the
/// OS when they started; a record being appended at that moment can show up as a torn tail).
/// </summary>
public static class StoreInspector
{
    /// <summary>Name of the directory, inside the store directory, where <see cref="Repair"/> keeps every byte range it
    /// removes. The engine ignores subdirectories, so it never reads or deletes it.</summary>
    public const string QuarantineDirectoryName = "quarantine";

    /// <summary>
    /// Returns the full path of <paramref name="directory"/> when it is a store directory; otherwise throws
    /// <see cref="DirectoryNotFoundException"/> (missing), <see cref="IOException"/> (a file, not a directory) or
    /// <see cref="NotAStoreException"/> (a directory without any store file).
    /// </summary>
    public static string CheckStoreDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (directory.Length == 0) throw new ArgumentException("The store directory path is empty.", nameof(directory));
        if (directory.Contains('\0')) throw new ArgumentException("The store directory path contains a NUL character.", nameof(directory));
        var full = Path.GetFullPath(directory);
        if (File.Exists(full)) throw new IOException($"'{full}' is a file, not a store directory.");
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"No store at '{full}': the directory does not exist.");
        var isStore = Directory.EnumerateFiles(full).Select(Path.GetFileName).Any(n =>
            n == StoreFiles.LockFile || StoreFiles.TryParseId(n!, StoreFiles.SegmentExtension, out _) || StoreFiles.TryParseId(n!, StoreFiles.HintExtension, out _));
        if (!isStore) throw new NotAStoreException(full);
        return full;
    }

    /// <summary>
    /// Reads every byte of every segment and hint file and lists every problem (FORMAT.md): invalid headers, records
    /// failing their length, kind, flag or CRC checks, torn tails, missing segments, compaction leftovers, hint files that
    /// are not whole or do not agree with their segment. Never changes a byte.
    /// </summary>
    public static VerifyReport Verify(string directory, InspectOptions? options = null)
    {
        using var analysis = new StoreAnalysis(directory, options ?? new InspectOptions());
        analysis.Run();
        return analysis.ToReport();
    }

    /// <summary>
    /// Every record in file order (segments in id order; entries of a batch one by one), damaged ranges included as
    /// <see cref="RecordType.Damaged"/>. <paramref name="segmentId"/> limits it to one segment; <paramref name="liveOnly"/>
    /// to records a fresh open's keydir would point at. Values are decoded only when <paramref name="includeValues"/>.
    /// </summary>
    public static IEnumerable<RecordInfo> ReadRecords(string directory, uint? segmentId = null, bool liveOnly = false,
        bool includeValues = true, InspectOptions? options = null)
    {
        options ??= new InspectOptions();
        var analysis = new StoreAnalysis(directory, options); // checks the directory now, not at the first MoveNext
        return Enumerate(analysis, segmentId, liveOnly, includeValues, options);
    }

    private static IEnumerable<RecordInfo> Enumerate(StoreAnalysis analysis, uint? segmentId, bool liveOnly, bool includeValues, InspectOptions options)
    {
        using (analysis)
        {
            analysis.Run(checkHints: false);
            var now = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var s in analysis.Segments)
            {
                if (segmentId is { } only && s.Id != only) continue;
                if (!s.Loaded)
                {
                    if (s.HeaderProblem is not null && !liveOnly)
                        yield return new RecordInfo { SegmentId = s.Id, File = s.Name, Offset = s.HeaderProblemOffset, Length = s.Length, Kind = RecordType.Damaged, Problem = $"{s.HeaderProblemKind}: {s.HeaderProblem}" };
                    continue;
                }
                foreach (var item in s.Layout)
                {
                    if (item.Kind != LayoutKind.Record)
                    {
                        if (!liveOnly)
                            yield return new RecordInfo
                            {
                                SegmentId = s.Id, File = s.Name, Offset = item.Offset, Length = item.Length, Kind = RecordType.Damaged,
                                Problem = $"{(item.Kind == LayoutKind.TornTail ? ProblemKinds.TornTail : ProblemKinds.DamagedRecord)}: {item.Error}",
                            };
                        continue;
                    }
                    var infos = Describe(analysis, s, item, includeValues, now);
                    foreach (var info in infos)
                        if (!liveOnly || info.Live) yield return info;
                }
            }
        }
    }

    private static List<RecordInfo> Describe(StoreAnalysis analysis, SegmentFile s, LayoutItem item, bool includeValues, long now)
    {
        var result = new List<RecordInfo>(1);
        var record = s.Data.Slice(item.Offset, item.Length);
        var isBatch = RecordCodec.ReadKind(record) == RecordKind.Batch;
        var entries = new RecordEntries(record, item.Offset);
        while (entries.Next(out var offset, out var entry))
        {
            var key = RecordCodec.Key(entry).ToArray();
            var kind = RecordCodec.ReadKind(entry);
            var compressed = (RecordCodec.ReadFlags(entry) & RecordFlags.Lz4) != 0;
            var rawLength = kind == RecordKind.Put ? RecordCodec.RawValueLength(entry) : 0;
            byte[] value = [];
            string? problem = null;
            if (includeValues && kind == RecordKind.Put && rawLength >= 0 && rawLength <= analysis.MaxValueBytes)
            {
                value = new byte[rawLength];
                bool ok;
                try { ok = RecordCodec.TryDecodeValue(entry, value); }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException) { ok = false; }
                if (!ok)
                {
                    value = [];
                    problem = $"{ProblemKinds.UndecodableValue}: the LZ4 value does not decode to its recorded length";
                }
            }
            var live = analysis.Keys.TryGetValue(key, out var winner) && winner.SegmentId == s.Id && winner.Offset == (uint)offset
                       && analysis.IsLive(winner, now);
            result.Add(new RecordInfo
            {
                SegmentId = s.Id, File = s.Name, Offset = offset, Length = entry.Length,
                Kind = kind == RecordKind.Tombstone ? RecordType.Tombstone : RecordType.Put,
                Sequence = RecordCodec.ReadSequence(entry), ExpiresAt = RecordCodec.ReadExpiresAt(entry),
                Key = key, Value = value, ValueLength = rawLength, Compressed = compressed,
                BatchOffset = isBatch ? item.Offset : null, Live = live, Problem = problem,
            });
        }
        return result;
    }

    /// <summary>
    /// Every live key of an open store with its value and expiry (Unix ms, 0 = never), for export. With a read-only
    /// store this is a consistent snapshot of each key as of the open.
    /// </summary>
    public static IEnumerable<(byte[] Key, byte[] Value, long ExpiresAt)> ReadEntries(BitcaskStore store, ReadOnlyMemory<byte> prefix = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        foreach (var key in store.Keys(prefix))
            if (TryGetEntry(store, key, out var value, out var expiresAt)) yield return (key, value, expiresAt);
    }

    /// <summary>The value and expiry (Unix ms, 0 = never) of a live key of an open store; false when absent or expired.
    /// Both come from the same record, so the pair is consistent even while a writer changes the key.</summary>
    public static bool TryGetEntry(BitcaskStore store, ReadOnlySpan<byte> key, out byte[] value, out long expiresAt)
    {
        ArgumentNullException.ThrowIfNull(store);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var found = store.TryGet(key, buffer, out var expiry); // value and expiry from the same record
        value = found ? buffer.WrittenSpan.ToArray() : [];
        expiresAt = expiry?.ToUnixTimeMilliseconds() ?? 0;
        return found;
    }

    /// <summary>For each segment id, whether its hint file is usable: null when whole and matching the segment's id and
    /// length, else why not. Segments without a hint file are absent. Reads only hint files and segment lengths.</summary>
    public static IReadOnlyDictionary<uint, string?> HintStatus(string directory)
    {
        var full = CheckStoreDirectory(directory);
        var result = new Dictionary<uint, string?>();
        foreach (var path in Directory.EnumerateFiles(full))
        {
            var name = Path.GetFileName(path);
            if (!StoreFiles.TryParseId(name, StoreFiles.HintExtension, out var id)) continue;
            var segment = Path.Combine(full, StoreFiles.SegmentName(id));
            if (!File.Exists(segment)) { result[id] = "its segment is not present"; continue; }
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { result[id] = e.Message; continue; }
            var segmentBytes = new byte[Math.Min(new FileInfo(segment).Length, SegmentHeader.FixedSize + 8L * SegmentHeader.MaxRanges)];
            using (var f = File.OpenRead(segment)) f.ReadAtLeast(segmentBytes, segmentBytes.Length, throwOnEndOfStream: false);
            var headerSize = segmentBytes.Length >= SegmentHeader.FixedSize ? Math.Max(SegmentHeader.TotalSize(segmentBytes), SegmentHeader.FixedSize) : SegmentHeader.FixedSize;
            var headerCrc = segmentBytes.Length >= SegmentHeader.FixedSize ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(segmentBytes.AsSpan(60)) : 0u;
            result[id] = HintFile.Validate(bytes, id, new FileInfo(segment).Length, headerCrc, headerSize, ushort.MaxValue, out _);
        }
        return result;
    }

    /// <summary>
    /// Makes a damaged store openable without throwing away anything readable. Takes the writer lock (throws
    /// <see cref="StoreLockedException"/> while another process holds it), then: moves unreadable segments and every
    /// damaged byte range into <see cref="QuarantineDirectoryName"/>/, rewrites each damaged segment without them
    /// (written as a temporary file, fsynced, renamed into place, directory fsynced), truncates torn tails (their
    /// bytes quarantined too), relinks write segments whose predecessor is gone, quarantines bad or stale hint files and
    /// writes a hint for every segment that lacks one. Finally the engine's own read-write open settles what is left
    /// (temporary files, compaction leftovers) and verify runs again (<see cref="RepairReport.After"/>).
    /// </summary>
    public static RepairReport Repair(string directory, InspectOptions? options = null) =>
        new StoreRepair(directory, options ?? new InspectOptions(), OsFileSystem.Instance).Run();
}
