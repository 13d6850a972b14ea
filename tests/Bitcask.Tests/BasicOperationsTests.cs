using System.Buffers;
using System.Text;

namespace Bitcask.Tests;

public class BasicOperationsTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Put_then_get_returns_the_value_and_survives_reopen()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path))
        {
            store.Put("alpha", "one");
            store.Put(B("beta"), B("two"));
            Assert.Equal("one", store.GetString("alpha"));
            Assert.Equal(B("two"), store.Get(B("beta")));
            Assert.Null(store.Get(B("gamma")));
            Assert.Equal(2, store.Count);
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal("one", store.GetString("alpha"));
            Assert.Equal("two", store.GetString("beta"));
            Assert.Equal(2, store.Count);
        }
    }

    [Fact]
    public void Overwrite_returns_newest_value_after_reopen()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path))
            for (var i = 0; i < 10; i++) store.Put("k", "v" + i);
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal("v9", store.GetString("k"));
            Assert.Equal(1, store.Count);
        }
    }

    [Fact]
    public void Delete_reports_whether_a_live_key_was_removed_and_stays_deleted_after_reopen()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path))
        {
            store.Put("k", "v");
            Assert.True(store.Delete("k"));
            Assert.False(store.Delete("k"));
            Assert.False(store.Delete("never"));
            Assert.Null(store.GetString("k"));
            Assert.False(store.ContainsKey(B("k")));
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Null(store.GetString("k"));
            Assert.Equal(0, store.Count);
        }
    }

    [Fact]
    public void Empty_key_and_empty_value_are_legal()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path))
        {
            store.Put(ReadOnlySpan<byte>.Empty, B("empty key"));
            store.Put(B("empty value"), ReadOnlySpan<byte>.Empty);
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal(B("empty key"), store.Get(ReadOnlySpan<byte>.Empty));
            Assert.Equal(Array.Empty<byte>(), store.Get(B("empty value")));
        }
    }

    [Fact]
    public void TryGet_writes_the_value_into_the_buffer_writer()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path);
        store.Put("k", "hello");
        var buffer = new ArrayBufferWriter<byte>();
        Assert.True(store.TryGet(B("k"), buffer));
        Assert.Equal("hello", Encoding.UTF8.GetString(buffer.WrittenSpan));
        Assert.False(store.TryGet(B("missing"), buffer));
        Assert.Equal(5, buffer.WrittenCount);
    }

    [Fact]
    public void Large_compressible_values_round_trip_through_LZ4_and_take_less_space()
    {
        using var dir = new TempDirectory();
        var value = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("compress me please ", 5000)));
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompressionThreshold = 1024 }))
        {
            store.Put(B("big"), value);
            Assert.Equal(value, store.Get(B("big")));
            Assert.True(store.GetStats().TotalBytes < value.Length / 4);
        }
        using (var store = BitcaskStore.Open(dir.Path))
            Assert.Equal(value, store.Get(B("big")));
    }

    [Fact]
    public void Segments_roll_over_at_MaxSegmentBytes_and_all_keys_survive_reopen()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 8192, MaxValueBytes = 1024 };
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            for (var i = 0; i < 1000; i++) store.Put($"key{i}", $"value{i}");
            var stats = store.GetStats();
            Assert.True(stats.Segments.Count > 5);
            Assert.All(stats.Segments, s => Assert.True(s.TotalBytes <= 8192));
        }
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            Assert.Equal(1000, store.Count);
            for (var i = 0; i < 1000; i++) Assert.Equal($"value{i}", store.GetString($"key{i}"));
        }
    }

    [Fact]
    public void Keys_and_Scan_filter_by_prefix()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path);
        store.Put("user:1", "a");
        store.Put("user:2", "b");
        store.Put("order:1", "c");
        store.Delete("user:2");
        Assert.Equal(["user:1"], store.Keys(B("user:")).Select(k => Encoding.UTF8.GetString(k)).ToArray());
        Assert.Equal(2, store.Keys().Count());
        var scanned = store.Scan(B("order:")).Single();
        Assert.Equal("c", Encoding.UTF8.GetString(scanned.Value));
    }

    [Fact]
    public void Stats_count_live_and_dead_bytes_per_segment()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path);
        store.Put("k", "v1");
        var live = store.GetStats().LiveBytes;
        store.Put("k", "v2");
        var stats = store.GetStats();
        Assert.Equal(live, stats.LiveBytes);
        Assert.Equal(live, stats.DeadBytes);
        Assert.Equal(1, stats.LiveKeys);
        Assert.True(stats.Segments.Single().IsActive);
    }

    [Fact]
    public async Task Async_put_and_batch_are_durable_in_synced_mode()
    {
        using var dir = new TempDirectory();
        await using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Synced }))
        {
            await store.PutAsync(B("a"), B("1"));
            await store.WriteAsync(new WriteBatch().Put("b", "2").Delete("a"));
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Null(store.GetString("a"));
            Assert.Equal("2", store.GetString("b"));
        }
    }

    [Fact]
    public void Absolute_expiry_is_kept_to_the_millisecond_and_read_back_with_the_value()
    {
        using var dir = new TempDirectory();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var at = new DateTimeOffset(2030, 1, 1, 0, 5, 0, 123, TimeSpan.Zero);
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { TimeProvider = clock });
        store.Put(B("a"), B("1"), at);
        store.Write(new WriteBatch().Put(B("b"), B("2"), at.AddMinutes(1)).Put("c", "3"));
        var buffer = new ArrayBufferWriter<byte>();
        Assert.True(store.TryGet(B("a"), buffer, out var expiresA));
        Assert.Equal(at, expiresA);
        Assert.True(store.TryGet(B("b"), buffer, out var expiresB));
        Assert.Equal(at.AddMinutes(1), expiresB);
        Assert.True(store.TryGet(B("c"), buffer, out var expiresC));
        Assert.Null(expiresC);
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Put(B("d"), B("4"), clock.GetUtcNow()));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Write(new WriteBatch().Put(B("d"), B("4"), clock.GetUtcNow().AddSeconds(-1))));
        clock.Advance(TimeSpan.FromMilliseconds(5 * 60_000 + 122));
        Assert.Equal("1", store.GetString("a")); // one millisecond before its expiry
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(store.Get(B("a")));
        Assert.Equal("2", store.GetString("b"));
    }
}
