using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Bitcask.CliTests;

/// <summary><c>bitcask backup SRC DST</c>: from a read-only open, beside a writer that holds the store's lock.</summary>
public class BackupCommandTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private sealed record Write(long Revision, string Key, string? Value);

    /// <summary>A writer in this process holds the lock and keeps writing (puts, and deletes batched with a clock key so
    /// their revision is known) with background compaction of 32 KiB segments, while <c>bitcask backup</c> runs beside it.
    /// The writer is not disturbed (no write fails, it goes on after), the command exits 0 and reports the revision, and
    /// the backup verifies healthy and opens to exactly the writes up to that revision. Then a byte flipped in a segment of
    /// the backup (made a file of its own first, so the source is not touched) is reported by <c>bitcask verify</c>.</summary>
    [Fact]
    public void Backup_beside_a_live_writer_opens_to_exactly_the_writes_up_to_its_revision_and_verify_reports_a_flipped_byte()
    {
        using var temp = new TempDirectory("backup");
        var source = temp.File("store");
        var target = temp.File("backup");
        var log = new List<Write>();
        var options = new BitcaskOptions
        {
            MaxSegmentBytes = 32 << 10, CompactionCheckInterval = TimeSpan.FromMilliseconds(20), CompactionFragmentationThreshold = 0.3,
        };
        Cli.Result result;
        using (var store = BitcaskStore.Open(source, options))
        {
            var stop = 0;
            Exception? writerFailure = null;
            var writes = 0;
            var writer = new Thread(() =>
            {
                try
                {
                    var rng = new Random(7);
                    for (var i = 0; Volatile.Read(ref stop) == 0 || i < writes + 500; i++)
                    {
                        var key = $"k{rng.Next(150)}";
                        if (rng.Next(5) == 0)
                        {
                            store.Write(new WriteBatch().Delete(B(key)).Put(B("clock"), B(i.ToString(CultureInfo.InvariantCulture))));
                            var revision = store.GetInfo(B("clock"))!.Value.Version;
                            lock (log)
                            {
                                log.Add(new Write(revision, key, null));
                                log.Add(new Write(revision, "clock", i.ToString(CultureInfo.InvariantCulture)));
                            }
                        }
                        else
                        {
                            var value = $"{key}@{i}" + new string('v', rng.Next(50, 250));
                            store.Put(key, value);
                            lock (log) log.Add(new Write(store.GetInfo(B(key))!.Value.Version, key, value));
                        }
                        if (Volatile.Read(ref stop) == 0) writes = i;
                    }
                }
                catch (Exception e)
                {
                    writerFailure = e;
                }
            });
            writer.Start();
            while (store.GetStats().Segments.Count < 4 && writer.IsAlive) Thread.Sleep(10);
            result = Cli.Run("backup", source, target, "--json");
            Volatile.Write(ref stop, 1); // the writer goes on for 500 more writes after the command
            writer.Join();
            Assert.Null(writerFailure);
            Assert.True(store.GetStats().LastCompaction is not null, "no background compaction ran beside the backup");
        }
        Assert.True(result.Code == 0, $"backup: exit {result.Code}: {result.Err}{result.Out}");
        using var json = JsonDocument.Parse(result.Out);
        var backupRevision = json.RootElement.GetProperty("revision").GetInt64();
        Assert.Equal(Path.GetFullPath(target), json.RootElement.GetProperty("target").GetString());
        Assert.True(backupRevision > 0 && backupRevision < log.Max(w => w.Revision), $"revision {backupRevision} should fall among the writes");

        var verify = Cli.Run("verify", target);
        Assert.True(verify.Code == 0, $"verify of the backup: {verify.Out}{verify.Err}");
        var expected = new Dictionary<string, string>();
        foreach (var w in log.Where(w => w.Revision <= backupRevision).OrderBy(w => w.Revision))
            if (w.Value is null) expected.Remove(w.Key);
            else expected[w.Key] = w.Value;
        using (var backup = BitcaskStore.Open(target))
        {
            var actual = backup.Keys().ToDictionary(k => Encoding.UTF8.GetString(k), k => backup.GetString(Encoding.UTF8.GetString(k))!);
            Assert.Equal(expected.OrderBy(kv => kv.Key, StringComparer.Ordinal), actual.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        }
        Assert.Equal(0, Cli.Run("verify", source).Code);

        // Damage a segment of the backup: first make it a file of its own (a linked one shares its bytes with the source).
        var segment = Directory.GetFiles(target, "*.seg").OrderByDescending(f => new FileInfo(f).Length).First();
        File.Copy(segment, segment + ".own");
        File.Move(segment + ".own", segment, overwrite: true);
        var bytes = File.ReadAllBytes(segment);
        bytes[64 + 40] ^= 0x20; // inside the first record's key or value
        File.WriteAllBytes(segment, bytes);
        var damaged = Cli.Run("verify", target);
        Assert.Equal(1, damaged.Code);
        Assert.Contains(Path.GetFileName(segment), damaged.Out);
        Assert.Contains("damaged record", damaged.Out);
        Assert.Equal(0, Cli.Run("verify", source).Code); // the source never shared those bytes
    }

    [Fact]
    public void Backup_refuses_a_target_inside_the_store_or_not_empty_with_exit_2_and_one_line()
    {
        using var temp = new TempDirectory("backup");
        var source = temp.File("store");
        using (var store = BitcaskStore.Open(source)) store.Put("k", "v");
        var inside = Cli.Run("backup", source, Path.Combine(source, "b"));
        Assert.Equal(2, inside.Code);
        Cli.AssertOneCleanErrorLine(inside);
        Assert.Contains("inside", inside.Err);
        Directory.CreateDirectory(temp.File("full"));
        File.WriteAllText(Path.Combine(temp.File("full"), "x"), "x");
        var full = Cli.Run("backup", source, temp.File("full"));
        Assert.Equal(2, full.Code);
        Cli.AssertOneCleanErrorLine(full);
        Assert.Contains("not empty", full.Err);
        var missing = Cli.Run("backup", temp.File("nothing"), temp.File("b2"));
        Assert.Equal(2, missing.Code);
        Cli.AssertOneCleanErrorLine(missing);
        var help = Cli.Run("backup", "--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("bitcask backup /var/lib/myservice/kv", help.Out);
        var ok = Cli.Run("backup", source, temp.File("b3"));
        Assert.Equal(0, ok.Code);
        Assert.Contains("at revision", ok.Out);
        Assert.Equal("v", Cli.Run("get", temp.File("b3"), "k").Out.Trim());
    }

    /// <summary>Damage in the source is not hidden: a backup holds the same bytes. With the damaged segment's hint gone the
    /// read-only open finds it (exit 1, "source damage" line naming the file); with the hint in place open does not read
    /// those bytes, and <c>--verify</c> finds it in the backup (exit 1).</summary>
    [Fact]
    public void Backup_of_a_damaged_store_exits_1_naming_the_damage_it_carries()
    {
        using var temp = new TempDirectory("backup");
        var source = temp.File("store");
        using (var store = BitcaskStore.Open(source, new BitcaskOptions { MaxSegmentBytes = 16 << 10, CompactionEnabled = false }))
            for (var i = 0; i < 400; i++) store.Put($"k{i}", new string('v', 100));
        var first = Directory.GetFiles(source, "*.seg").Order(StringComparer.Ordinal).First();
        var bytes = File.ReadAllBytes(first);
        bytes[64 + 40] ^= 0x01;
        File.WriteAllBytes(first, bytes);

        var verified = Cli.Run("backup", source, temp.File("b1"), "--verify");
        Assert.True(verified.Code == 1, $"exit {verified.Code}: {verified.Out}{verified.Err}");
        Assert.Contains("damaged record", verified.Out);
        Assert.Contains(Path.GetFileName(first), verified.Out);

        File.Delete(Path.ChangeExtension(first, ".hint"));
        var scanned = Cli.Run("backup", source, temp.File("b2"));
        Assert.True(scanned.Code == 1, $"exit {scanned.Code}: {scanned.Out}{scanned.Err}");
        Assert.Contains($"source damage (in the backup too): {Path.GetFileName(first)}:", scanned.Out);
        Assert.Equal(1, Cli.Run("verify", temp.File("b2")).Code);
    }
}
