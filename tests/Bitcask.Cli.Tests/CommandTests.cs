using System.Text;
using Bitcask.Inspection;

namespace Bitcask.CliTests;

public class ReadOnlyCommandTests
{
    /// <summary>Exit codes: verify and dump exit 1 for any problem (dump only for damaged ranges, not hint problems); the
    /// others read what a read-only open serves; scan and export exit 1 when the store is damaged: a read hits damaged bytes
    /// (a whole hint points at a record that fails its CRC), or the read-only open read past damage (v2-flipped-after-close:
    /// its damaged record has no hint pointing at it, so the open skips it and scan and export list the rest, warn, exit 1).
    /// Expected per command in the order run below.</summary>
    [Theory]
    [InlineData("v1-healthy", "0 0 0 0 0 0 0 0 0")]
    [InlineData("v1-torn-tail", "1 1 1 0 0 0 0 0 0")]
    [InlineData("v1-flipped-bit", "1 1 1 0 0 0 0 1 1")]
    [InlineData("v1-damaged-hint", "1 1 0 0 0 0 0 0 0")]
    [InlineData("v2-healthy", "0 0 0 0 0 0 0 0 0")]
    [InlineData("v2-torn-tail", "1 1 1 0 0 0 0 0 0")]
    [InlineData("v2-flipped-bit", "1 1 1 0 0 0 0 1 1")]
    [InlineData("v2-damaged-hint", "1 1 0 0 0 0 0 0 0")]
    [InlineData("v2-flipped-after-close", "1 1 1 0 0 0 0 1 1")]
    public void Read_only_commands_leave_every_file_byte_and_timestamp_unchanged(string sample, string exitCodes)
    {
        using var temp = new TempDirectory("ro");
        var dir = Cli.CopySample(temp, sample);
        var before = Cli.Snapshot(dir);
        Thread.Sleep(20); // a changed file would get a visibly different timestamp
        string[][] commands =
        [
            ["verify", dir], ["verify", "--json", dir], ["dump", dir], ["dump", "--live", "--json", dir], ["stats", dir],
            ["stats", "--json", dir], ["get", dir, "user:000"], ["scan", dir], ["export", dir],
        ];
        // Compared as "command options: code" lines, so a failure names the command.
        string Line(string[] args, object code) => $"{string.Join(' ', args.Where(a => a != dir))}: {code}";
        var expected = commands.Zip(exitCodes.Split(' '), Line);
        var actual = commands.Select(args => Line(args, Cli.Run(args).Code));
        Assert.Equal(expected, actual);
        Cli.AssertUnchanged(before, dir);
    }

    [Fact]
    public void Verify_works_beside_a_live_writer_and_sees_what_it_flushed()
    {
        using var temp = new TempDirectory("live");
        using var store = BitcaskStore.Open(temp.Path, new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1024 });
        for (var i = 0; i < 100; i++) store.Put($"k{i}", new string('v', i));
        var r = Cli.Run("verify", temp.Path);
        Assert.Equal(0, r.Code);
        Assert.Contains("100 live keys", r.Out);
        Assert.Equal("vvv", Cli.Run("get", temp.Path, "k3").Out.TrimEnd('\n'));
        var put = Cli.Run("put", temp.Path, "x", "y");
        Assert.Equal(2, put.Code);
        Cli.AssertOneCleanErrorLine(put);
        Assert.Contains("already open for writing", put.Err);
    }

    [Fact]
    public void Dump_lists_every_record_in_file_order_and_live_lists_only_what_the_keydir_points_at()
    {
        var all = Cli.Run("dump", "--json", Cli.Sample("v1-healthy"));
        var live = Cli.Run("dump", "--json", "--live", Cli.Sample("v1-healthy"));
        Assert.Equal(0, all.Code);
        var records = all.OutLines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        var positions = records.Select(r => (r.GetProperty("segment").GetInt64(), r.GetProperty("offset").GetInt64())).ToList();
        Assert.Equal(positions.Order(), positions);
        Assert.Equal(StoreInspector.Verify(Cli.Sample("v1-healthy")).Records, records.Count);
        using var store = BitcaskStore.Open(Cli.Sample("v1-healthy"), new BitcaskOptions { ReadOnly = true });
        Assert.Equal(store.Count, live.OutLines.Length);
        Assert.Contains(records, r => r.TryGetProperty("encoding", out var e) && e.GetString() == "base64");
        var keysOnly = Cli.Run("dump", "--keys-only", "--segment", "1", Cli.Sample("v1-healthy"));
        Assert.All(keysOnly.OutLines, l => Assert.StartsWith("0000000001.seg:", l));
        Assert.DoesNotContain("value=", keysOnly.Out);
    }

    [Fact]
    public void Dump_lists_the_damaged_range_where_it_is_and_exits_1()
    {
        var r = Cli.Run("dump", Cli.Sample("v1-flipped-bit"));
        Assert.Equal(1, r.Code);
        Assert.Contains(r.OutLines, l => l.Contains(" damaged ") && l.Contains("CRC mismatch"));
    }
}

