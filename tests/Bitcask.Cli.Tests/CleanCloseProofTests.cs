using System.Text;
using System.Text.Json;
using Bitcask.Inspection;
using Bitcask.TestSupport;

namespace Bitcask.CliTests;

/// <summary>
/// A clean close leaves proof in the segment itself that its bytes were durable (the sync marker Sync() and close append,
/// FORMAT.md §5 step 6), so damage found there later is media damage, never a torn tail, even when the hint file, the
/// other proof, is gone (../shared/RELIABILITY.md §7 item 35).
/// </summary>
public class CleanCloseProofTests
{
    [Fact]
    public void A_byte_flipped_in_the_last_imported_batch_after_close_is_damage_at_its_entry_and_repair_keeps_every_other_key()
    {
        using var temp = new TempDirectory("clean-close");
        var dir = temp.File("store");
        var export = temp.File("keys.jsonl");
        // ~600-byte values: 2,000 of them make two import batches (the CLI writes a batch per MiB).
        var values = Enumerable.Range(0, 2000).ToDictionary(i => $"key{i:D5}", i => $"value {i} " + new string((char)('a' + i % 26), 560 + i % 50));
        File.WriteAllLines(export, values.Select(kv => JsonSerializer.Serialize(new { key = kv.Key, value = kv.Value })));
        Assert.Equal(0, Cli.Run("import", dir, export).Code);

        var segment = Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal).Last();
        var name = Path.GetFileName(segment);
        var hint = Path.ChangeExtension(segment, ".hint");
        Assert.True(File.Exists(hint)); // the close sealed the segment and wrote its hint
        File.Delete(hint); // now only the sync marker proves the segment durable
        var entries = StoreInspector.ReadRecords(dir).Where(r => r.File == name).ToList();
        var batchOffsets = entries.Select(r => r.BatchOffset).Distinct().ToList();
        Assert.True(batchOffsets.Count >= 2 && batchOffsets.All(b => b is not null), "the import wrote several batches and nothing else");
        var batchOffset = batchOffsets.Max()!.Value;
        var batch = entries.Where(r => r.BatchOffset == batchOffset).ToList();
        var middle = batchOffset + (batch[^1].Offset + batch[^1].Length - batchOffset) / 2;
        var victim = batch.Single(r => r.Offset <= middle && middle < r.Offset + r.Length);
        Assert.NotEqual(batchOffset + 32, victim.Offset); // not the batch's first entry: its offset would be ambiguous
        var bytes = File.ReadAllBytes(segment);
        bytes[middle] ^= 0x5A;
        File.WriteAllBytes(segment, bytes);
        var damaged = RemovedBytes.Snapshot(dir);

        // verify: damage at the damaged entry itself, not a torn tail and not the batch's offset.
        var verify = Cli.Run("verify", dir);
        Assert.Equal(1, verify.Code);
        Assert.Contains(verify.OutLines, l => l.StartsWith($"{name}:{victim.Offset}: damaged record: ", StringComparison.Ordinal));
        Assert.DoesNotContain("torn tail", verify.Out);
        Assert.DoesNotContain(verify.OutLines, l => l.StartsWith($"{name}:{batchOffset}:", StringComparison.Ordinal));

        // A read-write open refuses and changes nothing (LOCK aside: taking the lock writes the holder's pid into it).
        var before = Cli.Snapshot(dir, skipLock: true);
        Thread.Sleep(20); // a changed file would get a visibly different timestamp
        var refused = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(dir).Dispose());
        Assert.Equal(segment, refused.Path);
        Assert.Equal(victim.Offset, refused.Offset);
        Cli.AssertUnchanged(before, dir, skipLock: true);

        // repair keeps every intact entry of the committed batch and quarantines what it removes.
        Assert.Equal(0, Cli.Run("repair", dir).Code);
        var victimKey = Encoding.UTF8.GetString(victim.Key);
        using (var store = BitcaskStore.Open(dir))
        {
            Assert.Equal(values.Count - 1, store.Count);
            Assert.Null(store.Get(victim.Key));
            foreach (var (key, value) in values)
                if (key != victimKey) Assert.Equal(value, store.GetString(key));
        }
        Assert.Empty(RemovedBytes.Check(damaged, RemovedBytes.Snapshot(dir)));
        Assert.Equal(bytes.AsSpan((int)victim.Offset, (int)victim.Length).ToArray(),
            File.ReadAllBytes(Path.Combine(dir, "quarantine", $"{name}-{victim.Offset}.bin")));
        Assert.Equal(0, Cli.Run("verify", dir).Code);
    }
}
