using System.Buffers.Binary;
using Bitcask.Format;

namespace Bitcask.Tests;

/// <summary>Hint files of format version 2 (FORMAT.md §4): what they cost on disk, and that open uses them.</summary>
public class HintFormatTests
{
    private static byte[] Key(int i) => System.Text.Encoding.ASCII.GetBytes($"key-{i:D12}"); // 16 bytes

    [Fact]
    public void A_hint_entry_for_a_16_byte_key_takes_31_bytes_and_open_loads_every_key_from_it()
    {
        using var dir = new TempDirectory();
        const int Keys = 5_000;
        var value = new byte[100];
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { MaxSegmentBytes = 64 << 20 }))
            for (var i = 0; i < Keys; i++) store.Put(Key(i), value);
        // Close seals the only segment and writes its hint.
        var hint = Directory.GetFiles(dir.Path, "*.hint").Single();
        var bytes = File.ReadAllBytes(hint);
        Assert.Equal(HintFile.Version, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(2, HintFile.Version);
        var perEntry = (bytes.Length - HintFile.HeaderSize - HintFile.TrailerSize) / (double)Keys;
        Assert.Equal(31.0, perEntry);

        // Open takes the keydir from the hint (a damaged segment value would only show when read) and every key is there.
        var before = File.GetLastWriteTimeUtc(hint);
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true }))
        {
            Assert.Equal(Keys, store.Count);
            for (var i = 0; i < Keys; i += 97) Assert.Equal(value, store.Get(Key(i)));
        }
        Assert.Equal(before, File.GetLastWriteTimeUtc(hint));
    }

    [Fact]
    public void A_store_opened_from_hints_keeps_its_keydir_within_key_plus_32_bytes_per_key()
    {
        // The keydir is sized from the hints before loading them: key bytes from the hints' sizes, not a guess of 24 per
        // key (which left 16-byte keys with a third of their arena unused: 54 bytes per key after a reopen).
        using var dir = new TempDirectory();
        const int Keys = 1_000_000; // the size bench/README quotes key bytes for (small stripes round their bucket count up more)
        var value = new byte[100];
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Buffered, MaxSegmentBytes = 32 << 20 }))
            for (var i = 0; i < Keys; i += 1000)
            {
                var batch = new WriteBatch();
                for (var j = i; j < i + 1000; j++) batch.Put(Key(j), value);
                store.Write(batch);
            }
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true }))
        {
            Assert.True(Directory.GetFiles(dir.Path, "*.hint").Length > 1);
            Assert.Equal(Keys, store.Count);
            var perKey = store.GetStats().KeydirBytes / (double)Keys;
            Assert.True(perKey <= 16 + 32, $"keydir after reopen: {perKey:F1} bytes per 16-byte key");
        }
    }

    [Fact]
    public void Open_sizes_the_keydir_from_the_hint_trailers_entry_count_and_ignores_a_damaged_trailer()
    {
        using var dir = new TempDirectory();
        const int Keys = 3_000;
        using (var store = BitcaskStore.Open(dir.Path))
            for (var i = 0; i < Keys; i++) store.Put(Key(i), new byte[100]);
        var hint = Directory.GetFiles(dir.Path, "*.hint").Single();
        using (var file = Bitcask.Storage.OsFileSystem.Instance.OpenFile(hint, Bitcask.Storage.StorageOpenMode.ReadOnly))
            Assert.Equal(Keys, HintFile.EntryCountHint(file)); // exact, whatever the key length (the old estimate was bytes / 40)
        var bytes = File.ReadAllBytes(hint);
        bytes[^12] ^= 0xFF; // inside the trailer's count: its CRC no longer matches
        File.WriteAllBytes(hint, bytes);
        using (var file = Bitcask.Storage.OsFileSystem.Instance.OpenFile(hint, Bitcask.Storage.StorageOpenMode.ReadOnly))
            Assert.Null(HintFile.EntryCountHint(file));
        using var reopened = BitcaskStore.Open(dir.Path); // the damaged hint is not used: the segment is scanned instead
        Assert.Equal(Keys, reopened.Count);
    }

    [Fact]
    public void A_version_2_hint_carries_expiries_tombstones_and_batches_and_gives_the_same_keydir_as_a_scan()
    {
        using var dir = new TempDirectory();
        var expiry = DateTimeOffset.UtcNow.AddHours(1);
        using (var store = BitcaskStore.Open(dir.Path))
        {
            for (var i = 0; i < 300; i++) store.Put(Key(i), new byte[] { (byte)i }, expiry);
            store.Write(new WriteBatch().Put("batch-a", "1").Put("batch-b", "2").Delete(Key(5)));
            store.Sync(); // a sync marker between records: the next entry's gap is 32 bytes
            store.Write(new WriteBatch().Put("batch-c", "3").Delete(Key(6))); // then a batch header: a 64-byte gap
            store.Delete(Key(7));
            store.Put(Key(8), "plain"u8);
        }
        var withHint = Snapshot(dir.Path);
        foreach (var h in Directory.GetFiles(dir.Path, "*.hint")) File.Delete(h);
        var scanned = Snapshot(dir.Path);
        Assert.Equal(scanned, withHint);
        Assert.DoesNotContain(withHint, e => e.Key == System.Text.Encoding.ASCII.GetString(Key(5)));
        Assert.Contains(withHint, e => e.Key == "batch-c" && e.Value == "3");
        Assert.Contains(withHint, e => e.Key == System.Text.Encoding.ASCII.GetString(Key(10)) && e.ExpiresAt == expiry.ToUnixTimeMilliseconds());
    }

    private static List<(string Key, string Value, long ExpiresAt)> Snapshot(string path)
    {
        using var store = BitcaskStore.Open(path, new BitcaskOptions { ReadOnly = true });
        return store.Keys().Select(k => (System.Text.Encoding.ASCII.GetString(k), System.Text.Encoding.ASCII.GetString(store.Get(k)!),
                store.GetInfo(k)!.Value.ExpiresAt?.ToUnixTimeMilliseconds() ?? 0))
            .OrderBy(e => e.Item1, StringComparer.Ordinal).ToList();
    }
}
