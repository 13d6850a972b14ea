using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>Settings for <see cref="BitcaskStore.Open(string, BitcaskOptions?)"/>. Immutable; a <c>with</c> expression makes a variant.</summary>
public sealed record BitcaskOptions
{
    /// <summary>When writes are acknowledged. Default: <see cref="Durability.Flushed"/>.</summary>
    public Durability Durability { get; init; } = Durability.Flushed;

    /// <summary>Background sync period. <see cref="Durability.Buffered"/>: the buffer is written to the OS at this period
    /// (100 ms when null) and fdatasync'd when set. <see cref="Durability.Flushed"/>: fdatasync at this period when set.
    /// Ignored by <see cref="Durability.Synced"/>. Positive and at most 4294967294 ms (about 49.7 days, the timer's limit).
    /// Default: null.</summary>
    public TimeSpan? SyncInterval { get; init; }

    /// <summary>The longest <see cref="SyncInterval"/>: 4294967294 ms (about 49.7 days), the longest period a timer takes.</summary>
    internal static readonly TimeSpan MaxSyncInterval = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>A segment is sealed and a new one started when the next record would pass this size.
    /// Between 4 KiB and 2 GiB - 1, and large enough for the largest record the key and value limits allow: at least
    /// 64 (segment header) + 32 (record header) + <see cref="MaxKeyBytes"/> + the stored value bound, where a value of at least
    /// <see cref="CompressionThreshold"/> bytes reserves LZ4's worst case, 4 + v + v / 255 + 16 bytes for a v-byte value
    /// (a plain value reserves v). Open's error names the smallest size that fits. Default: 256 MiB.</summary>
    public long MaxSegmentBytes { get; init; } = 256L << 20;

    /// <summary>Values of at least this many bytes are LZ4-compressed when that saves space; 0 disables. Default: 4096.</summary>
    public int CompressionThreshold { get; init; } = 4096;

    /// <summary>Longest key accepted, 0 to 65535. Default: 1024.</summary>
    public int MaxKeyBytes { get; init; } = 1024;

    /// <summary>Longest value accepted; the largest record must fit in one segment (see <see cref="MaxSegmentBytes"/>).
    /// When not set, the limit is 16 MiB or, when a record of that size would not fit in <see cref="MaxSegmentBytes"/>,
    /// the largest value that does (for example 64145 bytes for 64 KiB segments with the other defaults); reading the
    /// property returns that effective limit, which follows <see cref="MaxSegmentBytes"/>, <see cref="MaxKeyBytes"/> and
    /// <see cref="CompressionThreshold"/>. A value set explicitly stays as set, and Open throws when it does not fit.
    /// Reopening a store with a lower limit than its records were written with makes those records read as damage.
    /// Default: 16 MiB, less for segments under about 16.1 MiB.</summary>
    public int MaxValueBytes
    {
        get => _maxValueBytes ?? LargestValueThatFits(MaxSegmentBytes, MaxKeyBytes, CompressionThreshold);
        init => _maxValueBytes = value;
    }

    private readonly int? _maxValueBytes; // null: not set, follow the segment size

    private const int DefaultMaxValueBytes = 16 << 20;

    /// <summary>Open without the writer lock and never change a byte on disk. Damaged records are skipped and reported.
    /// Works beside a running writer (it sees the writes flushed to the OS when it opened). Default: false.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>A read-write open that finds a damaged record outside the torn tail of the newest segment throws
    /// <see cref="CorruptionException"/>; with this set it skips the record, logs it and reports it in
    /// <see cref="StoreStats.RecoveryFindings"/> instead. Skipping can bring back an older value of the skipped key. Default: false.</summary>
    public bool SkipDamagedRecords { get; init; }

    /// <summary>Clock for TTLs. Default: <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Let the store itself write what time decides: a tombstone for every key whose time to live ran out, and a
    /// revoke for every lease not kept alive in time (a sweep every 250 ms of <see cref="TimeProvider"/>). Default: true.
    /// A replicated store sets it to false: there the leader decides expiry and replicates it as log entries, so every
    /// node writes the same records at the same log position (reads still hide expired keys by <see cref="TimeProvider"/>,
    /// and leases then end only when revoked).</summary>
    public bool ExpireInBackground { get; init; } = true;

