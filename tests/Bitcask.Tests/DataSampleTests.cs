using System.Text;

namespace Bitcask.Tests;

/// <summary>The committed stores in data-samples/ (format version 1) still open: files written by earlier builds stay readable.</summary>
public class DataSampleTests
{
    private static string Sample(string name)
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "data-samples"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        return Path.Combine(dir, "data-samples", name);
    }

    /// <summary>Tests work on a copy: a read-write open may change files (truncation, new segments).</summary>
    private static TempDirectory Copy(string name)
    {
        var temp = new TempDirectory(name);
        foreach (var file in Directory.GetFiles(Sample(name))) File.Copy(file, Path.Combine(temp.Path, Path.GetFileName(file)));
        return temp;
    }

    [Fact]
    public void Healthy_v1_sample_opens_read_write_with_every_key_and_accepts_new_writes()
    {
        using var dir = Copy("v1-healthy");
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal(46, store.Count);
            Assert.Empty(store.GetStats().RecoveryFindings);
            Assert.All(store.GetStats().Segments, s => Assert.True(s.HasHintFile));
            Assert.NotNull(store.Get(Encoding.UTF8.GetBytes("user:002")));
            store.Put("new", "write");
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal(47, store.Count);
            Assert.Equal("write", store.GetString("new"));
        }
    }

    [Fact]
    public void Healthy_v1_sample_opens_read_only_in_place_without_changing_a_byte()
    {
        var files = Directory.GetFiles(Sample("v1-healthy")).ToDictionary(f => f, File.ReadAllBytes);
        using (var store = BitcaskStore.Open(Sample("v1-healthy"), new BitcaskOptions { ReadOnly = true }))
            Assert.Equal(46, store.Count);
        Assert.All(files, kv => Assert.Equal(kv.Value, File.ReadAllBytes(kv.Key)));
        Assert.False(File.Exists(Path.Combine(Sample("v1-healthy"), "LOCK")));
    }

    [Fact]
    public void Torn_tail_v1_sample_is_truncated_by_a_read_write_open_and_keeps_every_key()
    {
        using var dir = Copy("v1-torn-tail");
        using var store = BitcaskStore.Open(dir.Path);
        Assert.Equal(46, store.Count);
        var finding = Assert.Single(store.GetStats().RecoveryFindings, f => f.Problem.Contains("torn tail"));
        Assert.Equal(1160, finding.Offset);
    }

    [Fact]
    public void Flipped_bit_v1_sample_never_returns_wrong_bytes()
    {
        using var dir = Copy("v1-flipped-bit");
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = true });
        var error = Assert.Throws<CorruptionException>(() => store.Get(Encoding.UTF8.GetBytes("user:002")));
        Assert.Equal(311, error.Offset);
        Assert.EndsWith("0000000001.seg", error.Path);
        Assert.NotNull(store.Get(Encoding.UTF8.GetBytes("user:003")));
    }

    [Fact]
    public void Damaged_hint_v1_sample_falls_back_to_scanning_its_segment()
    {
        using var dir = Copy("v1-damaged-hint");
        using var store = BitcaskStore.Open(dir.Path);
        Assert.Equal(46, store.Count);
        Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path.EndsWith("0000000001.hint"));
    }
}
