using Bitcask.Inspection;
using Bitcask.TestSupport;

namespace Bitcask.CliTests;

/// <summary>
/// Repair of a damaged batch in a sealed segment (../shared/RELIABILITY.md §7 items 36 and 39). A sealed segment was
/// fsynced whole before its successor was created, so every batch in it was committed: repair keeps each intact entry of
/// a damaged batch and moves exactly the bytes it drops (the damaged pieces and the batch header that no longer frames
/// the entries) into quarantine/.
/// </summary>
public class BatchRepairTests
{
    private sealed record Template(string Dir, string Segment, long BatchOffset, List<RecordInfo> Entries, Dictionary<string, byte[]> State);

    /// <summary>A closed store whose first (sealed) segment holds puts, a 5-entry batch and more puts; later segments follow.</summary>
    private static Template Build(TempDirectory temp)
    {
        var dir = temp.File("template");
        var options = new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1024, CompactionEnabled = false };
        using (var store = BitcaskStore.Open(dir, options))
        {
            for (var i = 0; i < 4; i++) store.Put($"before{i}", $"value before the batch {i} " + new string('b', 80));
            var batch = new WriteBatch();
            for (var i = 1; i <= 5; i++) batch.Put($"entry{i}", $"batch entry {i} " + new string((char)('0' + i), 90));
            store.Write(batch);
            for (var i = 0; i < 40; i++) store.Put($"after{i}", $"value after the batch {i} " + new string('a', 120)); // rolls over
        }
        var entries = StoreInspector.ReadRecords(dir).Where(r => r.BatchOffset is not null).ToList();
        Assert.Equal(5, entries.Count);
        var segment = Path.Combine(dir, entries[0].File);
        Assert.True(Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal).Last() != segment, "the batch's segment is sealed");
        Dictionary<string, byte[]> state;
        using (var store = BitcaskStore.Open(dir, new BitcaskOptions { ReadOnly = true }))
            state = store.Keys().ToDictionary(k => System.Text.Encoding.UTF8.GetString(k), k => store.Get(k)!);
        return new Template(dir, segment, entries[0].BatchOffset!.Value, entries, state);
    }

    /// <summary>Copies the template, flips <paramref name="bit"/> of byte <paramref name="offset"/> of its batch segment,
    /// repairs it, and returns what is wrong (empty when repair kept every key but <paramref name="lost"/> and quarantined
    /// exactly <paramref name="expectedPieces"/>, each with the damaged store's bytes there).</summary>
    private static List<string> FlipAndRepair(TempDirectory temp, Template t, long offset, int bit, IReadOnlySet<string> lost,
        params (long Offset, long Length)[] expectedPieces)
    {
        var dir = temp.File($"flip-{offset}-{bit}");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(t.Dir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var segment = Path.Combine(dir, Path.GetFileName(t.Segment));
        var bytes = File.ReadAllBytes(segment);
        bytes[offset] ^= (byte)(1 << bit);
        File.WriteAllBytes(segment, bytes);
        var damaged = RemovedBytes.Snapshot(dir);
        var where = $"bit {bit} of byte {offset} (batch at {t.BatchOffset})";
        var problems = new List<string>();

        var report = StoreInspector.Repair(dir);
        if (!report.After.Healthy) problems.Add($"{where}: verify after repair: {string.Join(" | ", report.After.Problems)}");
        var after = RemovedBytes.Snapshot(dir);
        problems.AddRange(RemovedBytes.Check(damaged, after).Select(p => $"{where}: {p}"));
        var name = Path.GetFileName(segment);
        var pieces = after.Keys.Where(k => k.StartsWith($"quarantine/{name}", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var expected = expectedPieces.Select(p => $"quarantine/{name}-{p.Offset}.bin").Order(StringComparer.Ordinal).ToList();
        if (!pieces.SequenceEqual(expected)) problems.Add($"{where}: quarantined [{string.Join(", ", pieces)}], expected [{string.Join(", ", expected)}]");
        else
            foreach (var (pieceOffset, length) in expectedPieces)
                if (after[$"quarantine/{name}-{pieceOffset}.bin"].Length != length)
                    problems.Add($"{where}: the piece at {pieceOffset} holds {after[$"quarantine/{name}-{pieceOffset}.bin"].Length} bytes, expected {length}");
        using (var store = BitcaskStore.Open(dir)) // a normal read-write open succeeds
        {
            foreach (var (key, value) in t.State)
            {
                var got = store.Get(System.Text.Encoding.UTF8.GetBytes(key));
                if (lost.Contains(key))
                {
                    if (got is not null) problems.Add($"{where}: {key}, whose only record was damaged, reads a value");
                }
                else if (got is null || !got.AsSpan().SequenceEqual(value)) problems.Add($"{where}: {key} lost or changed");
            }
            if (store.Count != t.State.Count - lost.Count) problems.Add($"{where}: {store.Count} keys after repair, expected {t.State.Count - lost.Count}");
        }
        Directory.Delete(dir, recursive: true);
        return problems;
    }

    /// <summary>Bytes of the batch header (FORMAT.md §2.2) other than the value length at 24..27.</summary>
    private static IEnumerable<int> HeaderBytesButLength() => Enumerable.Range(0, 24).Concat(Enumerable.Range(28, 4));

    [Fact]
    public void A_flipped_bit_anywhere_in_a_sealed_batchs_header_but_its_length_loses_no_entry_and_only_the_header_goes_to_quarantine()
    {
        using var temp = new TempDirectory("batch-header");
        var t = Build(temp);
        var problems = new List<string>();
        foreach (var b in HeaderBytesButLength())
            for (var bit = 0; bit < 8; bit++)
                problems.AddRange(FlipAndRepair(temp, t, t.BatchOffset + b, bit, new HashSet<string>(), (t.BatchOffset, 32)));
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    /// <summary>
    /// The value length is the one header field whose damage moves the batch's end. When the damaged length still ends
    /// inside the file, <c>SegmentLayout.DamagedBatch.Find</c> tiles entries up to that false end; the record straddling it
    /// fails only because the false end cuts it, the scan for the next intact entry then runs into the false end, and the
    /// batch counts as "aligned": that intact record (the batch's own last entry when the length shrank, a record after
    /// the batch when it grew) is judged damage, dropped by open with SkipDamagedRecords and by repair, and quarantined.
    /// 12 of the 32 bit flips of this field lose a record here (bits 0-7 of its low byte, bits 0-3 of the next).
    /// </summary>
    [Fact]
    public void A_flipped_bit_in_a_sealed_batchs_value_length_loses_no_record_and_only_the_header_goes_to_quarantine()
    {
        using var temp = new TempDirectory("batch-length");
        var t = Build(temp);
        var problems = new List<string>();
        for (var b = 24; b < 28; b++)
            for (var bit = 0; bit < 8; bit++)
                problems.AddRange(FlipAndRepair(temp, t, t.BatchOffset + b, bit, new HashSet<string>(), (t.BatchOffset, 32)));
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void A_flipped_bit_anywhere_in_entry_2_of_a_sealed_5_entry_batch_loses_only_that_entry_and_quarantines_it_with_the_batch_header()
    {
        using var temp = new TempDirectory("batch-entry");
        var t = Build(temp);
        var second = t.Entries[1];
        var lost = new HashSet<string> { System.Text.Encoding.UTF8.GetString(second.Key) };
        var problems = new List<string>();
        for (var offset = second.Offset; offset < second.Offset + second.Length; offset++)
            problems.AddRange(FlipAndRepair(temp, t, offset, (int)(offset % 8), lost, (t.BatchOffset, 32), (second.Offset, second.Length)));
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