public class KeyValueCommandTests
{
    [Fact]
    public void Put_get_delete_and_scan_round_trip_through_a_new_store()
    {
        using var temp = new TempDirectory("kv");
        var dir = temp.File("store");
        Assert.Equal(0, Cli.Run("put", dir, "greeting", "héllo wörld").Code);
        Assert.Equal(0, Cli.Run("put", dir, "session:1", "token", "--ttl", "30m").Code);
        Assert.Equal(0, Cli.RunWithInput([0xff, 0x00, 0x7f], "put", dir, "blob", "-").Code);
        Assert.Equal("héllo wörld\n", Cli.Run("get", dir, "greeting").Out);
        Assert.Equal("/wB/\n", Cli.Run("get", dir, "blob", "--base64").Out);
        var scan = Cli.Run("scan", dir, "--prefix", "session:");
        Assert.Equal(["\"session:1\"\t\"token\""], scan.OutLines);
        Assert.Equal(0, Cli.Run("delete", dir, "greeting").Code);
        Assert.Equal(1, Cli.Run("delete", dir, "greeting").Code);
        var missing = Cli.Run("get", dir, "greeting");
        Assert.Equal(1, missing.Code);
        Assert.Contains("key not found", missing.Err);
        using var store = BitcaskStore.Open(dir, new BitcaskOptions { ReadOnly = true });
        Assert.True(Bitcask.Cli.Entries.TryGet(store, "session:1"u8, out _, out var expiresAt));
        var expected = DateTimeOffset.UtcNow.AddMinutes(30).ToUnixTimeMilliseconds();
        Assert.InRange(expiresAt, expected - 60_000, expected + 1000);
    }

    [Fact]
    public void Scan_limit_caps_the_number_of_keys()
    {
        var r = Cli.Run("scan", Cli.Sample("v1-healthy"), "--prefix", "user:", "--limit", "3", "--keys-only");
        Assert.Equal(["\"user:000\"", "\"user:002\"", "\"user:003\""], r.OutLines);
    }

    [Fact]
    public void Compact_merges_segments_and_keeps_every_value()
    {
        using var temp = new TempDirectory("compact");
        using (var store = BitcaskStore.Open(temp.Path, new BitcaskOptions { MaxSegmentBytes = 4096, MaxValueBytes = 1024, CompactionEnabled = false }))
            for (var round = 0; round < 5; round++)
                for (var i = 0; i < 50; i++) store.Put($"k{i}", $"v{i}-{round}");
        var r = Cli.Run("compact", temp.Path);
        Assert.Equal(0, r.Code);
        Assert.StartsWith("compacted ", r.Out);
        Assert.Equal(0, Cli.Run("verify", temp.Path).Code);
        for (var i = 0; i < 50; i += 7) Assert.Equal($"v{i}-4\n", Cli.Run("get", temp.Path, $"k{i}").Out);
    }

    [Fact]
    public void Bench_runs_the_whole_workload_and_prints_the_summary_table()
    {
        using var temp = new TempDirectory("bench");
        var dir = temp.File("b");
        var r = Cli.Run("bench", dir, "--keys", "2000");
        Assert.Equal(0, r.Code);
        foreach (var phase in new[] { "put (new keys)", "get (random)", "put (overwrite)", "delete", "compact", "reopen", "check every key" })
            Assert.Contains(phase, r.Out);
        Assert.Contains("all values as expected", r.Out);
        Assert.Equal(0, Cli.Run("verify", dir).Code);
    }
}

