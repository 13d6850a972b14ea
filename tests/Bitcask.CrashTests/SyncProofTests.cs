using Bitcask.CrashTests.Infrastructure;

namespace Bitcask.CrashTests;

/// <summary>
/// Sync() and Dispose() make writes durable and leave the proof in the segment itself: a sync marker carrying the fsynced
/// length (FORMAT.md §2.2, §5 step 6). Damage before it is media damage, never a torn tail, even with no hint file and no
/// later record whose durable length would prove it (../shared/RELIABILITY.md §7 item 35).
/// </summary>
public class SyncProofTests
{
    private const string Dir = Workloads.Directory;

    /// <summary>(offset, length) of every record appended to a segment by the puts in <paramref name="put"/>.</summary>
    private static List<(string File, long Offset, long Length)> Writes(FaultFileSystem fs, Action put)
    {
        var before = fs.History.Count;
        put();
        return fs.History.Skip(before).Where(o => o.Kind == FsOpKind.Write && o.Path.EndsWith(".seg", StringComparison.Ordinal))
            .Select(o => (o.Path, o.Offset, o.Length)).ToList();
    }

    private static Dictionary<string, byte[]> Files(FaultFileSystem fs) => fs.Files.ToDictionary(f => f, fs.ReadAllBytes);

    private static void AssertSameFiles(Dictionary<string, byte[]> before, FaultFileSystem fs)
    {
        var after = Files(fs);
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
        foreach (var (file, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[file]), $"{file} changed");
    }

    [Theory]
    [InlineData(Durability.Flushed)]
    [InlineData(Durability.Buffered)]
    public void A_byte_flipped_before_the_sync_marker_of_a_store_that_crashed_after_sync_is_damage_so_read_write_open_refuses_unchanged_and_read_only_serves_the_rest(Durability durability)
    {
        var fs = new FaultFileSystem();
        var options = Workloads.Options(durability);
        var values = Enumerable.Range(0, 10).ToDictionary(i => $"k{i}", i => Oracle.MakeValue($"k{i}", i, 100));
        var store = BitcaskStore.Open(Dir, options, fs);
        FaultFileSystem disk;
        List<(string File, long Offset, long Length)> writes;
        try
        {
            // Nothing is fsynced before Sync(): every record carries durable length 64 (the header), so only the marker
            // Sync() appends proves that the bytes before it were durable.
            writes = Writes(fs, () =>
            {
                foreach (var (k, v) in values) store.Put(Workloads.B(k), v);
                store.Sync();
            });
            disk = fs.Crash(PowerLoss.ProcessKill, new Random(1)); // the process dies here: no close, no hint
        }
        finally
        {
            store.Dispose();
        }
        var segment = Assert.Single(disk.Files, f => f.EndsWith(".seg", StringComparison.Ordinal));
        Assert.DoesNotContain(disk.Files, f => f.EndsWith(".hint", StringComparison.Ordinal));
        var marker = writes[^1];
        Assert.Equal(32, marker.Length); // the last write is the marker (Buffered mode writes the puts as one)
        var bytes = disk.ReadAllBytes(segment);
        Assert.Equal(4, bytes[marker.Offset + 4]); // kind 4: sync marker
        // k4's record (for Buffered mode, where the puts reach the file in one write, found by its key).
        var keyAt = bytes.AsSpan().IndexOf("k4#"u8.ToArray()) - 2; // the key "k4" sits just before its value "k4#..."
        var recordStart = keyAt - 32;
        Assert.Equal("k4", System.Text.Encoding.UTF8.GetString(bytes, keyAt, 2));
        bytes[keyAt + 2 + 50] ^= 0x10; // a byte in the middle of k4's value
        disk.WriteAllBytes(segment, bytes);
        var before = Files(disk);

        var refused = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, options, disk).Dispose());
        Assert.Equal(recordStart, refused.Offset);
        Assert.DoesNotContain("torn tail", refused.Message);
        AssertSameFiles(before, disk);
        var report = VerifyCli.Verify(disk);
        Assert.Contains(report.Problems, p => p.Offset == recordStart && p.Kind == "damaged record");
        Assert.DoesNotContain(report.Problems, p => p.Kind == "torn tail");

        using (var readOnly = BitcaskStore.Open(Dir, options with { ReadOnly = true }, disk))
        {
            Assert.Null(readOnly.Get(Workloads.B("k4")));
            foreach (var (k, v) in values)
                if (k != "k4") Assert.Equal(v, readOnly.Get(Workloads.B(k)));
        }
        AssertSameFiles(before, disk);
    }

    /// <summary>
    /// Dispose syncs: a power loss right after it (every byte not fsynced reverts, every directory change not fsynced is
    /// undone) keeps every write. And it leaves the proof: without the hint file of the newest segment, a byte flipped in
    /// its first record is damage that a read-write open refuses, not a torn tail that would silently cut the rest.
    /// (Replaces Bitcask.Tests' DurabilityTests.Buffered_writes_are_synced_by_dispose, which reopened from the page cache
    /// and so could not tell a sync from a write to the OS.)
    /// </summary>
    [Theory]
    [InlineData(Durability.Flushed)]
    [InlineData(Durability.Buffered)]
    public void Dispose_syncs_so_a_power_loss_right_after_it_keeps_every_write_and_a_byte_flipped_later_before_its_marker_is_damage(Durability durability)
    {
        var fs = new FaultFileSystem();
        var options = Workloads.Options(durability);
        var expected = new Dictionary<string, byte[]>();
        using (var store = BitcaskStore.Open(Dir, options, fs))
        {
            for (var i = 0; i < 60; i++) // over several 4 KiB segments
            {
                var key = $"k{i % 25}";
                if (i % 9 == 8)
                {
                    store.Delete(Workloads.B(key));
                    expected.Remove(key);
                }
                else if (i % 7 == 6)
                {
                    var v1 = Oracle.MakeValue(key, i, 80);
                    var v2 = Oracle.MakeValue("b" + key, i, 80);
                    store.Write(new WriteBatch().Put(Workloads.B(key), v1).Put(Workloads.B("b" + key), v2));
                    expected[key] = v1;
                    expected["b" + key] = v2;
                }
                else
                {
                    var v = Oracle.MakeValue(key, i, 150);
                    store.Put(Workloads.B(key), v);
                    expected[key] = v;
                }
            }
        }
        var disk = fs.Crash(PowerLoss.DropUnsynced, new Random(2));
        var segments = disk.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.True(segments.Count >= 3, $"{segments.Count} segments");
        using (var reopened = BitcaskStore.Open(Dir, options, disk.Clone()))
            Assert.True(Oracle.SameState(expected, Oracle.Dump(reopened)), "a power loss after Dispose lost or changed writes");

        var newest = segments[^1];
        disk.RemoveFile(Path.ChangeExtension(newest, ".hint"));
        var bytes = disk.ReadAllBytes(newest);
        var firstRecord = 64; // right after a write segment's header (no superseded ranges)
        bytes[firstRecord + 40] ^= 0x01;
        disk.WriteAllBytes(newest, bytes);
        var before = Files(disk);
        var refused = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, options, disk).Dispose());
        Assert.Equal(newest, refused.Path);
        Assert.Equal(bytes[firstRecord + 4] == 3 ? firstRecord + 32 : firstRecord, refused.Offset); // a batch names its damaged entry
        AssertSameFiles(before, disk);
    }
}
