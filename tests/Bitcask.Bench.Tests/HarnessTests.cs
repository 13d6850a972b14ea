using Bitcask.Bench.Harness;
using Bitcask.Bench.Stores;

namespace Bitcask.BenchTests;

/// <summary>The compare harness end to end with tiny sizes, so that it cannot rot: workloads, child processes, report.</summary>
public class HarnessTests
{
    private static readonly RunOptions Tiny = new(Keys: 300, ValueSize: 100, Seconds: 0.2, DurableSeconds: 0.2);

    static HarnessTests() => WorkloadRunner.StallGrace = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData("bitcask", "flushed")]
    [InlineData("rocksdb", "wal")]
    public void Throughput_run_measures_every_workload(string store, string variant)
    {
        using var dir = new TempDir();
        var result = new WorkloadRunner(new StoreConfig(store, variant, StoreRole.Throughput), dir.Sub("store"), Tiny).Run();

        Assert.Null(result.Error);
        Assert.False(string.IsNullOrEmpty(result.Settings));
        foreach (var metric in Metrics.Throughput)
            Assert.True(result.Metrics.TryGetValue(metric.Key, out var v) && v > 0, $"{metric.Key} missing or zero");
        Assert.True(result.Metrics["space.fill"] >= Tiny.Keys * (KeySpace.KeyLength + Tiny.ValueSize), "disk after fill is smaller than the data");
        Assert.True(result.Metrics["reopen.ms"] > 0);
        Assert.True(result.Metrics["rss.peak"] > 0);
        Assert.True(result.Metrics["mixed.get.p50"] <= result.Metrics["mixed.get.p99"]);
        Assert.Contains("space.compacted", result.Metrics.Keys); // both stores have a compaction the harness calls
    }

    [Fact]
    public void Bitcask_run_reports_keydir_and_managed_bytes_per_key()
    {
        using var dir = new TempDir();
        // In a child process, as the comparison runs it: the managed-heap growth of this test process would include
        // whatever the tests running beside it allocate or free.
        var result = Compare.RunChild(new StoreConfig("bitcask", "buffered", StoreRole.Throughput), dir.Sub("store"), Tiny with { Keys = 5000 }, new StringWriter());
        Assert.Null(result.Error);
        Assert.True(result.Metrics["keydir.bytes_per_key"] >= KeySpace.KeyLength, "the keydir holds every key, so at least 16 B per key");
        Assert.True(result.Metrics["managed.bytes_per_key"] >= KeySpace.KeyLength, "the managed heap holds the keydir, so it grew by at least 16 B per key");
    }

    [Fact]
    public void Durable_run_measures_one_and_sixteen_writers()
    {
        using var dir = new TempDir();
        var result = new WorkloadRunner(new StoreConfig("rocksdb", "sync", StoreRole.Durable), dir.Sub("store"), Tiny).Run();
        Assert.Null(result.Error);
        Assert.True(result.Metrics["durable1"] > 0);
        Assert.True(result.Metrics["durable16"] > 0);
    }

    [Fact]
    public void Durable_run_of_any_store_measures_the_machines_fdatasync_ceiling_and_its_one_writer_ratio_to_it()
    {
        using var dir = new TempDir();
        var result = new WorkloadRunner(new StoreConfig("rocksdb", "sync", StoreRole.Durable), dir.Sub("store"), Tiny).Run();
        Assert.Null(result.Error);
        Assert.True(result.Metrics["fdatasync"] > 0, "the ceiling is measured in the peer's process too, not only bitcask's");
        Assert.Equal(result.Metrics["durable1"] / result.Metrics["fdatasync"], result.Metrics["durable1.ceiling"], 6);
    }

    [Fact]
    public void Child_process_returns_its_result_as_json()
    {
        using var dir = new TempDir();
        var log = new StringWriter();
        var result = Compare.RunChild(new StoreConfig("sqlite", "normal", StoreRole.Throughput), dir.Sub("store"), Tiny, log);

        Assert.True(result.Error is null, result.Error + "\n" + log);
        Assert.Equal("sqlite", result.Store);
        Assert.Equal(Tiny.Keys, result.Keys);
        Assert.True(result.Metrics["fill"] > 0);
        Assert.Contains("[sqlite:normal] fill", log.ToString()); // progress goes to stderr, the result to stdout
    }

    [Fact]
    public void Report_takes_medians_and_ratios_to_bitcask_flushed()
    {
        RunResult Run(string store, string variant, double fill) =>
            new() { Store = store, Variant = variant, Role = "Throughput", Settings = variant + " settings", Metrics = new() { ["fill"] = fill } };
        var bitcask = Compare.Summarize(new StoreConfig("bitcask", "flushed", StoreRole.Throughput), [Run("bitcask", "flushed", 400), Run("bitcask", "flushed", 100), Run("bitcask", "flushed", 200)]);
        var peer = Compare.Summarize(new StoreConfig("rocksdb", "wal", StoreRole.Throughput), [Run("rocksdb", "wal", 50), Run("rocksdb", "wal", 60), Run("rocksdb", "wal", 40)]);
        Assert.Equal(200, bitcask.Median["fill"]);
        Assert.Equal(50, peer.Median["fill"]);

        var markdown = Compare.ToMarkdown(new Compare.Report("today", "test machine", Tiny, 3, [bitcask, peer]));
        var fillTable = markdown[markdown.IndexOf("### fill", StringComparison.Ordinal)..];
        var row = fillTable.Split('\n').First(l => l.StartsWith("| rocksdb |", StringComparison.Ordinal));
        Assert.Contains("| 50 |", row); // the median of 50, 60, 40
        Assert.Contains((50.0 / 200).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) + "×", row);
        Assert.Contains("wal settings", row); // every number carries its store's durability setting
    }

    [Fact]
    public void Failed_configuration_is_listed_with_its_reason()
    {
        var failed = Compare.Summarize(new StoreConfig("lmdb", "nosync", StoreRole.Throughput),
            [new RunResult { Store = "lmdb", Variant = "nosync", Role = "Throughput", Error = "liblmdb missing" }]);
        var markdown = Compare.ToMarkdown(new Compare.Report("today", "test machine", Tiny, 1, [failed]));
        Assert.Contains("lmdb:nosync failed", markdown);
        Assert.Contains("liblmdb missing", markdown);
    }

    [Fact]
    public void Median_of_even_count_is_the_mean_of_the_middle_two() =>
        Assert.Equal(2.5, Compare.Median([4, 1, 3, 2]));

    [Fact]
    public void Reopen_mode_times_fresh_processes_with_and_without_hint_files()
    {
        using var dir = new TempDir();
        var output = new StringWriter();
        var log = new StringWriter();
        var code = ReopenMode.Run(new Args(["--keys", "20000", "--value-size", "100", "--runs", "1", "--dir", dir.Sub("reopen")], "keys", "value-size", "runs", "dir"), output, log);
        Assert.Equal(0, code);
        var row = output.ToString().Split('\n').Single(l => l.StartsWith("| 20,000 |", StringComparison.Ordinal));
        var cells = row.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(12, cells.Length);
        Assert.Equal("100 B", cells[1]);
        Assert.EndsWith("×", cells[6]);
        Assert.EndsWith("µs", cells[11]); // the first-touch probe
        if (OperatingSystem.IsLinux()) Assert.NotEqual("0", cells[10]); // a first open faults memory in
        // Two children (with hints, then without), each reporting a first and a warm open; the hints were moved aside and
        // the store removed afterwards.
        Assert.Equal(2, log.ToString().Split('\n').Count(l => l.TrimStart().StartsWith("reopen ", StringComparison.Ordinal)));
        Assert.False(Directory.Exists(dir.Sub("reopen")));
    }
}
