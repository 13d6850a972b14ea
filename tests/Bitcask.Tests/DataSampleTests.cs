using System.Text;

namespace Bitcask.Tests;

/// <summary>The committed stores in data-samples/ (format versions 1 and 2) still open with their exact contents: files
/// written by earlier builds stay readable.</summary>
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

    /// <summary>SHA-256 over every live key (in byte order) with its value and expiry: the samples' golden contents.</summary>
    private static string Contents(BitcaskStore store, params string[] except)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        foreach (var key in store.Keys().Where(k => !except.Contains(Encoding.UTF8.GetString(k))).OrderBy(k => Convert.ToHexString(k), StringComparer.Ordinal))
        {
            buffer.ResetWrittenCount();
            Assert.True(store.TryGet(key, buffer, out var expiresAt));
            sha.AppendData(BitConverter.GetBytes(key.Length));
            sha.AppendData(key);
            sha.AppendData(BitConverter.GetBytes(buffer.WrittenCount));
            sha.AppendData(buffer.WrittenSpan);
            sha.AppendData(BitConverter.GetBytes(expiresAt?.ToUnixTimeMilliseconds() ?? 0));
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    /// <summary>What the healthy samples hold (every version's generator runs the same workload).</summary>
    private const string HealthyContents = "22745429F2F1E2F889F38CE36DE7BDF58BB031F7A2106B89863F393DFA84502E";
    /// <summary>The same without <c>user:002</c> (the record the flipped-bit samples damage).</summary>
    private const string HealthyContentsWithoutUser002 = "265868078B6EAAFAF6B1121BD12AA7F6A6D1E4E5FFCE46DB1EF5365A63E19B1B";

    private static void AssertSpotValues(BitcaskStore store)
    {
        Assert.StartsWith("{\"id\":0,\"name\":\"user 0 (renamed)\"", store.GetString("user:000"));
        Assert.Null(store.GetString("user:001"));   // deleted by the batch
        Assert.Null(store.GetString("user:005"));   // deleted
        Assert.Equal("1", store.GetString("batch:a"));
        Assert.Equal("2", store.GetString("batch:b"));
        Assert.Equal("", store.GetString("empty"));
        Assert.Equal(24, store.Get(new byte[] { 0xff, 0x00, 0x01, 0xfe })!.Length);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.True(store.TryGet(Encoding.UTF8.GetBytes("session:03"), buffer, out var expiresAt));
        Assert.Equal(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).AddDays(36503), expiresAt);
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    [InlineData("v2-healthy-hint-v1")] // version 2 segments with the version 1 hints earlier builds wrote
    public void Healthy_sample_opens_read_write_with_its_golden_keys_and_values_and_accepts_new_writes(string version)
    {
        using var dir = Copy(version.Contains('-') ? version : version + "-healthy");
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal(46, store.Count);
            Assert.Equal(HealthyContents, Contents(store));
            AssertSpotValues(store);
            Assert.Empty(store.GetStats().RecoveryFindings);
            Assert.All(store.GetStats().Segments, s => Assert.True(s.HasHintFile));
            store.Put("new", "write");
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            Assert.Equal(47, store.Count);
            Assert.Equal("write", store.GetString("new"));
            Assert.Equal(HealthyContents, Contents(store, "new"));
        }
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    [InlineData("v2-healthy-hint-v1")] // version 2 segments with the version 1 hints earlier builds wrote
    public void Healthy_sample_opens_read_only_in_place_without_changing_a_byte(string version)
    {
        var sample = Sample(version.Contains('-') ? version : version + "-healthy");
        var files = Directory.GetFiles(sample).ToDictionary(f => f, File.ReadAllBytes);
        using (var store = BitcaskStore.Open(sample, new BitcaskOptions { ReadOnly = true }))
        {
            Assert.Equal(HealthyContents, Contents(store));
        }
        Assert.All(files, kv => Assert.Equal(kv.Value, File.ReadAllBytes(kv.Key)));
        Assert.False(File.Exists(Path.Combine(sample, "LOCK")));
    }

    [Theory]
    [InlineData("v1", 1160)]
    [InlineData("v2", 2308)]
    public void Torn_tail_sample_is_truncated_by_a_read_write_open_and_keeps_every_key(string version, long tornAt)
    {
        using var dir = Copy(version + "-torn-tail");
        using var store = BitcaskStore.Open(dir.Path);
        Assert.Equal(HealthyContents, Contents(store));
        var finding = Assert.Single(store.GetStats().RecoveryFindings, f => f.Problem.Contains("torn tail"));
        Assert.Equal(tornAt, finding.Offset);
        Assert.Equal(tornAt, new FileInfo(Path.Combine(dir.Path, "0000000003.seg")).Length);
    }

    [Theory]
    [InlineData("v1", 311)]
    [InlineData("v2", 343)]
    public void Flipped_bit_sample_opens_from_its_whole_hint_and_never_returns_wrong_bytes(string version, long damagedAt)
    {
        using var dir = Copy(version + "-flipped-bit");
        foreach (var readOnly in new[] { true, false })
        {
            using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { ReadOnly = readOnly });
            var error = Assert.Throws<CorruptionException>(() => store.Get(Encoding.UTF8.GetBytes("user:002")));
            Assert.Equal(damagedAt, error.Offset);
            Assert.EndsWith("0000000001.seg", error.Path);
            Assert.Equal(HealthyContentsWithoutUser002, Contents(store, "user:002"));
            Assert.NotNull(store.Get(Encoding.UTF8.GetBytes("user:003")));
        }
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    public void Damaged_hint_sample_falls_back_to_scanning_its_segment(string version)
    {
        using var dir = Copy(version + "-damaged-hint");
        using var store = BitcaskStore.Open(dir.Path);
        Assert.Equal(HealthyContents, Contents(store));
        Assert.Contains(store.GetStats().RecoveryFindings, f => f.Path.EndsWith("0000000001.hint"));
    }

    [Fact]
    public void Flipped_after_close_sample_is_damage_proven_by_the_closing_sync_marker_not_a_torn_tail()
    {
        using var dir = Copy("v2-flipped-after-close");
        var files = Directory.GetFiles(dir.Path).ToDictionary(f => f, File.ReadAllBytes);
        var error = Assert.Throws<CorruptionException>(() => BitcaskStore.Open(dir.Path));
        Assert.Equal(2043, error.Offset); // the damaged batch entry itself, not the batch at 1955
        Assert.All(files, kv => Assert.Equal(kv.Value, File.ReadAllBytes(kv.Key)));
        foreach (var options in new[] { new BitcaskOptions { ReadOnly = true }, new BitcaskOptions { SkipDamagedRecords = true } })
        {
            using var store = BitcaskStore.Open(dir.Path, options);
            // The batch was committed (the marker proves it durable): its intact entries stay, the damaged one is gone.
            Assert.Equal("1", store.GetString("batch:a"));
            Assert.Null(store.GetString("batch:b"));
            Assert.Null(store.GetString("user:001"));
            Assert.Equal(45, store.Count);
        }
    }
}