    /// <summary>Where the engine logs; silent when null. Default: null.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Run compaction in the background when the thresholds below are met. <see cref="BitcaskStore.Compact(CancellationToken)"/>
    /// works either way. Default: true.</summary>
    public bool CompactionEnabled { get; init; } = true;

    /// <summary>A sealed segment whose dead bytes (overwritten, deleted, expired records and tombstones) make up at least
    /// this fraction of its records is merged by background compaction. 0 to 1. Default: 0.5.</summary>
    public double CompactionFragmentationThreshold { get; init; } = 0.5;

    /// <summary>When the whole store holds at least this many dead bytes, background compaction merges every sealed
    /// segment that has any. Default: 512 MiB.</summary>
    public long CompactionDeadBytesThreshold { get; init; } = 512L << 20;

    /// <summary>Background compaction waits until there are at least this many sealed segments. Default: 1.</summary>
    public int CompactionMinSegments { get; init; } = 1;

    /// <summary>Upper bound on the bytes per second a compaction reads and writes, so it does not starve the foreground;
    /// 0 = unlimited. Default: 0.</summary>
    public long CompactionBytesPerSecond { get; init; }

    /// <summary>How often the background compactor checks the thresholds (it also checks after every segment rollover).
    /// Default: 10 seconds.</summary>
    public TimeSpan CompactionCheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Size of the engine's write buffer for <see cref="Durability.Buffered"/>. Default: 256 KiB.</summary>
    public int WriteBufferBytes { get; init; } = 256 << 10;

    /// <summary>In <see cref="Durability.Synced"/> mode, resume the callers of asynchronous writes (PutAsync, WriteAsync,
    /// TryWriteAsync and the other *Async writes) on the store's completion thread, one after another, instead of queuing
    /// each to the thread pool: a committed group then costs one thread wake-up instead of one per caller, and no idle
    /// thread-pool worker spins afterwards. Set it only when the code that runs after those awaits does not block (a
    /// network server's connection loop, as <c>bitcask serve</c>). A continuation that blocks or runs for a millisecond or
    /// more holds up the callers queued behind it only until the next group commits: that commit hands them to the thread
    /// pool. Default: false.</summary>
    public bool InlineAsyncCompletions { get; init; }

    /// <summary>
    /// Checks every option against its limits, as <see cref="BitcaskStore.Open(string, BitcaskOptions?)"/> does first:
    /// throws <see cref="ArgumentOutOfRangeException"/> naming the option, its value and the rule, or
    /// <see cref="ArgumentNullException"/> for a null <see cref="TimeProvider"/>. Lets a host validate settings at start.
    /// </summary>
    public void Validate()
    {
        static ArgumentOutOfRangeException Bad(string name, object value, string rule) =>
            new(name, value, $"BitcaskOptions.{name} must be {rule}.");
        if (!Enum.IsDefined(Durability)) throw Bad(nameof(Durability), Durability, "Buffered, Flushed or Synced");
        if (MaxSegmentBytes is < 4096 or > int.MaxValue) throw Bad(nameof(MaxSegmentBytes), MaxSegmentBytes, "between 4096 and 2147483647");
        if (MaxKeyBytes is < 0 or > ushort.MaxValue) throw Bad(nameof(MaxKeyBytes), MaxKeyBytes, "between 0 and 65535");
        if (MaxValueBytes < 0) throw Bad(nameof(MaxValueBytes), MaxValueBytes, "at least 0");
        if (CompressionThreshold < 0) throw Bad(nameof(CompressionThreshold), CompressionThreshold, "at least 0");
        if (SyncInterval is { } interval && (interval <= TimeSpan.Zero || interval > MaxSyncInterval))
            throw Bad(nameof(SyncInterval), interval, $"positive and at most {MaxSyncInterval.TotalMilliseconds} ms (about 49.7 days, the timer's limit), or null");
        if (WriteBufferBytes is < 4096 or > (64 << 20)) throw Bad(nameof(WriteBufferBytes), WriteBufferBytes, "between 4096 and 67108864");
        var needed = SmallestSegmentBytesFor(MaxKeyBytes, MaxValueBytes, CompressionThreshold);
        if (needed > MaxSegmentBytes)
        {
            var record = needed - Format.SegmentHeader.FixedSize;
            throw _maxValueBytes is null
                ? new ArgumentOutOfRangeException(nameof(MaxKeyBytes), MaxKeyBytes,
                    $"A record with a {MaxKeyBytes}-byte key takes up to {record} bytes even with an empty value, which does not fit in MaxSegmentBytes = {MaxSegmentBytes} after the {Format.SegmentHeader.FixedSize}-byte segment header: MaxKeyBytes = {MaxKeyBytes} needs MaxSegmentBytes of at least {needed}. Raise MaxSegmentBytes or lower MaxKeyBytes.")
                : new ArgumentOutOfRangeException(nameof(MaxValueBytes), MaxValueBytes,
                    $"A record with a {MaxKeyBytes}-byte key and a {MaxValueBytes}-byte value takes up to {record} bytes, which does not fit in MaxSegmentBytes = {MaxSegmentBytes} after the {Format.SegmentHeader.FixedSize}-byte segment header: this combination needs MaxSegmentBytes of at least {needed}. Raise MaxSegmentBytes or lower MaxValueBytes/MaxKeyBytes (or leave MaxValueBytes unset to follow the segment size).");
        }
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (double.IsNaN(CompactionFragmentationThreshold) || CompactionFragmentationThreshold is < 0 or > 1)
            throw Bad(nameof(CompactionFragmentationThreshold), CompactionFragmentationThreshold, "between 0 and 1");
        if (CompactionDeadBytesThreshold < 0) throw Bad(nameof(CompactionDeadBytesThreshold), CompactionDeadBytesThreshold, "at least 0");
        if (CompactionMinSegments < 1) throw Bad(nameof(CompactionMinSegments), CompactionMinSegments, "at least 1");
        if (CompactionBytesPerSecond < 0) throw Bad(nameof(CompactionBytesPerSecond), CompactionBytesPerSecond, "at least 0 (0 = unlimited)");
        if (CompactionCheckInterval <= TimeSpan.Zero) throw Bad(nameof(CompactionCheckInterval), CompactionCheckInterval, "positive");
    }

