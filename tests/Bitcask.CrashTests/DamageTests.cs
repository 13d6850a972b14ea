using System.Buffers.Binary;
using System.IO.Hashing;
using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// Damaged bytes on disk (../shared/RELIABILITY.md §7 items 1–5, 7): truncations, garbage tails, bit flips, hostile lengths,
/// zeroed and missing segments, unknown versions, debris. Open never crashes, never returns wrong bytes, and reports each
/// finding with file and offset; only the torn tail of the newest segment is ever cut.
/// </summary>
public class DamageTests(ITestOutputHelper output)
{
    private const string Dir = Workloads.Directory;
    private static readonly BitcaskOptions Options = Workloads.Options(Durability.Synced);

    /// <summary>A closed store written through the fault file system: its files, and every value ever written per key.</summary>
    private sealed class Image
    {
        public required FaultFileSystem Fs { get; init; }
        public required Dictionary<string, byte[]> State { get; init; }
        public required Dictionary<string, List<byte[]>> History { get; init; }
        /// <summary>(file, offset, length, key) of every top-level record in write order.</summary>
        public required List<(string File, long Offset, int Length, string Key)> Records { get; init; }
        public string[] Segments => Fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).ToArray();
    }

    /// <summary>Writes <paramref name="count"/> puts of ~<paramref name="size"/> bytes over 6 keys (plus an optional final batch),
    /// tracking where each record lands, then closes cleanly.</summary>
    private static Image Build(int count, int size, bool endWithBatch = false, bool keepHints = false)
    {
        var fs = new FaultFileSystem();
        var state = new Dictionary<string, byte[]>();
        var history = new Dictionary<string, List<byte[]>>();
        var records = new List<(string, long, int, string)>();
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            for (var i = 0; i <= count; i++)
            {
                if (i == count && !endWithBatch) break;
                var before = fs.History.Count;
                var key = "key" + (i % 6);
                if (i == count)
                {
                    var v1 = Oracle.MakeValue("key1", i, 40);
                    var v2 = Oracle.MakeValue("key2", i, 40);
                    store.Write(new WriteBatch().Put(Workloads.B("key1"), v1).Put(Workloads.B("key2"), v2));
                    state["key1"] = v1; state["key2"] = v2;
                    Track("key1", v1); Track("key2", v2);
                    key = "batch";
                }
                else
                {
                    var value = Oracle.MakeValue(key, i, size + i % 7);
                    store.Put(Workloads.B(key), value);
                    state[key] = value;
                    Track(key, value);
                }
                var write = fs.History.Skip(before).Last(o => o.Kind == FsOpKind.Write && o.Path.EndsWith(".seg", StringComparison.Ordinal)); // not a background hint write
                records.Add((write.Path, write.Offset, (int)write.Length, key));
            }
        }
        // Without hint files open scans (validates) every record; the hinted variant is tested separately.
        if (!keepHints) foreach (var hint in fs.Files.Where(f => f.EndsWith(".hint", StringComparison.Ordinal))) fs.RemoveFile(hint);
        // The image is the disk as a crash after the last write leaves it: without the sync marker the close appends
        // (which would prove every byte before it durable, making damage there media damage instead of a torn tail).
        var newest = fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Last();
        var bytes = fs.ReadAllBytes(newest);
        if (bytes.Length >= 96 && bytes[^28] == 4) fs.WriteAllBytes(newest, bytes[..^32]);
        return new Image { Fs = fs, State = state, History = history, Records = records };

        void Track(string k, byte[] v)
        {
            if (!history.TryGetValue(k, out var list)) history[k] = list = [];
            list.Add(v);
        }
    }

    private static string N(string path) => Path.GetFileName(path);

    /// <summary><c>bitcask verify</c> of the image must report a problem of <paramref name="kind"/> (any when null) at exactly
    /// the file and offset the engine reported.</summary>
    private static void AssertVerifyReports(FaultFileSystem fs, string file, long offset, string? kind, string context)
    {
        var report = VerifyCli.Verify(fs);
        Assert.True(report.Code == 1 && report.Problems.Any(p => p.File == N(file) && p.Offset == offset && (kind is null || p.Kind == kind)),
            $"{context}: bitcask verify should report {kind ?? "a problem"} at {N(file)}:{offset}; it said: {report}");
    }

    /// <summary>After recovery <c>bitcask verify</c> finds the store healthy, hint files included.</summary>
    private static void AssertVerifyHealthy(FaultFileSystem fs, string context)
    {
        var report = VerifyCli.Verify(fs);
        Assert.True(report.Code == 0, $"{context}: bitcask verify after recovery: {report}");
    }

    private static Dictionary<string, byte[]> OpenAndDump(FaultFileSystem fs, BitcaskOptions? options = null)
    {
        using var store = BitcaskStore.Open(Dir, options ?? Options, fs);
        return Oracle.Dump(store);
    }

    /// <summary>Every value a damaged store returns must be one that was written for that key (never foreign bytes).</summary>
    private static void AssertNoForeignBytes(Image image, IReadOnlyDictionary<string, byte[]> seen, string context)
    {
        foreach (var (k, v) in seen)
            Assert.True(image.History.TryGetValue(k, out var values) && values.Any(x => x.AsSpan().SequenceEqual(v)),
                $"{context}: key {k} returned bytes that were never written for it: {Oracle.Show(v)}");
    }

    // ------------------------------------------------------------------ item 1

    [Fact]
    public void Truncating_the_last_record_at_every_byte_drops_only_that_record_and_the_store_stays_writable()
    {
        var image = Build(count: 12, size: 90);
        var last = image.Records[^1];
        var expected = Oracle.Apply(new Dictionary<string, byte[]>(), []);
        foreach (var (k, v) in image.State) expected[k] = v;
        // State without the last put: the key's previous value.
        var previous = image.History[last.Key][^2];
        expected[last.Key] = previous;
        var full = image.Fs.ReadAllBytes(last.File);
        Assert.Equal(last.Offset + last.Length, full.Length);
        for (var cut = last.Offset; cut < full.Length; cut++)
        {
            var fs = image.Fs.Clone();
            fs.WriteAllBytes(last.File, full[..(int)cut]);
            if (cut > last.Offset) AssertVerifyReports(fs, last.File, last.Offset, "torn tail", $"cut at {cut}");
            else AssertVerifyHealthy(fs, $"cut at the record boundary {cut}");
            BitcaskStore store;
            try { store = BitcaskStore.Open(Dir, Options, fs); }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"cut at {cut}: open failed: {e.Message}"); }
            using (store)
            {
                Assert.True(Oracle.SameState(expected, Oracle.Dump(store)), $"cut at {cut}: state differs");
                if (cut > last.Offset) Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == last.File && f.Offset == last.Offset);
                store.Put("after"u8, "cut"u8);
            }
            Assert.Equal(last.Offset, fs.ReadAllBytes(last.File).Length); // cut back to the record boundary
            AssertVerifyHealthy(fs, $"cut at {cut}");
            var again = OpenAndDump(fs);
            Assert.Equal("cut"u8.ToArray(), again["after"]);
        }
        output.WriteLine($"{full.Length - last.Offset} truncation points checked");
    }

    [Fact] // engine bug 1 (torn batch read as damage) was fixed on main in 2c40f6a
    public void Truncating_a_final_batch_at_every_byte_drops_the_whole_batch()
    {
        var image = Build(count: 6, size: 90, endWithBatch: true);
        var last = image.Records[^1];
        var full = image.Fs.ReadAllBytes(last.File);
        var expected = new Dictionary<string, byte[]>(image.State)
        {
            ["key1"] = image.History["key1"][^2],
            ["key2"] = image.History["key2"][^2],
        };
        for (var cut = last.Offset; cut < full.Length; cut++)
        {
            var fs = image.Fs.Clone();
            fs.WriteAllBytes(last.File, full[..(int)cut]);
            Dictionary<string, byte[]> state;
            try { state = OpenAndDump(fs); }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"cut at {cut} of a {last.Length}-byte batch at {last.Offset}: open failed: {e.Message}"); }
            Assert.True(Oracle.SameState(expected, state), $"cut at {cut}: the batch was not dropped whole");
        }
    }

    // ------------------------------------------------------------------ item 2

    [Theory]
    [InlineData(1, false)]
    [InlineData(31, false)]
    [InlineData(4096, false)]
    [InlineData(8192, false)]
    [InlineData(7, true)]
    [InlineData(333, true)]
    [InlineData(5000, true)]
    public void A_zero_or_garbage_tail_after_the_last_record_is_cut_and_creates_no_phantom_key(int bytes, bool garbage)
    {
        var image = Build(count: 8, size: 200);
        var file = image.Records[^1].File;
        var original = image.Fs.ReadAllBytes(file);
        var tail = new byte[bytes];
        if (garbage) new Random(bytes).NextBytes(tail);
        image.Fs.WriteAllBytes(file, [.. original, .. tail]);
        AssertVerifyReports(image.Fs, file, original.Length, "torn tail", $"{bytes}-byte tail");
        using (var store = BitcaskStore.Open(Dir, Options, image.Fs))
        {
            Assert.True(Oracle.SameState(image.State, Oracle.Dump(store)));
            Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == file && f.Offset == original.Length);
        }
        Assert.Equal(original, image.Fs.ReadAllBytes(file));
        AssertVerifyHealthy(image.Fs, $"{bytes}-byte tail cut");
    }

    // ------------------------------------------------------------------ item 3

    [Fact]
    public void Corruption_in_the_middle_of_the_newest_segment_fails_read_write_open_without_changing_a_byte()
    {
        var image = Build(count: 8, size: 150);
        var newest = image.Segments[^1];
        var inNewest = image.Records.Where(r => r.File == newest).ToList();
        Assert.True(inNewest.Count >= 3, "need several records in the newest segment");
        var victim = inNewest[1];
        var bytes = image.Fs.ReadAllBytes(newest);
        bytes[victim.Offset + victim.Length - 3] ^= 0x10; // inside the value
        image.Fs.WriteAllBytes(newest, bytes);
        var before = Snapshot(image.Fs);

        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, image.Fs));
        Assert.Equal(newest, e.Path);
        Assert.Equal(victim.Offset, e.Offset);
        AssertUnchanged(before, image.Fs);
        AssertVerifyReports(image.Fs, newest, victim.Offset, "damaged record", "damage in the newest segment");

        var ro = OpenAndDump(image.Fs, Options with { ReadOnly = true });
        AssertNoForeignBytes(image, ro, "read-only");
        foreach (var (k, v) in image.State.Where(kv => kv.Key != victim.Key)) Assert.Equal(v, ro[k]);
        using (var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, image.Fs))
            Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == newest && f.Offset == victim.Offset);
        AssertUnchanged(before, image.Fs);
    }

    private static Dictionary<string, byte[]> Snapshot(FaultFileSystem fs) => fs.Files.ToDictionary(f => f, fs.ReadAllBytes);

    private static void AssertUnchanged(Dictionary<string, byte[]> before, FaultFileSystem fs)
    {
        Assert.Equal(before.Keys.Order(), fs.Files.Order());
        foreach (var (f, b) in before) Assert.True(b.AsSpan().SequenceEqual(fs.ReadAllBytes(f)), $"{f} was changed");
    }

    // ------------------------------------------------------------------ item 4

    [Fact]
    public void A_single_bit_flip_anywhere_in_a_sealed_segment_is_reported_with_file_and_offset_and_never_returns_wrong_bytes()
    {
        var image = Build(count: 70, size: 150);
        var sealedSegment = image.Segments[0];
        Assert.True(image.Segments.Length >= 3, "need sealed segments");
        var original = image.Fs.ReadAllBytes(sealedSegment);
        var records = image.Records.Where(r => r.File == sealedSegment).ToList();
        // Every bit of one whole record (header, key, value, CRC), plus a seeded sample of 256 positions over the file (header included).
        var target = records[2];
        var positions = new List<(long Offset, int Bit)>();
        for (var o = target.Offset; o < target.Offset + target.Length; o++)
            for (var b = 0; b < 8; b++) positions.Add((o, b));
        var rng = new Random(CrashCampaign.BaseSeed);
        for (var i = 0; i < 256 * CrashCampaign.Scale; i++) positions.Add((rng.Next(original.Length), rng.Next(8)));

        var verified = 0;
        foreach (var (offset, bit) in positions)
        {
            var fs = image.Fs.Clone();
            var bytes = (byte[])original.Clone();
            bytes[offset] ^= (byte)(1 << bit);
            fs.WriteAllBytes(sealedSegment, bytes);
            var recordStart = offset < 64 ? 0 : records.Last(r => r.Offset <= offset).Offset;

            var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, fs));
            Assert.Equal(sealedSegment, e.Path);
            Assert.True(e.Offset == recordStart, $"flip at {offset}.{bit}: reported offset {e.Offset}, record starts at {recordStart}");
            Assert.True(bytes.AsSpan().SequenceEqual(fs.ReadAllBytes(sealedSegment)), "read-write open changed the damaged file");
            if (verified++ % 8 == 0) AssertVerifyReports(fs, e.Path, e.Offset, null, $"flip at {offset}.{bit}");

            using var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs);
            Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == sealedSegment && f.Offset == recordStart);
            AssertNoForeignBytes(image, Oracle.Dump(store), $"flip at {offset}.{bit}");
        }
        output.WriteLine($"{positions.Count} single-bit flips in a sealed segment checked");
    }

    [Fact]
    public void With_hint_files_a_bit_flip_in_a_sealed_segment_makes_get_of_that_key_throw_and_never_return_wrong_bytes()
    {
        var image = Build(count: 70, size: 150, keepHints: true);
        Assert.Contains(image.Fs.Files, f => f.EndsWith(".hint", StringComparison.Ordinal));
        var segment = image.Segments[0];
        var original = image.Fs.ReadAllBytes(segment);
        var records = image.Records.Where(r => r.File == segment).ToList();
        var rng = new Random(CrashCampaign.BaseSeed + 1);
        var flips = 0;
        for (var i = 0; i < 128 * CrashCampaign.Scale; i++)
        {
            var offset = rng.Next(64, original.Length);
            var fs = image.Fs.Clone();
            var bytes = (byte[])original.Clone();
            bytes[offset] ^= (byte)(1 << rng.Next(8));
            fs.WriteAllBytes(segment, bytes);
            var record = records.Last(r => r.Offset <= offset);
            using var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs);
            foreach (var key in image.State.Keys)
            {
                try
                {
                    var value = store.Get(Workloads.B(key));
                    if (value is not null) AssertNoForeignBytes(image, new Dictionary<string, byte[]> { [key] = value }, $"hinted flip at {offset}");
                }
                catch (CorruptionException e)
                {
                    Assert.Equal(segment, e.Path);
                    Assert.Equal(record.Offset, e.Offset);
                }
            }
            flips++;
        }
        output.WriteLine($"{flips} bit flips under hint files checked");
    }

    [Fact]
    public void A_sealed_segment_replaced_by_zeros_fails_read_write_open_and_read_only_serves_the_rest()
    {
        var image = Build(count: 70, size: 150);
        var victim = image.Segments[1];
        var length = image.Fs.ReadAllBytes(victim).Length;
        image.Fs.WriteAllBytes(victim, new byte[length]);
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, image.Fs));
        Assert.Equal(victim, e.Path);
        Assert.Equal(0, e.Offset);
        AssertVerifyReports(image.Fs, victim, 0, null, "zeroed segment");
        using var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, image.Fs);
        Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == victim && f.Offset == 0);
        AssertNoForeignBytes(image, Oracle.Dump(store), "zeroed segment");
    }

    // ------------------------------------------------------------------ item 5

    [Theory]
    [InlineData(6, 0u)]              // key length (u16 at offset 6) 0
    [InlineData(6, 1025u)]           // key length max + 1
    [InlineData(6, 0xFFFFu)]         // key length 65535
    [InlineData(24, 2049u)]          // value length (u32 at offset 24) max + 1
    [InlineData(24, 0x7FFFFFFFu)]
    [InlineData(24, 0xFFFFFFFFu)]
    [InlineData(28, 0xFFFFFFFFu)]    // durable length
    public void Hostile_length_fields_are_damage_in_a_sealed_segment_and_a_torn_tail_at_the_end_of_the_newest(int field, uint value)
    {
        var image = Build(count: 70, size: 150);
        // Sealed segment, a record in the middle: damage.
        var sealedRecord = image.Records.Where(r => r.File == image.Segments[0]).Skip(1).First();
        var fs = image.Fs.Clone();
        var bytes = fs.ReadAllBytes(sealedRecord.File);
        WriteField(bytes.AsSpan((int)sealedRecord.Offset + field), field, value);
        fs.WriteAllBytes(sealedRecord.File, bytes);
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, fs));
        Assert.Equal((sealedRecord.File, sealedRecord.Offset), (e.Path, e.Offset));
        AssertNoForeignBytes(image, OpenAndDump(fs, Options with { ReadOnly = true }), "read-only");

        // The last record of the newest segment: a torn tail, cut.
        var last = image.Records[^1];
        fs = image.Fs.Clone();
        bytes = fs.ReadAllBytes(last.File);
        WriteField(bytes.AsSpan((int)last.Offset + field), field, value);
        fs.WriteAllBytes(last.File, bytes);
        var state = OpenAndDump(fs);
        var expected = new Dictionary<string, byte[]>(image.State) { [last.Key] = image.History[last.Key][^2] };
        Assert.True(Oracle.SameState(expected, state));
        Assert.Equal(last.Offset, fs.ReadAllBytes(last.File).Length);
    }

    /// <summary>FORMAT.md §2.2: the key length is a u16 at offset 6; value length and durable length are u32.</summary>
    private static void WriteField(Span<byte> at, int field, uint value)
    {
        if (field == 6) BinaryPrimitives.WriteUInt16LittleEndian(at, (ushort)value);
        else BinaryPrimitives.WriteUInt32LittleEndian(at, value);
    }

    // ------------------------------------------------------------------ item 7 and the missing / unknown-version cases

    [Fact]
    public void A_missing_segment_in_the_middle_fails_read_write_open_naming_it_and_read_only_reports_it()
    {
        var image = Build(count: 70, size: 150);
        var missing = image.Segments[1];
        image.Fs.RemoveFile(missing);
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, image.Fs));
        Assert.Equal(missing, e.Path);
        AssertVerifyReports(image.Fs, missing, e.Offset, "missing segment", "missing segment");
        using var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, image.Fs);
        Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == missing);
        AssertNoForeignBytes(image, Oracle.Dump(store), "missing segment");
    }

    [Fact]
    public void A_segment_of_an_unknown_format_version_fails_read_write_open_unchanged_and_read_only_skips_it()
    {
        var image = Build(count: 70, size: 150);
        var victim = image.Segments[0];
        var bytes = image.Fs.ReadAllBytes(victim);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), 3);
        var crc = new Crc32();
        crc.Append(bytes.AsSpan(0, 60));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(60), crc.GetCurrentHashAsUInt32()); // a valid header of version 3
        image.Fs.WriteAllBytes(victim, bytes);
        var before = Snapshot(image.Fs);
        var e = Assert.Throws<UnsupportedFormatException>(() => BitcaskStore.Open(Dir, Options, image.Fs));
        Assert.Equal((victim, 4L), (e.Path, e.Offset));
        AssertUnchanged(before, image.Fs);
        AssertVerifyReports(image.Fs, victim, e.Offset, "unsupported version", "unknown version");
        using var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, image.Fs);
        Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == victim && f.Offset == 4);
        AssertNoForeignBytes(image, Oracle.Dump(store), "unknown version");
    }

    [Fact]
    public void Directory_debris_is_cleaned_or_left_alone_and_never_loaded_as_data()
    {
        var image = Build(count: 20, size: 150);
        var fs = image.Fs;
        var tmp = Path.Combine(Dir, "0000000099.seg.tmp");
        var unknown = Path.Combine(Dir, "notes.txt");
        var emptyNewest = Path.Combine(Dir, "0000000050.seg");
        fs.WriteAllBytes(tmp, fs.ReadAllBytes(image.Segments[0]));
        fs.WriteAllBytes(unknown, "keep me"u8.ToArray());
        fs.WriteAllBytes(emptyNewest, []);
        // Read-only: nothing touched.
        var before = Snapshot(fs);
        AssertNoForeignBytes(image, OpenAndDump(fs, Options with { ReadOnly = true }), "read-only with debris");
        AssertUnchanged(before, fs);
        // Read-write: temp and interrupted creation removed, unknown file untouched, data intact.
        Assert.True(Oracle.SameState(image.State, OpenAndDump(fs)));
        Assert.DoesNotContain(tmp, fs.Files);
        Assert.DoesNotContain(emptyNewest, fs.Files);
        Assert.Equal("keep me"u8.ToArray(), fs.ReadAllBytes(unknown));
    }

    [Fact]
    public void A_segment_whose_header_names_another_id_is_damage()
    {
        var image = Build(count: 70, size: 150);
        var copy = Path.Combine(Dir, "0000000077.seg"); // duplicate of segment 1 under another id, before the newest
        image.Fs.WriteAllBytes(copy, image.Fs.ReadAllBytes(image.Segments[0]));
        var newestId = image.Segments.Length;
        Assert.True(77 > newestId);
        // Id 77 is now the highest: a header naming id 1 in a file that is not a short interrupted creation is damage.
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, image.Fs));
        Assert.Equal(copy, e.Path);
        AssertNoForeignBytes(image, OpenAndDump(image.Fs, Options with { ReadOnly = true }), "duplicate id");
    }
}
