using System.Text;

namespace Bitcask.Tests;

public class CompactionTests
{
    private static readonly BitcaskOptions Small = new()
    {
        MaxSegmentBytes = 16 * 1024,
        MaxValueBytes = 2048,
        CompactionEnabled = false,
    };

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Compaction_reclaims_overwritten_bytes_and_keeps_newest_values_across_reopen()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path, Small))
        {
            for (var round = 0; round < 5; round++)
                for (var i = 0; i < 200; i++) store.Put($"key{i}", $"value{i}-round{round}");
            var before = store.GetStats();
            var result = store.Compact();
            var after = store.GetStats();
            Assert.True(result.SegmentsIn > 1);
            Assert.Equal(200, result.RecordsKept);
            Assert.True(after.TotalBytes < before.TotalBytes / 3, $"{after.TotalBytes} vs {before.TotalBytes}");
            Assert.Equal(0, after.DeadBytes);
            for (var i = 0; i < 200; i++) Assert.Equal($"value{i}-round4", store.GetString($"key{i}"));
        }
        using (var store = BitcaskStore.Open(dir.Path, Small))
        {
            Assert.Equal(200, store.Count);
            for (var i = 0; i < 200; i++) Assert.Equal($"value{i}-round4", store.GetString($"key{i}"));
            Assert.All(store.GetStats().Segments, s => Assert.True(s.HasHintFile));
        }
    }

    [Theory]
    [InlineData(0)] // the run's first output (the one whose id is the run's merge id)
    [InlineData(1)] // a later output
    public void A_compaction_that_replaces_some_outputs_of_an_earlier_one_leaves_the_other_outputs_in_place_across_reopen(int consumedIndex)
    {
        using var dir = new TempDirectory();
        var value = new string('v', 150);
        using (var store = BitcaskStore.Open(dir.Path, Small))
        {
            for (var i = 0; i < 400; i++) store.Put($"key{i:D3}", value + i);
            var first = store.Compact();
            Assert.True(first.SegmentsOut >= 3, $"the first run wrote {first.SegmentsOut} outputs; the test needs at least 3");
            // A second, partial merge takes one output of the first run as its input (it has dead bytes after overwrites).
            var outputs = store.SegmentsForTests.Snapshot().Where(s => s.Header.Kind == Format.SegmentKind.Compacted).OrderBy(s => s.Id).ToList();
            var consumed = outputs[consumedIndex];
            foreach (var key in store.Keys().Select(k => Encoding.UTF8.GetString(k)).Where(k => store.KeyDirForTests.TryGet(B(k), out var at, out _) && at.SegmentId == consumed.Id).Take(10))
                store.Put(key, "rewritten " + key);
            var second = store.Compact(_ => [consumed], CancellationToken.None);
            Assert.Equal(1, second.SegmentsIn);
        }
        using (var store = BitcaskStore.Open(dir.Path, Small))
        {
            Assert.Empty(store.GetStats().RecoveryFindings);
            Assert.Equal(400, store.Count);
            for (var i = 0; i < 400; i++)
                Assert.True(store.GetString($"key{i:D3}") is { } v && (v == value + i || v == $"rewritten key{i:D3}"), $"key{i:D3} lost");
        }
        Assert.Empty(Inspection.StoreInspector.Verify(dir.Path).Problems);
    }

    [Fact]
    public void Deleted_key_stays_deleted_after_partial_merge_of_the_tombstone_segment_and_reopen()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path, Small))
        {
            store.Put("victim", "old value");
            for (var i = 0; i < 100; i++) store.Put($"filler{i}", new string('x', 200)); // rolls over
            store.Delete("victim");
            for (var i = 0; i < 100; i++) store.Put($"filler{i}", new string('y', 200));
            // Merge only the segments after the one holding the old value.
            var segments = store.SegmentsForTests.Snapshot().Where(s => !s.IsActive).ToList();
            var first = segments.First();
            Assert.True(store.KeyDirForTests.Count > 0);
            var result = store.CompactorForTests!.Run(segments.Skip(1).ToList(), CancellationToken.None);
            Assert.True(result.TombstonesKept >= 1);
            Assert.Null(store.GetString("victim"));
        }
        using (var store = BitcaskStore.Open(dir.Path, Small))
            Assert.Null(store.GetString("victim"));
    }

    [Fact]
    public void Full_compaction_drops_tombstones_and_expired_records_from_disk()
    {
        using var dir = new TempDirectory();
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = Small with { TimeProvider = clock };
        using var store = BitcaskStore.Open(dir.Path, options);
        store.Put(B("ephemeral"), B("secret-ephemeral-value"), TimeSpan.FromMinutes(1));
        store.Put("gone", "secret-deleted-value");
        store.Delete("gone");
        store.Put("kept", "v");
        clock.Advance(TimeSpan.FromMinutes(2));
        var result = store.Compact();
        // The expiry sweeper (driven by the fake clock) may already have written the expired key's tombstone: either way
        // the compaction keeps only "kept" and drops the expired value.
        Assert.Equal(1, result.RecordsKept);
        Assert.Equal(0, result.TombstonesKept);
        var bytes = Directory.GetFiles(dir.Path, "*.seg").SelectMany(File.ReadAllBytes).ToArray();
        Assert.Equal(-1, bytes.AsSpan().IndexOf(B("secret-ephemeral-value")));
        Assert.Equal(-1, bytes.AsSpan().IndexOf(B("secret-deleted-value")));
        Assert.Equal("v", store.GetString("kept"));
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Background_compaction_keeps_an_overwrite_heavy_store_small()
    {
        using var dir = new TempDirectory();
        var options = Small with { CompactionEnabled = true, CompactionCheckInterval = TimeSpan.FromMilliseconds(20) };
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            var value = new string('v', 100);
            for (var round = 0; round < 40; round++)
                for (var i = 0; i < 100; i++) store.Put($"key{i:D3}", value + round);
            // 100 live keys of ~140 bytes each: the directory shrinks to a few segments, not 40 rounds' worth. The
            // compactor runs in the background, so wait (generously: CI machines are shared) for it to get there.
            const long bound = 100 * 140 * 8;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while ((store.GetStats().LastCompaction is null || store.GetStats().TotalBytes >= bound) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            var stats = store.GetStats();
            Assert.NotNull(stats.LastCompaction);
            Assert.True(stats.TotalBytes < bound, $"store holds {stats.TotalBytes} bytes");
            for (var i = 0; i < 100; i++) Assert.Equal(value + 39, store.GetString($"key{i:D3}"));
        }
        using (var store = BitcaskStore.Open(dir.Path, options))
            for (var i = 0; i < 100; i++) Assert.Equal(new string('v', 100) + 39, store.GetString($"key{i:D3}"));
    }
}
