using Bitcask.Bench.Harness;

namespace Bitcask.BenchTests;

public class ToolTests
{
    [Fact]
    public void Histogram_percentiles_are_within_its_resolution()
    {
        var h = new LatencyHistogram();
        for (var ns = 1; ns <= 100_000; ns++) h.Record(ns);
        Assert.Equal(100_000, h.Count);
        Assert.InRange(h.Percentile(50), 50_000 * 0.97, 50_000 * 1.04);
        Assert.InRange(h.Percentile(99), 99_000 * 0.97, 99_000 * 1.04);
        Assert.InRange(h.Percentile(99.9), 99_900 * 0.97, 100_000);
        Assert.Equal(100_000, h.Percentile(100));
    }

    [Fact]
    public void Histogram_merge_adds_counts()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        for (var i = 0; i < 100; i++) { a.Record(10); b.Record(1_000_000); }
        a.Merge(b);
        Assert.Equal(200, a.Count);
        Assert.Equal(10, a.Percentile(50));
        Assert.InRange(a.Percentile(75), 1_000_000 * 0.97, 1_000_000);
    }

    [Fact]
    public void Keys_are_sixteen_bytes_distinct_and_disjoint_from_missing_keys()
    {
        var seen = new HashSet<string>();
        var key = new byte[KeySpace.KeyLength];
        for (var i = 0; i < 10_000; i++)
        {
            KeySpace.Key(i, key);
            Assert.True(seen.Add(Convert.ToHexString(key)));
        }
        for (var i = 0; i < 10_000; i++)
        {
            KeySpace.MissingKey(i, key);
            Assert.DoesNotContain(Convert.ToHexString(key), seen);
        }
    }

    [Fact]
    public void Values_have_the_requested_size_and_differ_between_rounds()
    {
        var space = new KeySpace(4096);
        Assert.Equal(4096, space.Value(7).Length);
        Assert.False(space.Value(7).SequenceEqual(space.Value(7, round: 1)));
        Assert.True(space.Value(7).SequenceEqual(space.Value(7)));
    }

    [Theory]
    [InlineData("--keys", "ten", "--keys must be a whole number")]
    [InlineData("--keys", "0", "--keys must be between")]
    [InlineData("--runs", "1000", "--runs must be between")]
    [InlineData("--seconds", "-1", "--seconds must be between")]
    [InlineData("--color", "red", "Unknown option '--color'")]
    public void Bad_options_are_rejected_naming_the_option_and_limit(string name, string value, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() =>
        {
            var args = new Args([name, value], "keys", "runs", "seconds");
            args.Long("keys", 1, 1, 1000);
            args.Int("runs", 3, 1, 100);
            args.Double("seconds", 5, 0.01, 3600);
        });
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Option_without_value_is_rejected() =>
        Assert.Contains("needs a value", Assert.Throws<ArgumentException>(() => new Args(["--keys"], "keys")).Message);

    [Fact]
    public void Counts_accept_k_and_M_suffixes()
    {
        var args = new Args(["--keys", "1M,10k"], "keys");
        Assert.Equal([1_000_000L, 10_000L], args.Longs("keys", [], 1, long.MaxValue));
    }

    [Fact]
    public void Cli_reports_bad_input_with_exit_code_2_instead_of_crashing()
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(2, Bitcask.Bench.Cli.Run(["compare", "--stores", "mysql"]));
            Assert.Equal(2, Bitcask.Bench.Cli.Run(["frobnicate"]));
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.Contains("mysql", error.ToString());
        Assert.Contains("Unknown command 'frobnicate'", error.ToString());
    }
}

/// <summary>Managed-heap measurements: they compare GC.GetTotalMemory before and after, so no other test may allocate
/// or free meanwhile (xunit runs a collection with parallelization disabled on its own).</summary>
[CollectionDefinition(nameof(HeapMeasurementTests), DisableParallelization = true)]
public sealed class HeapMeasurementCollection;

[Collection(nameof(HeapMeasurementTests))]
public class HeapMeasurementTests
{
    [Fact]
    public void Memory_mode_measures_keydir_and_dictionary_bytes_per_key()
    {
        var bitcask = MemoryMode.MeasureBitcask(20_000, 100);
        var dictionary = MemoryMode.MeasureDictionary(20_000);
        Assert.InRange(bitcask.ReportedBytesPerKey, KeySpace.KeyLength, 1024);
        Assert.True(bitcask.ManagedBytesPerKey > 0);
        // A Dictionary entry holds a reference to a separate 16-byte array (24 B object header + 16 B) plus the entry itself.
        Assert.True(dictionary.ManagedBytesPerKey > KeySpace.KeyLength + 24);
    }
}
