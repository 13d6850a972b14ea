using System.Text;

namespace Bitcask.Tests;

public class RecoveryTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string Value(int i) => $"value{i}".PadRight(100, '.');

    private static string OnlySegment(TempDirectory dir) => Directory.GetFiles(dir.Path, "*.seg").OrderBy(p => p).Last();

    /// <summary>Writes "k0".."k{n-1}", then the record under test; returns the file length before that last record.</summary>
    private static long WriteThenAppend(TempDirectory dir, int n, Action<BitcaskStore> last)
    {
        long before;
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false }))
        {
            for (var i = 0; i < n; i++) store.Put($"k{i}", $"value {i}");
            store.Sync();
            before = new FileInfo(OnlySegment(dir)).Length;
            last(store);
        }
        foreach (var hint in Directory.GetFiles(dir.Path, "*.hint")) File.Delete(hint); // a crash leaves the newest segment without one
        CutClosingSyncMarker(OnlySegment(dir)); // and without the sync marker a clean close writes
        return before;
    }

    /// <summary>A crash before close leaves no closing sync marker: cuts the one Dispose appended, so the file looks as
    /// it would after a crash at that moment.</summary>
    internal static void CutClosingSyncMarker(string segment)
    {
        var bytes = File.ReadAllBytes(segment);
        if (bytes.Length >= 96 && bytes[^28] == 4) // kind byte of a 32-byte record at the end: a sync marker
            using (var f = new FileStream(segment, FileMode.Open)) f.SetLength(bytes.Length - 32);
    }

    [Fact]
    public void Truncation_at_every_offset_inside_the_last_record_loses_only_that_record()
    {
        using var template = new TempDirectory();
        var before = WriteThenAppend(template, 5, s => s.Put("last", "the final value"));
        var segment = OnlySegment(template);
        var bytes = File.ReadAllBytes(segment);
        for (var cut = before + 1; cut < bytes.Length; cut++)
        {
            using var dir = new TempDirectory();
            File.WriteAllBytes(Path.Combine(dir.Path, Path.GetFileName(segment)), bytes[..(int)cut]);
            using (var store = BitcaskStore.Open(dir.Path))
            {
                Assert.Null(store.GetString("last"));
                for (var i = 0; i < 5; i++) Assert.Equal($"value {i}", store.GetString($"k{i}"));
                var finding = Assert.Single(store.GetStats().RecoveryFindings);
                Assert.Equal(before, finding.Offset);
                Assert.Contains("torn tail", finding.Problem);
                store.Put("after", "recovery");
            }
            Assert.Equal(before, new FileInfo(Path.Combine(dir.Path, Path.GetFileName(segment))).Length);
            using (var store = BitcaskStore.Open(dir.Path))
            {
                Assert.Equal("recovery", store.GetString("after"));
                Assert.Empty(store.GetStats().RecoveryFindings);
            }
        }
    }

    [Fact]
    public void Truncation_inside_a_batch_discards_the_whole_batch_and_keeps_everything_before()
    {
        using var template = new TempDirectory();
        var before = WriteThenAppend(template, 3, s => s.Write(new WriteBatch().Put("b1", "one").Delete("k0").Put("b2", "two")));
        var segment = OnlySegment(template);
        var bytes = File.ReadAllBytes(segment);
        for (var cut = before; cut <= bytes.Length; cut++)
        {
            using var dir = new TempDirectory();
            File.WriteAllBytes(Path.Combine(dir.Path, Path.GetFileName(segment)), bytes[..(int)cut]);
            using var store = BitcaskStore.Open(dir.Path);
            var whole = cut == bytes.Length;
            Assert.Equal(whole ? "one" : null, store.GetString("b1"));
            Assert.Equal(whole ? "two" : null, store.GetString("b2"));
            Assert.Equal(whole ? null : "value 0", store.GetString("k0"));
            Assert.Equal("value 2", store.GetString("k2"));
        }
    }

    [Fact]
    public void Zero_and_garbage_tails_are_cut_as_torn_tails_without_phantom_keys()
    {
        foreach (var garbage in new[] { new byte[1], new byte[4096 + 17], Enumerable.Range(0, 5000).Select(i => (byte)(i * 31 + 7)).ToArray() })
        {
            using var dir = new TempDirectory();
            WriteThenAppend(dir, 4, _ => { });
            var segment = OnlySegment(dir);
            var length = new FileInfo(segment).Length;
            using (var f = new FileStream(segment, FileMode.Append)) f.Write(garbage);
            using var store = BitcaskStore.Open(dir.Path);
            Assert.Equal(4, store.Count);
            Assert.Equal(length, new FileInfo(segment).Length);
        }
    }

    [Fact]
    public void Damage_in_the_middle_fails_read_write_open_without_changing_a_byte_but_read_only_open_serves_the_rest()
    {
        using var dir = new TempDirectory();
        long offsetOfK1;
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false }))
        {
            store.Put("k0", "zero");
            store.Sync();
            offsetOfK1 = new FileInfo(OnlySegment(dir)).Length;
            store.Put("k1", "one");
            store.Sync(); // k2 is written after k1 was durable: damage to k1 cannot be a crash tear
            store.Put("k2", "two");
        }
        foreach (var hint in Directory.GetFiles(dir.Path, "*.hint")) File.Delete(hint);
        var segment = OnlySegment(dir);
        CutClosingSyncMarker(segment); // the power loss came before the close
        var bytes = File.ReadAllBytes(segment);
        bytes[offsetOfK1 + 34] ^= 0x10; // inside k1's value (32-byte header, 2-byte key)
        File.WriteAllBytes(segment, bytes);

        var error = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(dir.Path));
        Assert.Equal(segment, error.Path);
        Assert.Equal(offsetOfK1, error.Offset);
        Assert.Equal(bytes, File.ReadAllBytes(segment));

        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true }))
        {
            Assert.Equal("zero", store.GetString("k0"));
            Assert.Null(store.GetString("k1"));
            Assert.Equal("two", store.GetString("k2"));
            Assert.Equal(offsetOfK1, Assert.Single(store.GetStats().RecoveryFindings).Offset);
        }
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { SkipDamagedRecords = true }))
        {
            Assert.Equal("two", store.GetString("k2"));
            Assert.Single(store.GetStats().RecoveryFindings);
        }
    }

    [Fact]
    public void A_hole_in_unsynced_data_followed_by_unsynced_records_is_a_torn_tail_and_the_cut_bytes_are_quarantined()
    {
        using var dir = new TempDirectory();
        long offsetOfK1;
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false }))
        {
            store.Put("k0", "zero");
            store.Sync();
            offsetOfK1 = new FileInfo(OnlySegment(dir)).Length;
            store.Put("k1", "one"); // k1 and k2 never synced: a power loss may keep k2's page and lose k1's
            store.Put("k2", "two");
        }
        foreach (var hint in Directory.GetFiles(dir.Path, "*.hint")) File.Delete(hint);
        var segment = OnlySegment(dir);
        CutClosingSyncMarker(segment); // the power loss came before the close
        var bytes = File.ReadAllBytes(segment);
        bytes.AsSpan((int)offsetOfK1, 37).Clear(); // k1's record lost: zeros where it was
        File.WriteAllBytes(segment, bytes);

        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal("zero", store.GetString("k0"));
            Assert.Null(store.GetString("k1"));
            Assert.Null(store.GetString("k2")); // a prefix of the writes: nothing after the hole
            var finding = Assert.Single(store.GetStats().RecoveryFindings);
            Assert.Equal(offsetOfK1, finding.Offset);
            Assert.Contains("quarantine", finding.Action);
        }
        Assert.Equal(offsetOfK1, new FileInfo(segment).Length);
        var saved = Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "quarantine")));
        Assert.Equal(bytes[(int)offsetOfK1..], File.ReadAllBytes(saved));
    }

    [Fact]
    public void A_bit_flip_in_a_value_makes_get_throw_instead_of_returning_wrong_bytes()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false });
        store.Put("k", "a value that will rot");
        var segment = OnlySegment(dir);
        var bytes = File.ReadAllBytes(segment);
        var at = bytes.AsSpan().IndexOf(B("will rot"));
        using (var f = new FileStream(segment, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            f.Position = at;
            f.WriteByte((byte)(bytes[at] ^ 1));
        }
        var error = Assert.Throws<CorruptionException>(() => store.Get(B("k")));
        Assert.Equal(segment, error.Path);
    }

    [Fact]
    public void Damaged_or_stale_hint_files_fall_back_to_scanning_the_segment()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1000, CompactionEnabled = false };
        using (var store = BitcaskStore.Open(dir.Path, options))
            for (var i = 0; i < 100; i++) store.Put($"key{i}", Value(i));
        var hints = Directory.GetFiles(dir.Path, "*.hint").OrderBy(p => p).ToArray();
        Assert.True(hints.Length >= 3);
        var flipped = File.ReadAllBytes(hints[0]);
        flipped[flipped.Length / 2] ^= 4;
        File.WriteAllBytes(hints[0], flipped);
        var truncated = File.ReadAllBytes(hints[1]);
        File.WriteAllBytes(hints[1], truncated[..^7]);
        File.Copy(hints[0], hints[2], overwrite: true); // a hint of another segment

        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            for (var i = 0; i < 100; i++) Assert.Equal(Value(i), store.GetString($"key{i}"));
            var findings = store.GetStats().RecoveryFindings;
            Assert.Equal(3, findings.Count(f => f.Path.EndsWith(".hint")));
        }
        using (var store = BitcaskStore.Open(dir.Path, options)) // hints were rewritten after the previous open
        {
            Assert.Empty(store.GetStats().RecoveryFindings);
            Assert.Equal(100, store.Count);
        }
    }

    [Fact]
    public void Reopen_uses_hint_files_and_gives_the_same_keydir_as_a_scan()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1000, CompactionEnabled = false };
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            for (var i = 0; i < 300; i++) store.Put($"key{i % 120}", $"value{i}");
            for (var i = 0; i < 30; i++) store.Delete($"key{i}");
        }
        Dictionary<string, string?> Snapshot(BitcaskStore s) =>
            Enumerable.Range(0, 120).ToDictionary(i => $"key{i}", i => s.GetString($"key{i}"));
        Dictionary<string, string?> withHints, withoutHints;
        using (var store = BitcaskStore.Open(dir.Path, options with { ReadOnly = true }))
        {
            Assert.All(store.GetStats().Segments, s => Assert.True(s.HasHintFile));
            withHints = Snapshot(store);
        }
        foreach (var hint in Directory.GetFiles(dir.Path, "*.hint")) File.Delete(hint);
        using (var store = BitcaskStore.Open(dir.Path, options with { ReadOnly = true }))
            withoutHints = Snapshot(store);
        Assert.Equal(withoutHints, withHints);
        Assert.Equal(90, withHints.Count(kv => kv.Value is not null));
    }

    [Fact]
    public void Missing_segment_in_the_middle_fails_read_write_open_and_is_reported_read_only()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1000, CompactionEnabled = false };
        using (var store = BitcaskStore.Open(dir.Path, options))
            for (var i = 0; i < 100; i++) store.Put($"key{i}", Value(i));
        var segments = Directory.GetFiles(dir.Path, "*.seg").OrderBy(p => p).ToArray();
        File.Delete(segments[1]);
        File.Delete(Path.ChangeExtension(segments[1], ".hint"));
        var error = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(dir.Path, options));
        Assert.Equal(segments[1], error.Path);
        using var readOnly = BitcaskStore.Open(dir.Path, options with { ReadOnly = true });
        Assert.Contains(readOnly.GetStats().RecoveryFindings, f => f.Path == segments[1]);
        Assert.Equal(Value(99), readOnly.GetString("key99"));
    }

    [Fact]
    public void Unknown_format_version_is_refused_without_changing_anything()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path)) store.Put("k", "v");
        var segment = OnlySegment(dir);
        var bytes = File.ReadAllBytes(segment);
        bytes[4] = 9; // version 9, header CRC recomputed so only the version is "wrong"
        var crc = System.IO.Hashing.Crc32.HashToUInt32(bytes.AsSpan(0, 60));
        BitConverter.TryWriteBytes(bytes.AsSpan(60), crc);
        File.WriteAllBytes(segment, bytes);
        var error = Assert.Throws<UnsupportedFormatException>(() => BitcaskStore.Open(dir.Path));
        Assert.Contains("version 9", error.Message);
        Assert.Equal(bytes, File.ReadAllBytes(segment));
        using var readOnly = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true });
        Assert.Contains(readOnly.GetStats().RecoveryFindings, f => f.Problem.Contains("version 9"));
    }

    [Fact]
    public void Leftover_temporary_files_are_removed_on_open()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path)) store.Put("k", "v");
        File.WriteAllText(dir.File("0000000099.seg.tmp"), "half a compaction");
        File.WriteAllText(dir.File("unrelated.txt"), "not ours");
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal("v", store.GetString("k"));
            Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path.EndsWith(".seg.tmp") && f.Action == "removed");
        }
        Assert.False(File.Exists(dir.File("0000000099.seg.tmp")));
        Assert.True(File.Exists(dir.File("unrelated.txt")));
    }

    [Fact]
    public void Segment_headers_created_in_the_same_millisecond_differ_in_their_crc_and_round_trip_the_sub_millisecond_part()
    {
        // A hint file names its segment by the header CRC: two files with the same id and base sequence created in the
        // same millisecond (two stores built in a test, a restored copy) must still be told apart.
        var at = new DateTimeOffset(2026, 11, 27, 1, 2, 3, TimeSpan.Zero).AddTicks(4321);
        var a = new Format.SegmentHeader { SegmentId = 7, BaseSequence = 100 }.CreatedAt(at);
        var b = new Format.SegmentHeader { SegmentId = 7, BaseSequence = 100 }.CreatedAt(at.AddTicks(1));
        Assert.Equal(a.CreatedAtUnixMs, b.CreatedAtUnixMs);
        Assert.NotEqual(a.Crc, b.Crc);
        var decoded = Format.SegmentHeader.TryDecode(a.Encode(), out var error, out _);
        Assert.Null(error);
        Assert.Equal(4321u, decoded!.CreatedAtSubMillisecondTicks);
        Assert.Equal(a.Crc, decoded.Crc);
    }

    [Fact]
    public void Hint_files_of_segments_holding_batches_tombstones_and_expiring_keys_are_used_on_reopen()
    {
        // Open checks that a hint's entries tile their segment (a batch's first record sits one header into it); every
        // layout the engine writes must pass that check, or reopen would silently fall back to scanning.
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 8 * 1024, MaxValueBytes = 1024, CompactionEnabled = false };
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            for (var i = 0; i < 300; i++)
            {
                if (i % 5 == 0) store.Write(new WriteBatch().Put($"b{i}", "batched").Delete($"k{i - 5}").Put(Encoding.UTF8.GetBytes($"t{i}"), "x"u8, TimeSpan.FromDays(1)));
                else store.Put($"k{i}", new string('v', i % 50));
                if (i % 7 == 0) store.Delete($"k{i - 1}");
            }
            store.Write(new WriteBatch().Put("last", "a batch ends the segment"));
            store.Compact(); // compaction outputs and their hints, too
            store.Write(new WriteBatch().Put("after", "compaction").Delete("k1"));
        }
        using (var store = BitcaskStore.Open(dir.Path, options)) // writes the hint of the segment the close sealed
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (store.GetStats().Segments.Any(s => !s.HasHintFile) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        }
        using (var store = BitcaskStore.Open(dir.Path, options with { ReadOnly = true }))
        {
            var stats = store.GetStats();
            Assert.Empty(stats.RecoveryFindings);
            Assert.True(stats.Segments.Count >= 2);
            Assert.All(stats.Segments, s => Assert.True(s.HasHintFile, $"segment {s.Id} was scanned instead of loaded from its hint"));
            Assert.Equal("a batch ends the segment", store.GetString("last"));
            Assert.Equal("compaction", store.GetString("after"));
        }
    }
}
