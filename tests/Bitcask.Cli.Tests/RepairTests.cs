using Bitcask.Inspection;

namespace Bitcask.CliTests;

public class RepairTests
{
    /// <summary>Every live key of the healthy sample with its value, read through the engine.</summary>
    private static Dictionary<string, byte[]> HealthyValues()
    {
        using var store = BitcaskStore.Open(Cli.Sample("v1-healthy"), new BitcaskOptions { ReadOnly = true });
        return store.Keys().ToDictionary(Convert.ToBase64String, k => store.Get(k)!);
    }

    private static void AssertReadable(string dir, Dictionary<string, byte[]> expected, IReadOnlySet<string> lost)
    {
        using var store = BitcaskStore.Open(dir); // a normal read-write open succeeds
        foreach (var (key, value) in expected)
        {
            if (lost.Contains(key)) continue;
            Assert.Equal(value, store.Get(Convert.FromBase64String(key)));
        }
    }

    [Fact]
    public void Repair_of_a_flipped_bit_quarantines_the_damaged_record_and_keeps_every_other_record()
    {
        using var temp = new TempDirectory("repair-bit");
        var dir = Cli.CopySample(temp, "v1-flipped-bit");
        var damage = StoreInspector.Verify(dir).Problems.Single(p => p.Kind == ProblemKind.DamagedRecord);
        var damagedBytes = File.ReadAllBytes(Path.Combine(dir, damage.File)).AsSpan((int)damage.Offset, (int)damage.Length).ToArray();
        var lostKey = StoreInspector.ReadRecords(Cli.Sample("v1-healthy")).Single(r => r.File == damage.File && r.Offset == damage.Offset).Key;

        var r = Cli.Run("repair", dir);
        Assert.Equal(0, r.Code);
        Assert.Contains("after repair: ", r.Out);
        Assert.Equal(0, Cli.Run("verify", dir).Code);
        var quarantined = Path.Combine(dir, "quarantine", $"{damage.File}-{damage.Offset}.bin");
        Assert.Equal(damagedBytes, File.ReadAllBytes(quarantined));
        AssertReadable(dir, HealthyValues(), new HashSet<string> { Convert.ToBase64String(lostKey) });
    }

    [Fact]
    public void Repair_of_a_torn_tail_truncates_it_and_keeps_the_torn_bytes_in_quarantine()
    {
        using var temp = new TempDirectory("repair-torn");
        var dir = Cli.CopySample(temp, "v1-torn-tail");
        var torn = StoreInspector.Verify(dir).Problems.Single();
        Assert.Equal(ProblemKind.TornTail, torn.Kind);
        var tail = File.ReadAllBytes(Path.Combine(dir, torn.File))[(int)torn.Offset..];

        Assert.Equal(0, Cli.Run("repair", dir).Code);
        Assert.Equal(torn.Offset, new FileInfo(Path.Combine(dir, torn.File)).Length);
        Assert.Equal(tail, File.ReadAllBytes(Path.Combine(dir, "quarantine", $"{torn.File}-{torn.Offset}.bin")));
        Assert.Equal(0, Cli.Run("verify", dir).Code);
        AssertReadable(dir, HealthyValues(), new HashSet<string>());
    }

    [Fact]
    public void Repair_of_a_damaged_hint_replaces_it_with_the_hint_of_the_healthy_store()
    {
        using var temp = new TempDirectory("repair-hint");
        var dir = Cli.CopySample(temp, "v2-damaged-hint"); // repair writes the current (version 2) hint format
        var bad = StoreInspector.Verify(dir).Problems.First(p => p.Kind == ProblemKind.BadHint).File;
        var damaged = File.ReadAllBytes(Path.Combine(dir, bad));

        Assert.Equal(0, Cli.Run("repair", dir).Code);
        Assert.Equal(File.ReadAllBytes(Path.Combine(Cli.Sample("v2-healthy"), bad)), File.ReadAllBytes(Path.Combine(dir, bad)));
        Assert.Equal(damaged, File.ReadAllBytes(Path.Combine(dir, "quarantine", $"{bad}-0.bin")));
        Assert.Equal(0, Cli.Run("verify", dir).Code);
        AssertReadable(dir, HealthyValues(), new HashSet<string>());
    }

