using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>Settings for <see cref="BitcaskStore.Open"/>. Immutable; a <c>with</c> expression makes a variant.</summary>
public sealed record BitcaskOptions
{
    /// <summary>When writes are acknowledged. Default: <see cref="Durability.Flushed"/>.</summary>
    public Durability Durability { get; init; } = Durability.Flushed;

    /// <summary>Background sync period. <see cref="Durability.Buffered"/>: the buffer is written to the OS at this period
    /// (100 ms when null) and fdatasync'd when set. <see cref="Durability.Flushed"/>: fdatasync at this period when set.
    /// Ignored by <see cref="Durability.Synced"/>. Default: null.</summary>
    public TimeSpan? SyncInterval { get; init; }

    /// <summary>A segment is sealed and a new one started when the next record would pass this size.
    /// Between 4 KiB and 2 GiB - 1. Default: 256 MiB.</summary>
    public long MaxSegmentBytes { get; init; } = 256L << 20;

    /// <summary>Values of at least this many bytes are LZ4-compressed when that saves space; 0 disables. Default: 4096.</summary>
    public int CompressionThreshold { get; init; } = 4096;

    /// <summary>Longest key accepted, 0 to 65535. Default: 1024.</summary>
    public int MaxKeyBytes { get; init; } = 1024;

    /// <summary>Longest value accepted; a record must fit in one segment. Default: 16 MiB.</summary>
    public int MaxValueBytes { get; init; } = 16 << 20;

    /// <summary>Open without the writer lock and never change a byte on disk. Damaged records are skipped and reported.
    /// Works beside a running writer (it sees the writes flushed to the OS when it opened). Default: false.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>A read-write open that finds a damaged record outside the torn tail of the newest segment throws
    /// <see cref="CorruptionException"/>; with this set it skips the record, logs it and reports it in
    /// <see cref="StoreStats.RecoveryFindings"/> instead. Skipping can bring back an older value of the skipped key. Default: false.</summary>
    public bool SkipDamagedRecords { get; init; }

    /// <summary>Clock for TTLs. Default: <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where the engine logs; silent when null. Default: null.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Run compaction in the background when the thresholds below are met. <see cref="BitcaskStore.Compact"/>
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

    internal void Validate()
    {
        static ArgumentOutOfRangeException Bad(string name, object value, string rule) =>
            new(name, value, $"BitcaskOptions.{name} must be {rule}.");
        if (!Enum.IsDefined(Durability)) throw Bad(nameof(Durability), Durability, "Buffered, Flushed or Synced");
        if (MaxSegmentBytes is < 4096 or > int.MaxValue) throw Bad(nameof(MaxSegmentBytes), MaxSegmentBytes, "between 4096 and 2147483647");
        if (MaxKeyBytes is < 0 or > ushort.MaxValue) throw Bad(nameof(MaxKeyBytes), MaxKeyBytes, "between 0 and 65535");
        if (MaxValueBytes < 0) throw Bad(nameof(MaxValueBytes), MaxValueBytes, "at least 0");
        if (CompressionThreshold < 0) throw Bad(nameof(CompressionThreshold), CompressionThreshold, "at least 0");
        if (SyncInterval is { } interval && interval <= TimeSpan.Zero) throw Bad(nameof(SyncInterval), interval, "positive or null");
        if (WriteBufferBytes is < 4096 or > (64 << 20)) throw Bad(nameof(WriteBufferBytes), WriteBufferBytes, "between 4096 and 67108864");
        var largest = Format.RecordCodec.MaxEncodedSize(MaxKeyBytes, MaxValueBytes, CompressionThreshold) + Format.SegmentHeader.FixedSize;
        if (largest > MaxSegmentBytes)
            throw new ArgumentOutOfRangeException(nameof(MaxValueBytes), MaxValueBytes,
                $"A record with a {MaxKeyBytes}-byte key and a {MaxValueBytes}-byte value takes up to {largest} bytes, which does not fit in MaxSegmentBytes = {MaxSegmentBytes}. Raise MaxSegmentBytes or lower MaxValueBytes/MaxKeyBytes.");
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (double.IsNaN(CompactionFragmentationThreshold) || CompactionFragmentationThreshold is < 0 or > 1)
            throw Bad(nameof(CompactionFragmentationThreshold), CompactionFragmentationThreshold, "between 0 and 1");
        if (CompactionDeadBytesThreshold < 0) throw Bad(nameof(CompactionDeadBytesThreshold), CompactionDeadBytesThreshold, "at least 0");
        if (CompactionMinSegments < 1) throw Bad(nameof(CompactionMinSegments), CompactionMinSegments, "at least 1");
        if (CompactionBytesPerSecond < 0) throw Bad(nameof(CompactionBytesPerSecond), CompactionBytesPerSecond, "at least 0 (0 = unlimited)");
        if (CompactionCheckInterval <= TimeSpan.Zero) throw Bad(nameof(CompactionCheckInterval), CompactionCheckInterval, "positive");
    }
}
