using Bitcask.CrashTests.Infrastructure;

namespace Bitcask.CrashTests;

/// <summary>Engine bug 14 (tests/NOTES-crash.md): a compaction drops the records the keydir shows superseded; when the
/// write that superseded one is not yet durable (Buffered: still in the writer's buffer; Flushed: not fsynced), a crash
/// after the compaction's commit lost both, and the key vanished. The compactor now makes the writes the keydir shows
/// durable before its commit point.</summary>
public class CompactionDurabilityTests
{
    [Theory]
    [InlineData(Durability.Buffered, PowerLoss.ProcessKill)]
    [InlineData(Durability.Flushed, PowerLoss.DropUnsynced)]
    public void A_write_made_during_a_compaction_survives_a_crash_after_the_compaction_dropped_the_value_it_replaced(Durability durability, PowerLoss loss)
    {
        var fs = new FaultFileSystem();
        var options = new BitcaskOptions { Durability = durability, CompactionEnabled = false, SyncInterval = TimeSpan.FromHours(1) };
        var store = BitcaskStore.Open(Workloads.Directory, options, fs);
        store.Put("k"u8, "old"u8);
        store.Put("other"u8, "x"u8);
        store.Sync(); // "old" is durable
        // The compaction seals the active segment, then (inside the choice of its inputs) a writer overwrites "k": the
        // new value is in the writer's buffer (Buffered) or in the OS (Flushed), not on disk, when the run decides that
        // "old" is dead.
        var result = store.Compact(sealedSegments =>
        {
            store.Put("k"u8, "new"u8);
            return sealedSegments;
        }, CancellationToken.None);
        Assert.True(result.SegmentsIn > 0);
        var after = fs.Crash(loss, new Random(14)); // the process dies; the store is never disposed
        using var reopened = BitcaskStore.Open(Workloads.Directory, options, after);
        // Either value is a prefix of the writer's ops; no value at all is not.
        Assert.Contains(reopened.GetString("k"), new[] { "old", "new" });
        Assert.Equal("x", reopened.GetString("other"));
        GC.KeepAlive(store);
    }
}