    /// <summary>Bytes the largest record with these limits may take, record header included: a value of at least
    /// <paramref name="compressionThreshold"/> bytes (when not 0) reserves the LZ4 worst case. In long: with limits near
    /// <see cref="int.MaxValue"/> the sum passes it (<see cref="Format.RecordCodec.MaxEncodedSize"/> is int).</summary>
    internal static long LargestRecordBytes(int maxKeyBytes, int maxValueBytes, int compressionThreshold)
    {
        long storedValue = maxValueBytes;
        if (compressionThreshold > 0 && maxValueBytes >= compressionThreshold)
            storedValue = Math.Max(storedValue, Format.RecordCodec.CompressedPrefixSize + (long)K4os.Compression.LZ4.LZ4Codec.MaximumOutputSize(maxValueBytes));
        return Format.RecordCodec.HeaderSize + (long)maxKeyBytes + storedValue;
    }

    /// <summary>The smallest valid <see cref="MaxSegmentBytes"/> for these limits: the largest record after the segment header, and at least 4 KiB.</summary>
    internal static long SmallestSegmentBytesFor(int maxKeyBytes, int maxValueBytes, int compressionThreshold) =>
        Math.Max(4096, Format.SegmentHeader.FixedSize + LargestRecordBytes(maxKeyBytes, maxValueBytes, compressionThreshold));

    /// <summary>The default value limit: 16 MiB, or the largest value whose record fits a segment of
    /// <paramref name="maxSegmentBytes"/> (0 when not even an empty value does; <see cref="Validate"/> then reports the key limit).</summary>
    private static int LargestValueThatFits(long maxSegmentBytes, int maxKeyBytes, int compressionThreshold)
    {
        bool Fits(int valueBytes) => Format.SegmentHeader.FixedSize + LargestRecordBytes(maxKeyBytes, valueBytes, compressionThreshold) <= maxSegmentBytes;
        if (Fits(DefaultMaxValueBytes)) return DefaultMaxValueBytes;
        if (!Fits(0)) return 0;
        // The record bound grows with the value length (it jumps up at the compression threshold), so bisect.
        int fits = 0, tooLarge = DefaultMaxValueBytes;
        while (tooLarge - fits > 1)
        {
            var middle = fits + (tooLarge - fits) / 2;
            if (Fits(middle)) fits = middle;
            else tooLarge = middle;
        }
        return fits;
    }
}
