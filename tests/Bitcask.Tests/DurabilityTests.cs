using System.Text;

namespace Bitcask.Tests;

/// <summary>What each durability mode promises about when bytes reach the OS. The crash suite covers power loss, e.g.
/// that Dispose syncs: Bitcask.CrashTests SyncProofTests.</summary>
public class DurabilityTests
{
    private static bool FileHolds(TempDirectory dir, string text)
    {
        var needle = Encoding.UTF8.GetBytes(text);
        return Directory.GetFiles(dir.Path, "*.seg").Any(f =>
        {
            using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            return bytes.AsSpan().IndexOf(needle) >= 0;
        });
    }

    [Fact]
    public void Flushed_and_synced_writes_are_in_the_file_when_put_returns()
    {
        foreach (var mode in new[] { Durability.Flushed, Durability.Synced })
        {
            using var dir = new TempDirectory();
            using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = mode });
            store.Put("k", $"value-in-{mode}");
            Assert.True(FileHolds(dir, $"value-in-{mode}"), mode.ToString());
        }
    }

    [Fact]
    public void Buffered_writes_reach_the_file_on_sync_and_within_the_flush_interval()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Buffered, SyncInterval = TimeSpan.FromHours(1) });
        store.Put("k", "buffered-value-1");
        Assert.False(FileHolds(dir, "buffered-value-1")); // still only in the engine's buffer
        Assert.Equal("buffered-value-1", store.GetString("k")); // but readable
        store.Sync();
        Assert.True(FileHolds(dir, "buffered-value-1"));

        using var dir2 = new TempDirectory();
        using var timed = BitcaskStore.Open(dir2.Path, new BitcaskOptions { Durability = Durability.Buffered }); // 100 ms default
        timed.Put("k", "buffered-value-2");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!FileHolds(dir2, "buffered-value-2") && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.True(FileHolds(dir2, "buffered-value-2"));
    }

    [Fact]
    public void A_read_only_open_beside_a_writer_sees_what_the_writer_had_flushed()
    {
        using var dir = new TempDirectory();
        using var writer = BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 8192, MaxValueBytes = 1024 });
        for (var i = 0; i < 200; i++) writer.Put($"k{i}", $"v{i}");
        using var reader = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true });
        Assert.Equal(200, reader.Count);
        Assert.Equal("v199", reader.GetString("k199"));
    }
}
