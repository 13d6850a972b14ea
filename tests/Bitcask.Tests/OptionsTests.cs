namespace Bitcask.Tests;

/// <summary>How <see cref="BitcaskOptions"/> limits fit together: the value limit and the segment size, the arithmetic that
/// relates them (no overflow), and the timer limit of <see cref="BitcaskOptions.SyncInterval"/>.</summary>
public class OptionsTests
{
    private static Dictionary<string, byte[]> Files(TempDirectory dir) =>
        Directory.GetFiles(dir.Path).Where(f => !f.EndsWith("LOCK")).ToDictionary(f => f, File.ReadAllBytes);

    // With the default 1 KiB key limit and 4 KiB compression threshold, a value v >= 4096 reserves the LZ4 worst case:
    // record = 32 (header) + 1024 (key) + 4 (length prefix) + v + v / 255 + 16, and the segment adds its 64-byte header.
    // v = 64145: 64 + 32 + 1024 + 4 + 64145 + 251 + 16 = 65536 fits 64 KiB; v = 64146 needs 65537.
    private const int LargestValueFor64KiBSegments = 64145;

    [Fact]
    public void With_a_small_segment_the_default_value_limit_shrinks_to_the_largest_value_that_fits_and_open_succeeds()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 64 << 10, CompressionThreshold = 0 };
        Assert.Equal(64 * 1024 - 64 - 32 - 1024, options.MaxValueBytes); // no compression: header, key and value only
        options = new BitcaskOptions { MaxSegmentBytes = 64 << 10, CompactionEnabled = false };
        Assert.Equal(LargestValueFor64KiBSegments, options.MaxValueBytes);
        Assert.Equal(16 << 20, new BitcaskOptions().MaxValueBytes);

        using var store = BitcaskStore.Open(dir.Path, options);
        var largest = new byte[options.MaxValueBytes];
        new Random(7).NextBytes(largest); // incompressible: stored as is
        store.Put(new byte[options.MaxKeyBytes], largest);
        store.Put("small", "v");
        Assert.Throws<ArgumentException>(() => store.Put("k"u8, new byte[options.MaxValueBytes + 1]));
        store.Sync();
        Assert.Equal(largest, store.Get(new byte[options.MaxKeyBytes]));
        Assert.All(Directory.GetFiles(dir.Path, "*.seg"), f => Assert.InRange(new FileInfo(f).Length, 0, 64 << 10));
    }

    [Fact]
    public void An_explicit_value_limit_that_does_not_fit_the_segment_fails_open_naming_the_smallest_segment_size_that_would_fit()
    {
        using var dir = new TempDirectory();
        using (BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 64 << 10, MaxValueBytes = LargestValueFor64KiBSegments })) { }

        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 64 << 10, MaxValueBytes = LargestValueFor64KiBSegments + 1 }));
        Assert.Equal("MaxValueBytes", error.ParamName);
        Assert.Contains("needs MaxSegmentBytes of at least 65537", error.Message);

        // Nothing fits when the key limit alone is too large for the segment: the error names the key limit.
        var keyError = Assert.Throws<ArgumentOutOfRangeException>(() =>
            BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 4096, MaxKeyBytes = 8000 }));
        Assert.Equal("MaxKeyBytes", keyError.ParamName);
        Assert.Contains("needs MaxSegmentBytes of at least 8096", keyError.Message); // 64 + 32 + 8000
    }

    [Fact]
    public void A_value_limit_of_int_max_with_small_segments_fails_open_instead_of_overflowing_into_a_fit()
    {
        using var dir = new TempDirectory();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = int.MaxValue }));
        Assert.Equal("MaxValueBytes", error.ParamName);
        Assert.Contains("needs MaxSegmentBytes of at least 2147484767", error.Message); // 64 + 32 + 1024 + int.MaxValue (LZ4 cannot take it)
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void A_value_too_large_for_a_small_segment_is_refused_before_anything_is_written()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 4096, CompactionEnabled = false });
        store.Put("k", "v");
        store.Sync();
        var before = Files(dir);

        var error = Assert.Throws<ArgumentException>(() => store.Put("big"u8, new byte[10_000]));
        Assert.Contains($"MaxValueBytes = {store.Options.MaxValueBytes}", error.Message);

        store.Sync();
        Assert.Equal(before, Files(dir));
        Assert.All(Directory.GetFiles(dir.Path, "*.seg"), f => Assert.InRange(new FileInfo(f).Length, 0, 4096));
        Assert.Null(store.Get("big"u8));
    }

    [Theory]
    [InlineData(Durability.Buffered)]
    [InlineData(Durability.Flushed)]
    public void A_sync_interval_past_the_timer_limit_fails_open_naming_SyncInterval_and_the_limit(Durability durability)
    {
        using var dir = new TempDirectory();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = durability, SyncInterval = TimeSpan.FromMilliseconds(4294967295) }));
        Assert.Equal("SyncInterval", error.ParamName);
        Assert.Contains("4294967294", error.Message);
        using (BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = durability, SyncInterval = TimeSpan.FromMilliseconds(4294967294) })) { }
    }
}