public class ExportImportTests
{
    [Fact]
    public void Export_then_import_into_an_empty_store_round_trips_every_key_value_and_expiry()
    {
        using var temp = new TempDirectory("export");
        var source = temp.File("source");
        var random = new Random(7);
        var expected = new Dictionary<string, (byte[] Key, byte[] Value, long ExpiresAt)>();
        using (var store = BitcaskStore.Open(source, new BitcaskOptions { CompressionThreshold = 64 }))
        {
            for (var i = 0; i < 200; i++)
            {
                var key = i % 10 == 0 ? [0xff, (byte)i, 0x00] : Encoding.UTF8.GetBytes($"key:{i}:ü\"\\\n");
                var value = new byte[random.Next(0, 300)];
                if (i % 7 == 0) random.NextBytes(value); else value.AsSpan().Fill((byte)('a' + i % 26));
                if (i % 3 == 0) store.Put(key, value, TimeSpan.FromDays(1 + i));
                else store.Put(key, value);
            }
            store.Delete(Encoding.UTF8.GetBytes("key:1:ü\"\\\n"));
        }
        using (var store = BitcaskStore.Open(source, new BitcaskOptions { ReadOnly = true }))
            foreach (var key in store.Keys())
            {
                Assert.True(Bitcask.Cli.Entries.TryGet(store, key, out var value, out var expiresAt));
                expected[Convert.ToBase64String(key)] = (key, value, expiresAt);
            }
        var file = temp.File("export.jsonl");
        Assert.Equal(0, Cli.Run("export", source, "--out", file).Code);
        Assert.Equal(expected.Count, File.ReadAllLines(file).Length);
        Assert.Contains(File.ReadAllLines(file), l => l.Contains("\"encoding\":\"base64\""));

        var target = temp.File("target");
        var import = Cli.Run("import", target, file);
        Assert.Equal(0, import.Code);
        using (var store = BitcaskStore.Open(target, new BitcaskOptions { ReadOnly = true }))
        {
            Assert.Equal(expected.Count, store.Count);
            foreach (var (key, value, expiresAt) in expected.Values)
            {
                Assert.True(Bitcask.Cli.Entries.TryGet(store, key, out var v, out var e));
                Assert.Equal(value, v);
                Assert.Equal(expiresAt, e);
            }
        }
        // And the second export is identical to the first: same keys, values and expiries, same order.
        var again = temp.File("again.jsonl");
        Assert.Equal(0, Cli.Run("export", target, "--out", again).Code);
        Assert.Equal(File.ReadAllText(file), File.ReadAllText(again));
    }

    [Theory]
    [InlineData("{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\"}\n{\"key\":\"c\",\"value\":\"3\"}\n", 2)]
    [InlineData("{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"c\",\"value\":\"3\"}\nnot json\n", 3)]
    [InlineData("{\"key\":\"a\",\"value\":\"1\",\"colour\":\"red\"}\n", 1)]
    [InlineData("{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"@@\",\"value\":\"1\",\"encoding\":\"base64\"}\n", 2)]
    [InlineData("{\"key\":\"a\",\"value\":\"1\",\"expiresAt\":-5}\n", 1)]
    [InlineData("[1,2]\n", 1)]
    public void Import_reports_the_line_of_a_malformed_line_and_imports_nothing(string content, int badLine)
    {
        using var temp = new TempDirectory("import");
        var file = temp.File("in.jsonl");
        File.WriteAllText(file, content);
        var target = temp.File("target");
        var r = Cli.Run("import", target, file);
        Assert.Equal(1, r.Code);
        Assert.Contains($"{file}:{badLine}: ", r.Err);
        Assert.Contains("nothing was imported", r.Err);
        Assert.False(Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any());
    }

    [Fact]
    public void Export_refuses_to_write_inside_the_store_directory()
    {
        using var temp = new TempDirectory("exp-in");
        var dir = Cli.CopySample(temp, "v1-healthy");
        var before = Cli.Snapshot(dir);
        var r = Cli.Run("export", dir, "--out", Path.Combine(dir, "0000000001.seg"));
        Assert.Equal(2, r.Code);
        Cli.AssertOneCleanErrorLine(r);
        Cli.AssertUnchanged(before, dir);
    }
}
