using System.Text;
using Bitcask.CrashTests.Infrastructure;

namespace Bitcask.CrashTests;

/// <summary>
/// A backup is durable when <see cref="BitcaskStore.Backup"/> returns: a power loss right after it (every unsynced byte
/// dropped, every directory change since the last directory fsync undone) leaves a backup that opens to the same content,
/// whether its sealed segments were hard links or copies. Without the target directory's fsync the same power loss takes
/// the backup away, so that fsync is what protects the links' and copies' names.
/// </summary>
public class BackupCrashTests
{
    private const string Dir = Workloads.Directory;
    private const string Target = "/backups/b1";
    private static readonly BitcaskOptions Options = new() { CompactionEnabled = false, MaxSegmentBytes = 16 << 10, MaxValueBytes = 4096 };

    private static Dictionary<string, string> Contents(BitcaskStore store) =>
        store.Keys().ToDictionary(k => Encoding.UTF8.GetString(k), k => Encoding.UTF8.GetString(store.Get(k)!));

    /// <summary>A store on <paramref name="fs"/> with several sealed segments, a compaction output and an active segment
    /// holding unsynced (Flushed) writes; returns its content at the backup and the backup's result.</summary>
    private static (Dictionary<string, string> Content, BackupResult Result) BackUp(FaultFileSystem fs)
    {
        fs.CreateDirectory("/backups");
        using var store = BitcaskStore.Open(Dir, Options, fs);
        for (var i = 0; i < 600; i++) store.Put($"k{i % 150}", $"v{i}" + new string('x', 100));
        store.Compact();
        for (var i = 0; i < 300; i++)
            if (i % 9 == 0) store.Delete($"k{i % 150}");
            else store.Put($"k{i % 150}", $"w{i}" + new string('y', 100));
        var content = Contents(store);
        var result = store.Backup(Target);
        for (var i = 0; i < 100; i++) store.Put($"late{i}", "not in the backup");
        return (content, result);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_power_loss_right_after_backup_returns_keeps_the_whole_backup(bool refuseLinks)
    {
        var fs = new FaultFileSystem { RefuseLinks = refuseLinks };
        var (content, result) = BackUp(fs);
        if (refuseLinks) Assert.Equal(0, result.SegmentsLinked);
        else Assert.True(result.SegmentsLinked > 0);
        var disk = fs.Crash(PowerLoss.DropUnsynced, new Random(1));
        Assert.Contains(disk.Files, f => f.StartsWith(Target + "/", StringComparison.Ordinal));
        var report = Bitcask.Inspection.StoreInspector.Verify(Target, new Bitcask.Inspection.InspectOptions(), disk);
        Assert.True(report.Healthy, string.Join("; ", report.Problems));
        using var restored = BitcaskStore.Open(Target, Options, disk);
        Assert.Empty(restored.GetStats().RecoveryFindings);
        Assert.Equal(content.OrderBy(kv => kv.Key, StringComparer.Ordinal), Contents(restored).OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    [Fact]
    public void Without_the_target_directory_fsync_a_power_loss_takes_the_backup_away()
    {
        var fs = new FaultFileSystem { SkipSafetyStep = op => op.Kind == FsOpKind.SyncDirectory && op.Path == Target };
        var (content, _) = BackUp(fs);
        Assert.NotEmpty(content);
        var disk = fs.Crash(PowerLoss.DropUnsynced, new Random(1));
        Assert.DoesNotContain(disk.Files, f => f.StartsWith(Target + "/", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_the_fdatasync_of_the_copies_a_power_loss_leaves_a_backup_that_lost_data()
    {
        var fs = new FaultFileSystem { RefuseLinks = true, SkipSafetyStep = op => op.Kind == FsOpKind.Sync && op.Path.StartsWith(Target + "/", StringComparison.Ordinal) };
        var (content, _) = BackUp(fs);
        var disk = fs.Crash(PowerLoss.DropUnsynced, new Random(1));
        Assert.Contains(disk.Files, f => f.StartsWith(Target + "/", StringComparison.Ordinal)); // the names survive, their bytes do not
        Assert.False(Bitcask.Inspection.StoreInspector.Verify(Target, new Bitcask.Inspection.InspectOptions(), disk).Healthy);
        Dictionary<string, string>? restored = null;
        try
        {
            using var store = BitcaskStore.Open(Target, Options with { ReadOnly = true }, disk);
            restored = Contents(store);
        }
        catch (CorruptionException)
        {
        }
        Assert.True(restored is null || restored.Count < content.Count, "the unsynced copies should have lost keys");
    }

    /// <summary>A read-only open that finds a writer's new segment holding only its header reports a
    /// <see cref="BitcaskStore.Revision"/> one above the newest write it loaded (the new segment's base sequence). Its
    /// backup must claim the newest write it holds, or "every write up to the revision" would include the write that was
    /// about to land in that segment. (Found by the CLI test beside a live writer, about one run in ten.)</summary>
    [Fact]
    public void A_read_only_backup_beside_a_header_only_new_segment_claims_the_newest_write_it_holds()
    {
        var fs = new FaultFileSystem();
        var options = new BitcaskOptions { CompactionEnabled = false, MaxSegmentBytes = 4096, MaxValueBytes = 1024 };
        var second = "/" + "0000000002.seg";
        fs.BeforeOperation = op =>
        {
            if (op.Kind == FsOpKind.Write && op.Path.EndsWith(second, StringComparison.Ordinal) && op.Offset >= 64)
                throw new IOException("the writer stops here: its new segment holds only a header");
        };
        long acknowledged = 0;
        var store = BitcaskStore.Open(Dir, options, fs);
        try
        {
            for (var i = 0; ; i++)
            {
                store.Put($"k{i}", new string('v', 200));
                acknowledged = store.Revision;
            }
        }
        catch (IOException)
        {
        }
        var disk = fs.Crash(PowerLoss.ProcessKill, new Random(1));
        Assert.Equal(64, disk.ReadAllBytes(Dir + second).Length);
        using var reader = BitcaskStore.Open(Dir, options with { ReadOnly = true }, disk);
        Assert.Equal(acknowledged + 1, reader.Revision); // the new segment's base sequence
        var result = reader.Backup(Target);
        Assert.Equal(acknowledged, result.Revision);
        using var restored = BitcaskStore.Open(Target, options with { ReadOnly = true }, disk);
        Assert.Equal((int)acknowledged, restored.Keys().Count());
    }
}