    [Fact]
    public void Repair_of_damage_in_the_middle_of_the_newest_segment_is_not_mistaken_for_a_torn_tail()
    {
        using var temp = new TempDirectory("repair-mid");
        // Synced: every record after the damaged one was written after the damaged bytes were fsynced (its durable
        // length proves it), so this is rot of durable data, not an unsynced tail (FORMAT.md §5 step 6).
        using (var store = BitcaskStore.Open(temp.Path, new BitcaskOptions { Durability = Durability.Synced }))
            for (var i = 0; i < 30; i++) store.Put($"key{i:D2}", $"value {i}");
        var records = StoreInspector.ReadRecords(temp.Path).ToList();
        var victim = records[10];
        var path = Path.Combine(temp.Path, victim.File);
        var bytes = File.ReadAllBytes(path);
        bytes[victim.Offset + victim.Length - 1] ^= 0x80;
        File.WriteAllBytes(path, bytes);

        var verify = Cli.Run("verify", temp.Path);
        Assert.Equal(1, verify.Code);
        Assert.Contains(verify.OutLines, l => l.StartsWith($"{victim.File}:{victim.Offset}: damaged record: ", StringComparison.Ordinal));
        Assert.DoesNotContain(verify.OutLines, l => l.Contains("torn tail"));
        using (var damaged = BitcaskStore.Open(temp.Path, new BitcaskOptions { ReadOnly = true }))
            Assert.Throws<CorruptionException>(() => damaged.Get(victim.Key)); // never wrong bytes

        Assert.Equal(0, Cli.Run("repair", temp.Path).Code);
        using var repaired = BitcaskStore.Open(temp.Path);
        Assert.Equal(29, repaired.Count);
        Assert.Null(repaired.Get(victim.Key));
        for (var i = 0; i < 30; i++)
            if (i != 10) Assert.Equal($"value {i}", repaired.GetString($"key{i:D2}"));
    }

    [Fact]
    public void Damage_in_the_newest_segment_before_anything_was_fsynced_is_an_unsynced_torn_tail()
    {
        using var temp = new TempDirectory("unsynced");
        using (var store = BitcaskStore.Open(temp.Path, new BitcaskOptions { Durability = Durability.Buffered }))
            for (var i = 0; i < 30; i++) store.Put($"key{i:D2}", $"value {i}");
        // A crash before the close: no hint file and no closing sync marker, the two proofs that the bytes were durable.
        foreach (var hint in Directory.GetFiles(temp.Path, "*.hint")) File.Delete(hint);
        var segment = Directory.GetFiles(temp.Path, "*.seg").Single();
        var written = File.ReadAllBytes(segment);
        File.WriteAllBytes(segment, written[..^32]);
        var victim = StoreInspector.ReadRecords(temp.Path).ToList()[10];
        var path = Path.Combine(temp.Path, victim.File);
        var bytes = File.ReadAllBytes(path);
        bytes[victim.Offset + victim.Length - 1] ^= 0x80;
        File.WriteAllBytes(path, bytes);

        var verify = Cli.Run("verify", temp.Path);
        Assert.Equal(1, verify.Code);
        Assert.Contains(verify.OutLines, l => l.StartsWith($"{victim.File}:{victim.Offset}: torn tail: ", StringComparison.Ordinal));
        Assert.Equal(0, Cli.Run("repair", temp.Path).Code);
        Assert.Equal(bytes[(int)victim.Offset..], File.ReadAllBytes(Path.Combine(temp.Path, "quarantine", $"{victim.File}-{victim.Offset}.bin")));
        using var repaired = BitcaskStore.Open(temp.Path);
        Assert.Equal(10, repaired.Count); // a prefix of the writes
    }

    [Fact]
    public void Repair_refuses_while_another_process_holds_the_lock_and_changes_nothing()
    {
        using var temp = new TempDirectory("repair-locked");
        var dir = Cli.CopySample(temp, "v1-torn-tail");
        // Take the writer lock the way another process would (flock through FileShare.None).
        using var lockStream = new FileStream(Path.Combine(dir, "LOCK"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var before = Cli.Snapshot(dir, skipLock: true);
        var r = Cli.Run("repair", dir);
        Assert.Equal(2, r.Code);
        Cli.AssertOneCleanErrorLine(r);
        Assert.Contains("refusing to repair", r.Err);
        Cli.AssertUnchanged(before, dir, skipLock: true);
    }
}
