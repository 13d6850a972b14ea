using Bitcask.Analysis;
using Bitcask.Inspection;

namespace Bitcask.CliTests;

/// <summary>verify on the committed data-samples: exit codes, and the exact file and offset of each injected fault,
/// located independently by comparing the damaged sample's bytes with the healthy one.</summary>
public class SampleTests
{
    private static int FirstDifference(string a, string b)
    {
        var x = File.ReadAllBytes(a);
        var y = File.ReadAllBytes(b);
        for (var i = 0; i < Math.Min(x.Length, y.Length); i++) if (x[i] != y[i]) return i;
        return Math.Min(x.Length, y.Length);
    }

    [Fact]
    public void Healthy_sample_verifies_healthy_with_exit_code_0()
    {
        var r = Cli.Run("verify", Cli.Sample("v1-healthy"));
        Assert.Equal(0, r.Code);
        Assert.EndsWith("healthy", r.Out.Trim());
        var report = StoreInspector.Verify(Cli.Sample("v1-healthy"));
        Assert.True(report.Segments >= 3);
        Assert.Equal(report.Segments, report.HintFiles);
        Assert.True(report.Tombstones > 0 && report.Batches > 0);
        var records = StoreInspector.ReadRecords(Cli.Sample("v1-healthy")).ToList();
        Assert.Contains(records, x => x.Compressed);
        Assert.Contains(records, x => x.ExpiresAt > DateTimeOffset.UtcNow.AddYears(50).ToUnixTimeMilliseconds());
    }

    [Fact]
    public void Torn_tail_sample_is_reported_as_torn_tail_at_the_end_of_the_healthy_data()
    {
        var newest = Directory.GetFiles(Cli.Sample("v1-torn-tail"), "*.seg").Order(StringComparer.Ordinal).Last();
        var name = Path.GetFileName(newest);
        var healthyLength = new FileInfo(Path.Combine(Cli.Sample("v1-healthy"), name)).Length;
        Assert.True(new FileInfo(newest).Length > healthyLength);
        var r = Cli.Run("verify", Cli.Sample("v1-torn-tail"));
        Assert.Equal(1, r.Code);
        var problems = r.OutLines.Where(l => l.Contains(": torn tail: ") || l.Contains(": damaged record: ")).ToList();
        Assert.StartsWith($"{name}:{healthyLength}: torn tail: ", Assert.Single(problems));
    }

    [Fact]
    public void Flipped_bit_sample_is_reported_at_the_offset_of_the_record_holding_the_bit()
    {
        var segment = Directory.GetFiles(Cli.Sample("v1-flipped-bit"), "*.seg").Order(StringComparer.Ordinal)
            .First(f => FirstDifference(f, Path.Combine(Cli.Sample("v1-healthy"), Path.GetFileName(f))) < new FileInfo(f).Length);
        var name = Path.GetFileName(segment);
        var flipped = FirstDifference(segment, Path.Combine(Cli.Sample("v1-healthy"), name));
        var record = StoreInspector.ReadRecords(Cli.Sample("v1-healthy"))
            .Single(x => x.File == name && x.BatchOffset is null && x.Offset <= flipped && flipped < x.Offset + x.Length);

        var r = Cli.Run("verify", Cli.Sample("v1-flipped-bit"));
        Assert.Equal(1, r.Code);
        Assert.Contains(r.OutLines, l => l.StartsWith($"{name}:{record.Offset}: damaged record: CRC mismatch", StringComparison.Ordinal));
        Assert.DoesNotContain(r.OutLines, l => l.Contains("torn tail"));
    }

    [Fact]
    public void Damaged_hint_sample_is_reported_at_the_hint_entry_holding_the_bit()
    {
        var hint = Directory.GetFiles(Cli.Sample("v1-damaged-hint"), "*.hint").Order(StringComparer.Ordinal)
            .First(f => FirstDifference(f, Path.Combine(Cli.Sample("v1-healthy"), Path.GetFileName(f))) < new FileInfo(f).Length);
        var name = Path.GetFileName(hint);
        var flipped = FirstDifference(hint, Path.Combine(Cli.Sample("v1-healthy"), name));
        var entries = HintImage.Parse(File.ReadAllBytes(Path.Combine(Cli.Sample("v1-healthy"), name))).Entries;
        var entry = entries.Last(e => e.Offset <= flipped); // entries are variable-length (FORMAT.md §4): the last one starting at or before the bit

        var r = Cli.Run("verify", Cli.Sample("v1-damaged-hint"));
        Assert.Equal(1, r.Code);
        Assert.Contains(r.OutLines, l => l.StartsWith($"{name}:{entry.Offset}: bad hint: hint entry at offset {entry.Offset}: CRC mismatch", StringComparison.Ordinal));
        Assert.DoesNotContain(r.OutLines, l => l.Contains(".seg:"));
    }

    [Fact]
    public void Verify_json_lists_the_same_problems_as_the_text_output()
    {
        var text = Cli.Run("verify", Cli.Sample("v1-flipped-bit"));
        var json = Cli.Run("verify", "--json", Cli.Sample("v1-flipped-bit"));
        Assert.Equal(1, json.Code);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Out);
        Assert.False(doc.RootElement.GetProperty("healthy").GetBoolean());
        var problems = doc.RootElement.GetProperty("problems").EnumerateArray()
            .Select(p => $"{p.GetProperty("file").GetString()}:{p.GetProperty("offset").GetInt64()}: {p.GetProperty("kind").GetString()}: {p.GetProperty("message").GetString()}");
        Assert.Equal(text.OutLines.Where(l => l.Contains(": ") && !l.Contains(" segments, ")), problems);
    }

    [Fact]
    public void Generator_reproduces_the_committed_samples_byte_for_byte()
    {
        using var temp = new TempDirectory("gen");
        var r = Cli.Run("generate-samples", temp.Path);
        Assert.Equal(0, r.Code);
        foreach (var sample in new[] { "v2-healthy", "v2-torn-tail", "v2-flipped-bit", "v2-damaged-hint", "v2-flipped-after-close" })
        {
            var committed = Directory.GetFiles(Cli.Sample(sample)).Select(Path.GetFileName).Order().ToList();
            var generated = Directory.GetFiles(Path.Combine(temp.Path, sample)).Select(Path.GetFileName).Order().ToList();
            Assert.Equal(committed, generated);
            foreach (var f in committed)
                Assert.True(File.ReadAllBytes(Path.Combine(Cli.Sample(sample), f!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(temp.Path, sample, f!))), $"{sample}/{f} differs");
            Assert.True(Directory.GetFiles(Cli.Sample(sample)).Sum(f => new FileInfo(f).Length) < 1 << 20);
        }
    }
}
