using System.Text;
using Bitcask.Inspection;
using Bitcask.TestSupport;
using Xunit.Abstractions;

namespace Bitcask.CliTests;

/// <summary>
/// Repair keeps what open keeps (../shared/RELIABILITY.md §7 item 36): over random single-byte flips anywhere in the
/// segments of a store with puts, deletes, batches and a compaction, repair serves exactly the keys and values a read-write
/// open with SkipDamagedRecords serves, every byte it removes is in quarantine/, and verify finds the result healthy.
/// Seeded: <c>BITCASK_REPAIR_SEED=&lt;n&gt;</c> replays a run (failures print the seed and the flip).
/// </summary>
public class RepairPropertyTests(ITestOutputHelper output)
{
    private static readonly BitcaskOptions WriteOptions = new()
    {
        MaxSegmentBytes = 4096, MaxValueBytes = 1024, CompressionThreshold = 0, CompactionEnabled = false,
    };

    /// <summary>A closed store: 300 seeded puts, deletes and batches over 40 keys and a dozen segments, with a compaction
    /// of the first 200 operations' segments in the middle.</summary>
    private static void Build(string dir, Random rng)
    {
        using var store = BitcaskStore.Open(dir, WriteOptions);
        string Key() => "key" + rng.Next(40);
        byte[] Value(int op) => Encoding.UTF8.GetBytes($"op {op} " + new string((char)('a' + op % 26), rng.Next(10, 300)));
        for (var op = 0; op < 300; op++)
        {
            var roll = rng.Next(100);
            if (roll < 60) store.Put(Encoding.UTF8.GetBytes(Key()), Value(op));
            else if (roll < 75) store.Delete(Key());
            else if (roll < 95)
            {
                var batch = new WriteBatch();
                for (var i = rng.Next(2, 7); i > 0; i--)
                    if (rng.Next(4) == 0) batch.Delete(Key());
                    else batch.Put(Encoding.UTF8.GetBytes(Key()), Value(op));
                store.Write(batch);
            }
            else store.Sync();
            if (op == 200) store.Compact();
        }
    }

    private static void CopyStore(string from, string to, bool hints)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
            if (hints || !f.EndsWith(".hint", StringComparison.Ordinal)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    private static Dictionary<string, string> Contents(BitcaskStore store) =>
        store.Keys().ToDictionary(k => Encoding.UTF8.GetString(k), k => Encoding.UTF8.GetString(store.Get(k)!));

    [Fact]
    public void After_a_random_byte_flip_repair_serves_what_open_with_skip_damaged_records_serves_quarantines_every_removed_byte_and_verifies_healthy()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("BITCASK_REPAIR_SEED"), out var s) ? s : 20261127;
        output.WriteLine($"BITCASK_REPAIR_SEED={seed}");
        var rng = new Random(seed);
        using var temp = new TempDirectory("repair-property");
        var template = temp.File("template");
        Build(template, rng);
        var segments = Directory.GetFiles(template, "*.seg").Order(StringComparer.Ordinal).ToArray();
        var sizes = segments.Select(f => new FileInfo(f).Length).ToArray();
        Assert.True(segments.Length >= 8, $"{segments.Length} segments");
        Assert.Contains(segments, f => File.ReadAllBytes(f)[6] == 2); // a compaction output (segment kind 2) is among them

        var problems = new List<string>();
        const int Trials = 150;
        for (var trial = 0; trial < Trials; trial++)
        {
            // A byte anywhere in the segments, every byte equally likely (headers included).
            var at = rng.NextInt64(sizes.Sum());
            var index = 0;
            while (at >= sizes[index]) at -= sizes[index++];
            var mask = (byte)rng.Next(1, 256);
            var flip = $"seed {seed} trial {trial}: byte {at} of {Path.GetFileName(segments[index])} ^= 0x{mask:x2}";

            var damagedDir = temp.File($"damaged-{trial}");
            CopyStore(template, damagedDir, hints: true);
            var path = Path.Combine(damagedDir, Path.GetFileName(segments[index]));
            var bytes = File.ReadAllBytes(path);
            bytes[at] ^= mask;
            File.WriteAllBytes(path, bytes);
            // Open judges by the segment bytes only when it scans: a whole hint is loaded without reading the records it
            // points at (FORMAT.md §4), while repair reads every byte. So the open compared with is one without hints.
            var openDir = temp.File($"open-{trial}");
            CopyStore(damagedDir, openDir, hints: false);
            var damaged = RemovedBytes.Snapshot(damagedDir);

            Dictionary<string, string> opened;
            using (var store = BitcaskStore.Open(openDir, WriteOptions with { SkipDamagedRecords = true }))
                opened = Contents(store);

            var report = StoreInspector.Repair(damagedDir);
            Dictionary<string, string> repaired;
            using (var store = BitcaskStore.Open(damagedDir, new BitcaskOptions { ReadOnly = true }))
                repaired = Contents(store);

            foreach (var key in opened.Keys.Union(repaired.Keys).Order(StringComparer.Ordinal))
            {
                var o = opened.GetValueOrDefault(key);
                var r = repaired.GetValueOrDefault(key);
                if (o != r) problems.Add($"{flip}: {key} is {Show(o)} after open with SkipDamagedRecords but {Show(r)} after repair");
            }
            problems.AddRange(RemovedBytes.Check(damaged, RemovedBytes.Snapshot(damagedDir)).Select(p => $"{flip}: {p}"));
            var verify = StoreInspector.Verify(damagedDir);
            if (!verify.Healthy || !report.After.Healthy) problems.Add($"{flip}: verify after repair: {string.Join(" | ", verify.Problems)}");
            Directory.Delete(damagedDir, recursive: true);
            Directory.Delete(openDir, recursive: true);
        }
        foreach (var p in problems.Take(30)) output.WriteLine(p);
        Assert.True(problems.Count == 0, $"{problems.Count} problems over {Trials} flips; the first: {string.Join("\n", problems.Take(10))}");
    }

    private static string Show(string? value) => value is null ? "absent" : $"\"{(value.Length > 20 ? value[..20] + "…" : value)}\"";
}
