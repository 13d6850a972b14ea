using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Bitcask.Inspection;

namespace Bitcask.Tests;

/// <summary>
/// What the one analysis decides about damaged batches (FORMAT.md §5 step 6), which segment may hold a torn tail, and
/// the smaller format rules of the "one judge of damage" issue.
/// </summary>
public class JudgeOfDamageTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Record offsets (and the batch's) of a segment, read with the inspector.</summary>
    private static List<RecordInfo> Records(string dir) => StoreInspector.ReadRecords(dir).ToList();

    private static void Flip(string path, long offset)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[offset] ^= 0x20;
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Five puts in one batch, with writes before and after it, in a segment that a later write seals.</summary>
    private static TempDirectory StoreWithBatch(bool sealAfter)
    {
        var dir = new TempDirectory("batch");
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false, MaxSegmentBytes = 4096, CompressionThreshold = 0 });
        store.Put("before", "b");
        var batch = new WriteBatch();
        for (var i = 1; i <= 5; i++) batch.Put($"e{i}", $"entry {i}");
        store.Write(batch);
        store.Put("after", "a");
        if (sealAfter) for (var i = 0; i < 3; i++) store.Put($"filler{i}", new string((char)(0x66 + i), 2500)); // rolls over: the batch's segment is sealed, not the newest
        return dir;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_damaged_middle_entry_of_a_committed_batch_keeps_every_intact_entry_and_reports_the_entry(bool readOnly)
    {
        using var dir = StoreWithBatch(sealAfter: true);
        foreach (var hint in Directory.GetFiles(dir.Path, "*.hint")) File.Delete(hint);
        var second = Records(dir.Path).Single(r => r.Key.SequenceEqual(B("e2")));
        Flip(Path.Combine(dir.Path, second.File), second.Offset + 32 + 2); // inside entry 2's value
        var report = StoreInspector.Verify(dir.Path);
        var problem = Assert.Single(report.Problems);
        Assert.Equal((ProblemKind.DamagedRecord, second.File, second.Offset), (problem.Kind, problem.File, problem.Offset)); // the entry, not the batch
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = readOnly, SkipDamagedRecords = !readOnly });
        foreach (var kept in new[] { "before", "e1", "e3", "e4", "e5", "after" }) Assert.NotNull(store.GetString(kept));
        Assert.Null(store.GetString("e2"));
    }

    [Fact]
    public void A_damaged_batch_that_nothing_proves_committed_is_dropped_whole_and_the_record_after_it_kept()
    {
        using var dir = StoreWithBatch(sealAfter: false);
        var segment = Directory.GetFiles(dir.Path, "*.seg").Single();
        File.Delete(Path.ChangeExtension(segment, ".hint"));
        RecoveryTests.CutClosingSyncMarker(segment);
        var records = Records(dir.Path);
        var second = records.Single(r => r.Key.SequenceEqual(B("e2")));
        var after = records.Single(r => r.Key.SequenceEqual(B("after")));
        var batchOffset = second.BatchOffset!.Value;
        // The record after the batch says only part of the batch had been fsynced when it was written: the damage cannot
        // be a torn tail (bytes past the damage were durable) but nothing proves the whole batch durable either.
        var bytes = File.ReadAllBytes(segment);
        var record = bytes.AsSpan((int)after.Offset, (int)after.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record[28..], (uint)second.Offset + 40);
        BinaryPrimitives.WriteUInt32LittleEndian(record, Crc32.HashToUInt32(record[4..]));
        bytes[second.Offset + 32 + 2] ^= 0x20;
        File.WriteAllBytes(segment, bytes);

        var problem = Assert.Single(StoreInspector.Verify(dir.Path).Problems);
        Assert.Equal((ProblemKind.DamagedRecord, second.Offset), (problem.Kind, problem.Offset));
        var error = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(dir.Path));
        Assert.Equal(second.Offset, error.Offset);
        foreach (var options in new[] { new BitcaskOptions { ReadOnly = true }, new BitcaskOptions { SkipDamagedRecords = true } })
        {
            using var store = BitcaskStore.Open(dir.Path, options);
            for (var i = 1; i <= 5; i++) Assert.Null(store.GetString($"e{i}")); // all or nothing
            Assert.Equal("b", store.GetString("before"));
            Assert.Equal("a", store.GetString("after"));
        }
        Assert.True(batchOffset < second.Offset);
    }

    [Fact]
    public void After_a_partial_merge_took_the_newest_write_segment_rot_at_the_end_of_an_older_one_is_damage_not_a_torn_tail()
    {
        using var dir = new TempDirectory("partial");
        var options = new BitcaskOptions { CompactionEnabled = false, MaxSegmentBytes = 4096, CompressionThreshold = 0 };
        string oldest;
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            for (var i = 0; i < 30; i++) store.Put($"k{i:D2}", new string((char)('a' + i % 26), 300));
            var segments = store.SegmentsForTests.Snapshot();
            Assert.True(segments.Length >= 3);
            oldest = segments[0].Path;
            // Merge everything but the oldest segment, including the newest write segment (Compact seals it first).
            store.Compact(sealedSegments => sealedSegments.Skip(1).ToList(), CancellationToken.None);
        }
        File.Delete(Path.ChangeExtension(oldest, ".hint"));
        var last = Records(dir.Path).Where(r => r.File == Path.GetFileName(oldest)).MaxBy(r => r.Offset)!;
        Flip(oldest, last.Offset + last.Length - 1);

        var problem = Assert.Single(StoreInspector.Verify(dir.Path).Problems);
        Assert.Equal(ProblemKind.DamagedRecord, problem.Kind);
        var length = new FileInfo(oldest).Length;
        Assert.Throws<CorruptionException>(() => BitcaskStore.Open(dir.Path, options));
        Assert.Equal(length, new FileInfo(oldest).Length); // nothing truncated
    }

    [Fact]
    public void A_segment_header_with_more_than_65536_superseded_ranges_reads_back()
    {
        using var dir = new TempDirectory("ranges");
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false })) store.Put("k", "v");
        var segment = Directory.GetFiles(dir.Path, "*.seg").Single();
        File.Delete(Path.ChangeExtension(segment, ".hint"));
        var bytes = File.ReadAllBytes(segment);
        var header = Bitcask.Format.SegmentHeader.TryDecode(bytes, out _, out _)!;
        // A compaction output may list any number of ranges its writer produced; the reader must accept what was written.
        var ranges = Enumerable.Range(0, 70_000).Select(i => (First: 1_000_000u + 2u * (uint)i, Last: 1_000_000u + 2u * (uint)i)).ToArray();
        var rewritten = header with { Kind = Bitcask.Format.SegmentKind.Compacted, SegmentId = 2_000_000, MergeId = 2_000_000, OutputCount = 1, Superseded = ranges };
        var encoded = rewritten.Encode();
        var decoded = Bitcask.Format.SegmentHeader.TryDecode(encoded, out var error, out _);
        Assert.True(decoded is not null, error);
        Assert.Equal(70_000, decoded!.Superseded.Count);
    }
}
