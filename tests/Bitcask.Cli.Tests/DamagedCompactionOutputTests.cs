using System.Text;
using Bitcask.Inspection;
using Bitcask.TestSupport;

namespace Bitcask.CliTests;

/// <summary>
/// A finished compaction whose outputs are all present, one of them with a damaged header (../shared/RELIABILITY.md §7
/// items 36 and 38). The damaged output's records are unreadable; its intact siblings are not, and nothing else holds
/// their records any more (the run's inputs are gone).
/// </summary>
public class DamagedCompactionOutputTests
{
    private static readonly BitcaskOptions Options = new() { MaxSegmentBytes = 4096, MaxValueBytes = 1024, CompressionThreshold = 0, CompactionEnabled = false };

    /// <summary>
    /// <c>StoreAnalysis.SettleCompactions</c> settles runs from the valid headers only, so an output whose header is
    /// damaged counts as missing: the run reads as interrupted and its intact outputs as debris. A read-write open with
    /// SkipDamagedRecords deletes them (the plan's DeleteFile, no quarantine copy), and so does the engine open that ends a
    /// repair: one flipped byte in one output's header loses every record of the whole run, and repair removes whole
    /// intact segments without putting their bytes in quarantine/. Found by
    /// <c>RepairPropertyTests</c> with <c>BITCASK_REPAIR_SEED=1</c> (trial 89).
    /// </summary>
    [Fact]
    public void A_damaged_header_of_one_compaction_output_keeps_the_records_of_its_intact_siblings_and_repair_quarantines_every_removed_byte()
    {
        using var temp = new TempDirectory("damaged-output");
        var dir = temp.File("store");
        using (var store = BitcaskStore.Open(dir, Options))
        {
            for (var i = 0; i < 60; i++) store.Put($"key{i:D2}", $"value {i} " + new string('v', 150));
            for (var i = 0; i < 60; i += 3) store.Delete($"key{i:D2}");
            store.Compact();
            store.Put("after", "the compaction");
        }
        var outputs = Directory.GetFiles(dir, "*.seg").Where(f => File.ReadAllBytes(f)[6] == 2).Order(StringComparer.Ordinal).ToList();
        Assert.True(outputs.Count >= 2, $"{outputs.Count} compaction outputs");
        var damagedName = Path.GetFileName(outputs[0]);
        var intact = StoreInspector.ReadRecords(dir).Where(r => r.Live && r.File != damagedName).ToDictionary(r => Encoding.UTF8.GetString(r.Key), r => r.Value);
        Assert.Contains(intact.Keys, k => k.StartsWith("key", StringComparison.Ordinal)); // some live keys are in the intact outputs
        var header = File.ReadAllBytes(outputs[0]);
        header[50] ^= 0x01; // reserved header byte: the header CRC fails, nothing else changes
        File.WriteAllBytes(outputs[0], header);
        var damaged = RemovedBytes.Snapshot(dir);

        var copy = temp.File("copy");
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(dir)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        using (var skipping = BitcaskStore.Open(copy, Options with { SkipDamagedRecords = true }))
            foreach (var (key, value) in intact) Assert.Equal(value, skipping.Get(Encoding.UTF8.GetBytes(key)));

        Assert.Equal(0, Cli.Run("repair", dir).Code);
        Assert.Empty(RemovedBytes.Check(damaged, RemovedBytes.Snapshot(dir)));
        using (var repaired = BitcaskStore.Open(dir))
            foreach (var (key, value) in intact) Assert.Equal(value, repaired.Get(Encoding.UTF8.GetBytes(key)));
    }
}
