using System.Diagnostics;
using System.Text;
using Bitcask.Inspection;

namespace Bitcask.Tests;

/// <summary>Online backup: a consistent store as of one revision, taken while writers and compactions run.</summary>
public class BackupTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static string S(byte[] b) => Encoding.UTF8.GetString(b);
    private static readonly BitcaskOptions Small = new() { CompactionEnabled = false, MaxSegmentBytes = 64 << 10 };

    /// <summary>One write as its writer saw it: the key's value from revision <see cref="Revision"/> on (null: deleted).</summary>
    private sealed record Write(long Revision, string Key, string? Value);

    /// <summary>The expected content at <paramref name="revision"/>: per key, the newest write at or before it.</summary>
    private static Dictionary<string, string> StateAt(IEnumerable<Write> writes, long revision)
    {
        var state = new Dictionary<string, string>();
        foreach (var w in writes.Where(w => w.Revision <= revision).OrderBy(w => w.Revision))
            if (w.Value is null) state.Remove(w.Key);
            else state[w.Key] = w.Value;
        return state;
    }

    private static Dictionary<string, string> Contents(BitcaskStore store) =>
        store.Keys().ToDictionary(S, k => S(store.Get(k)!));

    private static void AssertSameContents(Dictionary<string, string> expected, Dictionary<string, string> actual, string context)
    {
        var missing = expected.Keys.Except(actual.Keys).Take(5).ToList();
        var extra = actual.Keys.Except(expected.Keys).Take(5).ToList();
        var wrong = expected.Where(kv => actual.TryGetValue(kv.Key, out var v) && v != kv.Value).Select(kv => kv.Key).Take(5).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0 && wrong.Count == 0,
            $"{context}: missing [{string.Join(", ", missing)}], extra [{string.Join(", ", extra)}], wrong value [{string.Join(", ", wrong)}] " +
            $"({expected.Count} expected keys, {actual.Count} found)");
    }

    /// <summary>Opens the backup read-only, then read-write (which settles nothing: there is nothing to settle), and checks
    /// both against the writes up to the backup's revision; also that verify finds it healthy.</summary>
    private static void AssertBackupHolds(BackupResult backup, IEnumerable<Write> writes, string context)
    {
        var report = StoreInspector.Verify(backup.TargetDirectory);
        Assert.True(report.Healthy, $"{context}: verify: {string.Join("; ", report.Problems)}");
        var expected = StateAt(writes, backup.Revision);
        using (var readOnly = BitcaskStore.Open(backup.TargetDirectory, Small with { ReadOnly = true }))
        {
            Assert.Empty(readOnly.GetStats().RecoveryFindings);
            AssertSameContents(expected, Contents(readOnly), context + " (read-only open)");
        }
        using var writable = BitcaskStore.Open(backup.TargetDirectory, Small);
        Assert.True(writable.Revision >= backup.Revision, $"{context}: reopened at revision {writable.Revision} < {backup.Revision}");
        AssertSameContents(expected, Contents(writable), context + " (read-write open)");
    }

    /// <summary>Four writer threads, each owning its keys (so the revision of each write is known exactly: a put's from the
    /// key's version right after it, a delete's from a clock key written in the same atomic batch), puts, deletes and
    /// multi-key batches; a thread compacting all the time; three backups meanwhile. Each backup must hold exactly the writes
    /// up to its revision: none missing, none later.</summary>
    [Fact]
    public void A_backup_under_concurrent_writers_and_compactions_opens_to_exactly_the_writes_up_to_its_revision()
    {
        using var dir = new TempDirectory("backup");
        var source = Path.Combine(dir.Path, "store");
        var logs = Enumerable.Range(0, 4).Select(_ => new List<Write>()).ToArray();
        var backups = new List<BackupResult>();
        var compactions = 0;
        using (var store = BitcaskStore.Open(source, Small))
        {
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 4).Select(t => new Thread(() =>
            {
                var rng = new Random(1000 + t);
                var log = logs[t];
                var clock = $"t{t}:clock";
                for (var i = 0; i < 2500; i++)
                {
                    var key = $"t{t}:k{rng.Next(60)}";
                    var roll = rng.Next(10);
                    if (roll < 6)
                    {
                        var value = $"{key}@{i}:" + new string((char)('a' + rng.Next(26)), rng.Next(20, 300));
                        store.Put(key, value);
                        log.Add(new Write(store.GetInfo(B(key))!.Value.Version, key, value));
                    }
                    else if (roll < 8)
                    {
                        // A delete and a clock put in one batch: both land in a backup or neither, and the clock's version is known.
                        store.Write(new WriteBatch().Delete(B(key)).Put(B(clock), B(i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
                        var revision = store.GetInfo(B(clock))!.Value.Version;
                        log.Add(new Write(revision, key, null));
                        log.Add(new Write(revision, clock, i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    }
                    else
                    {
                        var batch = new WriteBatch();
                        var keys = Enumerable.Range(0, 3).Select(j => $"t{t}:b{rng.Next(20)}").Distinct().ToList();
                        foreach (var k in keys) batch.Put(B(k), B($"{k}@{i}"));
                        store.Write(batch);
                        foreach (var k in keys) log.Add(new Write(store.GetInfo(B(k))!.Value.Version, k, $"{k}@{i}"));
                    }
                }
            })).ToArray();
            var compactor = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    if (store.Compact().SegmentsIn > 0) Interlocked.Increment(ref compactions);
                    Thread.Sleep(5);
                }
            });
            foreach (var w in writers) w.Start();
            compactor.Start();
            for (var b = 0; b < 3; b++)
            {
                // Each backup while the writers are mid-way (by their progress, not a fixed sleep: the machine may be loaded).
                var target = (b + 1) * 4 * 2500 / 5;
                while (logs.Sum(l => l.Count) < target && writers.Any(w => w.IsAlive)) Thread.Sleep(1);
                backups.Add(store.Backup(Path.Combine(dir.Path, $"backup{b}")));
            }
            foreach (var w in writers) w.Join();
            stop.Cancel();
            compactor.Join();
            backups.Add(store.Backup(Path.Combine(dir.Path, "backup-final"))); // after the writers: everything
            Assert.Equal(store.Revision, backups[^1].Revision);
        }
        var writes = logs.SelectMany(l => l).ToList();
        Assert.True(compactions > 0, "no compaction ran beside the backups");
        Assert.True(backups.Zip(backups.Skip(1)).All(p => p.First.Revision <= p.Second.Revision), "backup revisions go backwards");
        Assert.True(backups[0].Revision > 0 && backups[0].Revision < writes.Max(w => w.Revision), "the first backup should fall in the middle of the writes");
        foreach (var backup in backups)
        {
            Assert.True(backup.SegmentsLinked > 0, $"{backup.TargetDirectory}: no segment was hard-linked on this Linux file system");
            AssertBackupHolds(backup, writes, Path.GetFileName(backup.TargetDirectory) + $" at revision {backup.Revision}");
        }
        // The source is untouched by its backups, and reopens to every write.
        using var reopened = BitcaskStore.Open(source, Small);
        AssertSameContents(StateAt(writes, long.MaxValue), Contents(reopened), "source after the backups");
    }

    /// <summary>A compaction right after the cut deletes every sealed segment the backup is about to link: the backup copies
    /// them from the handles it holds, and still holds exactly the state at its cut.</summary>
    [Fact]
    public void Segments_a_compaction_deletes_after_the_cut_are_copied_from_the_open_handles()
    {
        using var dir = new TempDirectory("backup");
        var writes = new List<Write>();
        BackupResult result;
        using (var store = BitcaskStore.Open(Path.Combine(dir.Path, "store"), Small))
        {
            for (var i = 0; i < 3000; i++)
            {
                var key = $"k{i % 300}";
                if (i % 7 == 6) { store.Delete(key); writes.Add(new Write(store.Revision, key, null)); }
                else { store.Put(key, $"{key}@{i}" + new string('v', 100)); writes.Add(new Write(store.Revision, key, $"{key}@{i}" + new string('v', 100))); }
            }
            var sealedBefore = store.GetStats().Segments.Count(s => !s.IsActive);
            Assert.True(sealedBefore >= 3);
            CompactionResult? compaction = null;
            store.AfterBackupCutForTests = () =>
            {
                compaction = store.Compact();
                // Writes after the cut must not reach the backup.
                for (var i = 0; i < 50; i++) store.Put($"late{i}", "x");
            };
            result = store.Backup(Path.Combine(dir.Path, "backup"));
            Assert.NotNull(compaction);
            Assert.True(compaction.SegmentsIn >= sealedBefore, $"the compaction merged {compaction.SegmentsIn} of {sealedBefore} sealed segments");
            Assert.Equal(0, result.SegmentsLinked); // every input was deleted before it could be linked
            Assert.True(result.SegmentsCopied >= sealedBefore + 1);
        }
        Assert.Equal(writes[^1].Revision, result.Revision);
        AssertBackupHolds(result, writes, "backup whose segments were compacted away after the cut");
    }

    [Fact]
    public void Sealed_segments_are_hard_links_and_the_active_prefix_a_copy()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var dir = new TempDirectory("backup");
        var source = Path.Combine(dir.Path, "store");
        using var store = BitcaskStore.Open(source, Small);
        for (var i = 0; i < 2000; i++) store.Put($"k{i}", new string('v', 100));
        var stats = store.GetStats();
        var active = stats.Segments.Single(s => s.IsActive).FileName;
        var result = store.Backup(Path.Combine(dir.Path, "backup"));
        Assert.Equal(stats.Segments.Count - 1, result.SegmentsLinked);
        Assert.Equal(1, result.SegmentsCopied);
        Assert.Equal(stats.Segments.Count, result.HintFiles);
        foreach (var s in stats.Segments)
        {
            var copy = Path.Combine(result.TargetDirectory, s.FileName);
            Assert.Equal(s.FileName == active ? 1 : 2, LinkCount(copy));
            Assert.True(File.Exists(Path.ChangeExtension(copy, ".hint")), $"no hint for {s.FileName}");
        }
        Assert.False(File.Exists(Path.Combine(result.TargetDirectory, "LOCK")));
        // Writes after the backup reach neither the linked files nor the copy.
        var backupBytes = Directory.GetFiles(result.TargetDirectory).ToDictionary(f => f, File.ReadAllBytes);
        for (var i = 0; i < 2000; i++) store.Put($"k{i}", new string('w', 100));
        store.Compact();
        foreach (var (f, bytes) in backupBytes) Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(f)), $"{f} changed after the backup");
    }

    /// <summary>The link count of a file, from stat(1) (.NET has no API for it).</summary>
    private static int LinkCount(string path)
    {
        var psi = new ProcessStartInfo("stat", ["-c", "%h", path]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return int.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void A_backup_of_a_read_only_store_holds_what_its_open_saw()
    {
        using var dir = new TempDirectory("backup");
        var source = Path.Combine(dir.Path, "store");
        using var writer = BitcaskStore.Open(source, Small);
        for (var i = 0; i < 1500; i++) writer.Put($"k{i % 400}", $"v{i}" + new string('x', 80));
        var expected = Contents(writer);
        var seen = writer.Revision;
        using var reader = BitcaskStore.Open(source, Small with { ReadOnly = true });
        for (var i = 0; i < 500; i++) writer.Put($"k{i}", "after the read-only open");
        writer.Compact();
        var result = reader.Backup(Path.Combine(dir.Path, "backup"));
        Assert.Equal(seen, result.Revision); // the newest write the read-only open saw
        Assert.True(StoreInspector.Verify(result.TargetDirectory).Healthy);
        using var backup = BitcaskStore.Open(result.TargetDirectory, Small);
        AssertSameContents(expected, Contents(backup), "backup of the read-only store");
    }

    [Fact]
    public void The_target_must_be_a_missing_or_empty_directory_outside_the_store()
    {
        using var dir = new TempDirectory("backup");
        var source = Path.Combine(dir.Path, "store");
        using var store = BitcaskStore.Open(source, Small);
        store.Put("k", "v");
        var inside = Assert.Throws<ArgumentException>(() => store.Backup(Path.Combine(source, "backup")));
        Assert.Contains(source, inside.Message);
        Assert.Throws<ArgumentException>(() => store.Backup(source));
        var file = Path.Combine(dir.Path, "file");
        File.WriteAllText(file, "x");
        Assert.Contains(file, Assert.Throws<IOException>(() => store.Backup(file)).Message);
        var full = Path.Combine(dir.Path, "full");
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "something"), "x");
        Assert.Contains("not empty", Assert.Throws<IOException>(() => store.Backup(full)).Message);
        var empty = Path.Combine(dir.Path, "empty");
        Directory.CreateDirectory(empty);
        Assert.Equal("v", BitcaskStore.Open(store.Backup(empty).TargetDirectory, Small with { ReadOnly = true }).GetString("k"));
    }
}
