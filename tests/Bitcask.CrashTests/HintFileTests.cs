using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// Hint file faults (../shared/RELIABILITY.md §7 item 6): a hint is only a hint, the segment is the truth. A bad hint (flipped bit,
/// truncated, an entry pointing outside the segment or between records, a hint of another file with the same id) is
/// ignored, reported with its path, the segment is scanned instead, the keydir equals the one a good hint gives, and a
/// read-write open rewrites the hint. A hint whose segment is gone: removed when a finished compaction explains the gap,
/// a clear failure when it does not.
/// </summary>
public class HintFileTests(ITestOutputHelper output)
{
    private const string Dir = Workloads.Directory;
    private static readonly BitcaskOptions Options = Workloads.Options(Durability.Synced);

    private sealed record Image(FaultFileSystem Fs, Dictionary<string, byte[]> State)
    {
        public string[] Segments => Fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).ToArray();
        public string[] Hints => Fs.Files.Where(f => f.EndsWith(".hint", StringComparison.Ordinal)).ToArray();
    }

    /// <summary>Puts and deletes over 6 keys through several 4 KiB segments, closed cleanly (so every segment has a hint).
    /// <paramref name="keyPrefix"/> changes the keys but not one length, so two images differ only in content.</summary>
    private static Image Build(string keyPrefix = "key", int tagBase = 0)
    {
        var fs = new FaultFileSystem();
        var state = new Dictionary<string, byte[]>();
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            for (var i = 0; i < 70; i++)
            {
                var key = keyPrefix + (i % 6);
                if (i % 11 == 10)
                {
                    store.Delete(Workloads.B(key));
                    state.Remove(key);
                    continue;
                }
                var value = Oracle.MakeValue(key, tagBase + i, 150 + i % 7);
                store.Put(Workloads.B(key), value);
                state[key] = value;
            }
        }
        var image = new Image(fs, state);
        Assert.True(image.Segments.Length >= 3, "the image needs several sealed segments");
        Assert.Equal(image.Segments.Length, image.Hints.Length);
        return image;
    }

    private static string HintOf(string segment) => Path.ChangeExtension(segment, ".hint");

    private static uint IdOf(string file) => uint.Parse(Path.GetFileNameWithoutExtension(file));

    /// <summary>Size of the (version 2) hint entry at <paramref name="entry"/>: 15 bytes, 8 more when bit 2 of its first byte
    /// (has expiry) is set, then the key (FORMAT.md §4).</summary>
    private static int EntrySize(byte[] hint, int entry) =>
        15 + ((hint[entry] & 4) != 0 ? 8 : 0) + BinaryPrimitives.ReadUInt16LittleEndian(hint.AsSpan(entry + 1));

    /// <summary>Offsets of the entries of a well-formed hint file.</summary>
    private static List<int> EntryOffsets(byte[] hint)
    {
        var offsets = new List<int>();
        for (var p = 32; p < hint.Length - 24; p += EntrySize(hint, p)) offsets.Add(p);
        return offsets;
    }

    /// <summary>Recomputes the whole-file CRC and the trailer CRC (version 2 entries have no CRC of their own), so the edit
    /// can be caught only by what the hint says, not by a checksum.</summary>
    private static void Reseal(byte[] hint)
    {
        var trailer = hint.Length - 24;
        BinaryPrimitives.WriteUInt32LittleEndian(hint.AsSpan(trailer + 16), Crc32.HashToUInt32(hint.AsSpan(0, trailer)));
        BinaryPrimitives.WriteUInt32LittleEndian(hint.AsSpan(trailer + 20), Crc32.HashToUInt32(hint.AsSpan(trailer, 20)));
    }

    /// <summary>Reads every key the store lists; a Get that throws is recorded as an error for that key (never wrong bytes).</summary>
    private static (Dictionary<string, byte[]> State, List<string> Errors) Read(BitcaskStore store)
    {
        var state = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var errors = new List<string>();
        foreach (var key in store.Keys())
        {
            try
            {
                if (store.Get(key) is { } value) state[Encoding.UTF8.GetString(key)] = value;
            }
            catch (CorruptionException e)
            {
                errors.Add($"{Encoding.UTF8.GetString(key)}: {e.Message}");
            }
        }
        return (state, errors);
    }

    private static string Describe(Dictionary<string, byte[]> expected, Dictionary<string, byte[]> actual, List<string> errors) =>
        string.Join("; ", Oracle.Diff(expected, actual).Concat(errors).Take(6));

    /// <summary>The pass criteria of item 6 for a damaged hint of <paramref name="segment"/>: a read-only open ignores it,
    /// reports it and changes nothing; a read-write open ignores it, reports it, serves the same keys and values as with the
    /// good hint, and rewrites it so the next open uses a whole hint again.</summary>
    private static string? CheckIgnoredAndRewritten(Image image, string segment, byte[] damaged, string what)
    {
        var fs = image.Fs.Clone();
        var hint = HintOf(segment);
        fs.WriteAllBytes(hint, damaged);
        var before = fs.Files.ToDictionary(f => f, fs.ReadAllBytes);
        using (var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs))
        {
            var (state, errors) = Read(store);
            if (errors.Count > 0 || !Oracle.SameState(image.State, state)) return $"{what}, read-only open: {Describe(image.State, state, errors)}";
            if (!store.GetStats().RecoveryFindings.Any(f => f.Path == hint)) return $"{what}, read-only open: the bad hint was not reported";
        }
        foreach (var (f, b) in before)
            if (!fs.FileExists(f) || !b.AsSpan().SequenceEqual(fs.ReadAllBytes(f))) return $"{what}: a read-only open changed {f}";
        var verify = VerifyCli.Verify(fs);
        if (verify.Code != 1 || !verify.Problems.Any(p => p.File == Path.GetFileName(hint) && p.Kind is "bad hint" or "hint mismatch"))
            return $"{what}: bitcask verify did not report the bad hint: {verify}";
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            var (state, errors) = Read(store);
            if (errors.Count > 0 || !Oracle.SameState(image.State, state)) return $"{what}, read-write open: {Describe(image.State, state, errors)}";
            if (!store.GetStats().RecoveryFindings.Any(f => f.Path == hint)) return $"{what}, read-write open: the bad hint was not reported";
        }
        if (!fs.FileExists(hint)) return $"{what}: the hint was not rewritten";
        if (fs.ReadAllBytes(hint).AsSpan().SequenceEqual(damaged)) return $"{what}: the bad hint is still there after a read-write open";
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            var stats = store.GetStats();
            if (stats.RecoveryFindings.Any(f => f.Path == hint)) return $"{what}: the rewritten hint was rejected again: {stats.RecoveryFindings.First(f => f.Path == hint)}";
            if (!stats.Segments.Single(s => s.Id == IdOf(segment)).HasHintFile) return $"{what}: the rewritten hint is not used";
            var (state, errors) = Read(store);
            if (errors.Count > 0 || !Oracle.SameState(image.State, state)) return $"{what}, open with the rewritten hint: {Describe(image.State, state, errors)}";
        }
        return null;
    }

    [Fact]
    public void A_good_hint_is_used_and_gives_the_same_keydir_as_a_scan()
    {
        var image = Build();
        var fs = image.Fs.Clone();
        using (var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs))
        {
            Assert.Empty(store.GetStats().RecoveryFindings);
            Assert.All(store.GetStats().Segments, s => Assert.True(s.HasHintFile, $"segment {s.Id} was scanned"));
            Assert.True(Oracle.SameState(image.State, Oracle.Dump(store)));
        }
        foreach (var hint in image.Hints) fs.RemoveFile(hint);
        using (var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs))
            Assert.True(Oracle.SameState(image.State, Oracle.Dump(store)));
    }

    [Fact] // engine bug 10 (verify parsed 32-byte hint entries) fixed on main in ea2de49
    public void Bitcask_verify_accepts_the_hint_files_the_engine_writes()
    {
        var image = Build();
        var report = VerifyCli.Verify(image.Fs);
        Assert.True(report.Code == 0, $"a store closed cleanly by the engine: {report}");
        // And after a compaction, whose outputs carry hints built alongside.
        var fs = image.Fs.Clone();
        using (var store = BitcaskStore.Open(Dir, Options, fs)) store.Compact();
        report = VerifyCli.Verify(fs);
        Assert.True(report.Code == 0, $"after a compaction: {report}");
    }

    [Fact]
    public void A_bit_flip_anywhere_in_a_hint_is_ignored_reported_and_the_hint_rewritten()
    {
        var image = Build();
        var rng = new Random(CrashCampaign.BaseSeed + 6);
        var problems = new List<string>();
        var flips = 0;
        foreach (var segment in image.Segments)
        {
            var good = image.Fs.ReadAllBytes(HintOf(segment));
            // Every byte of header and trailer, and a seeded sample of the entries.
            var offsets = Enumerable.Range(0, 32).Concat(Enumerable.Range(good.Length - 24, 24))
                .Concat(Enumerable.Range(0, 24 * CrashCampaign.Scale).Select(_ => rng.Next(32, good.Length - 24))).Distinct().ToList();
            foreach (var offset in offsets)
            {
                var bad = (byte[])good.Clone();
                bad[offset] ^= (byte)(1 << rng.Next(8));
                flips++;
                if (CheckIgnoredAndRewritten(image, segment, bad, $"{Path.GetFileName(segment)} hint bit flip at {offset}") is { } p) problems.Add(p);
            }
        }
        output.WriteLine($"{flips} hint bit flips, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_hint_truncated_anywhere_is_ignored_reported_and_rewritten()
    {
        var image = Build();
        var segment = image.Segments[1];
        var good = image.Fs.ReadAllBytes(HintOf(segment));
        var entries = EntryOffsets(good);
        // Empty, inside the header, mid-entry, at an entry boundary (trailer gone), inside the trailer, one byte short.
        var cuts = new[] { 0, 17, 32, entries[1] + 5, entries[^1] + 40, entries[2], good.Length - 24, good.Length - 10, good.Length - 1 };
        var problems = new List<string>();
        foreach (var cut in cuts.Distinct())
            if (CheckIgnoredAndRewritten(image, segment, good[..cut], $"hint cut at {cut} of {good.Length}") is { } p) problems.Add(p);
        foreach (var p in problems) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_hint_entry_pointing_past_the_end_of_its_segment_is_ignored_reported_and_rewritten()
    {
        var image = Build();
        var segment = image.Segments[0];
        var segmentLength = image.Fs.ReadAllBytes(segment).Length;
        var good = image.Fs.ReadAllBytes(HintOf(segment));
        var problems = new List<string>();
        // Version 2 entries (FORMAT.md §4) store no offset: the last entry's record is moved past the segment's end by its
        // length (+3) or by its gap (bits 3-4 of its first byte: 2 = 64 bytes later, 3 is invalid).
        var last = EntryOffsets(good)[^1];
        var length = BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(last + 3));
        var edits = new (string What, Action<byte[]> Edit)[]
        {
            ($"length {segmentLength}", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(last + 3), (uint)segmentLength)),
            ($"length {length + 100}", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(last + 3), length + 100)),
            ("length uint.MaxValue", b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(last + 3), uint.MaxValue)),
            ("gap 64", b => b[last] = (byte)((b[last] & 0x07) | 2 << 3)),
            ("gap code 3", b => b[last] = (byte)((b[last] & 0x07) | 3 << 3)),
        };
        foreach (var (what, edit) in edits)
        {
            var bad = (byte[])good.Clone();
            edit(bad);
            Reseal(bad);
            if (CheckIgnoredAndRewritten(image, segment, bad, $"last hint entry: {what}") is { } p) problems.Add(p);
        }
        foreach (var p in problems) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact] // engine bug 8 (tests/NOTES-crash.md): fixed by checking that hint entries tile their segment
    public void A_hint_entry_pointing_inside_the_segment_but_not_at_its_record_is_ignored_and_rewritten()
    {
        // bitcask#171: an entry whose offset is inside the segment but not the start of that key's record.
        var image = Build();
        var segment = image.Segments[^1]; // the newest segment holds the newest record of every key
        var good = image.Fs.ReadAllBytes(HintOf(segment));
        var bad = (byte[])good.Clone();
        // Version 2 entries follow one another: a first entry 7 bytes too long puts the second 7 bytes into its record.
        var first = EntryOffsets(bad)[0];
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(first + 3), BinaryPrimitives.ReadUInt32LittleEndian(bad.AsSpan(first + 3)) + 7);
        Reseal(bad);
        var problem = CheckIgnoredAndRewritten(image, segment, bad, "hint entries after the first moved 7 bytes into their records");
        Assert.True(problem is null, problem);
    }

    [Fact]
    public void A_stale_hint_of_an_older_file_with_the_same_id_and_another_length_is_ignored_and_rewritten()
    {
        var image = Build();
        var older = Build(keyPrefix: "old", tagBase: 1000);
        var problems = new List<string>();
        foreach (var segment in image.Segments)
        {
            var stale = older.Fs.ReadAllBytes(HintOf(segment));
            // Cut a record from the end of the older image's hint so that its recorded segment length differs for sure.
            var bytes = (byte[])stale.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)) + 1);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(28), Crc32.HashToUInt32(bytes.AsSpan(0, 28)));
            Reseal(bytes);
            if (CheckIgnoredAndRewritten(image, segment, bytes, $"stale hint for {Path.GetFileName(segment)}") is { } p) problems.Add(p);
        }
        foreach (var p in problems) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_stale_hint_of_an_older_file_with_the_same_id_and_length_is_ignored_and_rewritten()
    {
        // Same id and same byte length, different keys: only the content tells them apart (e.g. a restored backup).
        var image = Build();
        var older = Build(keyPrefix: "old", tagBase: 1000);
        var segment = image.Segments[^1];
        Assert.Equal(image.Fs.ReadAllBytes(segment).Length, older.Fs.ReadAllBytes(segment).Length);
        var problem = CheckIgnoredAndRewritten(image, segment, older.Fs.ReadAllBytes(HintOf(segment)), "hint of an older file with the same id and length");
        Assert.True(problem is null, problem);
    }

    [Fact]
    public void A_hint_whose_segment_was_merged_away_is_deleted_by_a_read_write_open_and_left_alone_by_a_read_only_one()
    {
        // An interrupted compaction: the input segment was deleted, its hint not yet.
        var image = Build();
        var fs = image.Fs.Clone();
        var inputHints = new Dictionary<string, byte[]>();
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            foreach (var h in fs.Files.Where(f => f.EndsWith(".hint", StringComparison.Ordinal))) inputHints[h] = fs.ReadAllBytes(h);
            store.Compact();
        }
        var orphan = inputHints.Keys.First(h => !fs.FileExists(h));
        fs.WriteAllBytes(orphan, inputHints[orphan]);
        using (var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs))
            Assert.True(Oracle.SameState(image.State, Oracle.Dump(store)));
        Assert.True(fs.FileExists(orphan), "a read-only open must not delete anything");
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            Assert.True(Oracle.SameState(image.State, Oracle.Dump(store)));
            Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == orphan && f.Action.Contains("removed", StringComparison.Ordinal));
        }
        Assert.False(fs.FileExists(orphan));
    }

    [Fact]
    public void A_hint_whose_segment_is_missing_in_the_middle_does_not_stand_in_for_it_and_read_write_open_fails_naming_the_segment()
    {
        var image = Build();
        var fs = image.Fs.Clone();
        var missing = image.Segments[1];
        fs.RemoveFile(missing);
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, fs));
        Assert.Equal(missing, e.Path);
        using var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, fs);
        Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path == missing);
        Assert.DoesNotContain(store.GetStats().Segments, s => s.FileName == Path.GetFileName(missing));
    }

    [Fact]
    public void A_read_write_open_that_fails_on_a_missing_segment_changes_no_file()
    {
        var image = Build();
        var fs = image.Fs.Clone();
        fs.RemoveFile(image.Segments[1]);
        var before = fs.Files.ToDictionary(f => f, fs.ReadAllBytes);
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, fs));
        Assert.Contains("not changed", e.Message);
        // The store was not changed: in particular the hint, the only trace of what the lost segment held, stays.
        Assert.Equal(before.Keys.Order(), fs.Files.Order());
    }

    [Fact]
    public void A_hint_whose_newest_segment_is_missing_and_not_merged_away_fails_read_write_open_naming_the_segment()
    {
        // Nothing follows the newest segment, so no "previous segment" link reveals the loss; its hint is the only trace.
        var image = Build();
        var fs = image.Fs.Clone();
        var missing = image.Segments[^1];
        fs.RemoveFile(missing);
        var e = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(Dir, Options, fs));
        Assert.Equal(missing, e.Path);
        Assert.True(fs.FileExists(HintOf(missing)));
    }
}
