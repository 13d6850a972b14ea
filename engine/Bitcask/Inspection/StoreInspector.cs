using Bitcask.Analysis;
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
    /// <summary>Name of the directory, inside the store directory, where <see cref="Repair(string, InspectOptions?)"/> keeps every byte range it
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
    public static VerifyReport Verify(string directory, InspectOptions? options = null) =>
        Verify(directory, options ?? new InspectOptions(), OsFileSystem.Instance);

    internal static VerifyReport Verify(string directory, InspectOptions options, IStorageFileSystem fs)
    {
        using var store = new InspectedStore(directory, options, fs);
        store.Run();
        return store.ToReport();
    }

    /// <summary>
    /// Every record in file order (segments in id order; entries of a batch one by one), damaged ranges and torn tails
    /// included as <see cref="RecordType.Damaged"/>, exactly as open judges them. <paramref name="segmentId"/> limits it to
    /// one segment; <paramref name="liveOnly"/> to records a fresh open's keydir would point at. Values are decoded only
    /// when <paramref name="includeValues"/>.
    /// </summary>
    public static IEnumerable<RecordInfo> ReadRecords(string directory, uint? segmentId = null, bool liveOnly = false,
        bool includeValues = true, InspectOptions? options = null)
    {
        options ??= new InspectOptions();
        var store = new InspectedStore(directory, options); // checks the directory now, not at the first MoveNext
        return Enumerate(store, segmentId, liveOnly, includeValues, options);
    }

    private static IEnumerable<RecordInfo> Enumerate(InspectedStore store, uint? segmentId, bool liveOnly, bool includeValues, InspectOptions options)
    {
        using (store)
        {
            store.Run(checkHints: false);
            var now = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var s in store.Analysis.Segments)
            {
                if (segmentId is { } only && s.Id != only) continue;
                if (!s.Loaded)
                {
                    if (s.HeaderProblem is not null && !liveOnly)
                        yield return new RecordInfo
                        {
                            SegmentId = s.Id, File = s.Name, Offset = s.State == SegmentState.UnsupportedVersion ? 4 : 0, Length = s.Length,
                            Kind = RecordType.Damaged, Problem = $"{(s.State == SegmentState.UnsupportedVersion ? ProblemKind.UnsupportedVersion : ProblemKind.BadSegmentHeader).DisplayName()}: {s.HeaderProblem}",
                        };
                    continue;
                }
                var contents = store.Contents[s.Id];
                foreach (var item in contents.Layout)
                {
                    if (item.Kind is RangeKind.Damage or RangeKind.TornTail)
                    {
                        if (!liveOnly)
                            yield return new RecordInfo
                            {
                                SegmentId = s.Id, File = s.Name, Offset = item.ProblemOffset, Length = item.End - item.ProblemOffset, Kind = RecordType.Damaged,
                                Problem = $"{(item.Kind == RangeKind.TornTail ? ProblemKind.TornTail : ProblemKind.DamagedRecord).DisplayName()}: {item.Error}",
                            };
                        continue;
                    }
                    if (item.Kind == RangeKind.SyncMarker) continue;
                    foreach (var info in Describe(store, s, contents, item, includeValues, now))
                        if (!liveOnly || info.Live) yield return info;
                }
            }
        }
    }

    private static List<RecordInfo> Describe(InspectedStore store, SegmentFile s, SegmentContents contents, LayoutItem item, bool includeValues, long now)
    {
        var result = new List<RecordInfo>(1);
        var record = s.Data.Slice(item.Offset, item.Length);
        var entries = new RecordEntries(record, item.Offset);
        while (entries.Next(out var offset, out var entry))
        {
            var key = RecordCodec.Key(entry).ToArray();
            var kind = RecordCodec.ReadKind(entry);
            var compressed = (RecordCodec.ReadFlags(entry) & RecordFlags.Lz4) != 0;
            var rawLength = kind == RecordKind.Put ? RecordCodec.RawValueLength(entry) : 0;
            byte[] value = [];
            string? problem = null;
            if (includeValues && kind == RecordKind.Put && rawLength >= 0 && rawLength <= Array.MaxLength)
            {
                value = new byte[rawLength];
                bool ok;
                try { ok = RecordCodec.TryDecodeValue(entry, value); }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException) { ok = false; }
                if (!ok)
                {
                    value = [];
                    problem = $"{ProblemKind.UndecodableValue.DisplayName()}: the LZ4 value does not decode to its recorded length";
                }
            }
            var live = store.Keys.TryGetValue(key, out var winner) && winner.SegmentId == s.Id && winner.Offset == (uint)offset
                       && InspectedStore.IsLive(winner, now);
            var batchOffset = contents.ByOffset.TryGetValue((uint)offset, out var known) && known.BatchOffset >= 0 ? known.BatchOffset : (long?)null;
            result.Add(new RecordInfo
            {
                SegmentId = s.Id, File = s.Name, Offset = offset, Length = entry.Length,
                Kind = kind == RecordKind.Tombstone ? RecordType.Tombstone : RecordType.Put,
                Sequence = RecordCodec.ReadSequence(entry), ExpiresAt = RecordCodec.ReadExpiresAt(entry),
                Key = key, Value = value, ValueLength = rawLength, Compressed = compressed,
                BatchOffset = batchOffset, Live = live, Problem = problem,
            });
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
        Repair(directory, options ?? new InspectOptions(), OsFileSystem.Instance);

    internal static RepairReport Repair(string directory, InspectOptions options, IStorageFileSystem fs)
    {
        using var activity = Telemetry.StartActivity("bitcask.repair", directory);
        try
        {
            return new StoreRepair(directory, options, fs).Run();
        }
        catch (Exception e) when (Telemetry.Failed(activity, e))
        {
            throw;
        }
    }
}
