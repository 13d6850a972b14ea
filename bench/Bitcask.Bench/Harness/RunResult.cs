using System.Text.Json.Serialization;

namespace Bitcask.Bench.Harness;

/// <summary>What one child process measured for one store configuration. Metric names are listed in <see cref="Metrics"/>.</summary>
public sealed class RunResult
{
    public string Store { get; set; } = "";
    public string Variant { get; set; } = "";
    public string Settings { get; set; } = "";
    public string Role { get; set; } = "";
    public long Keys { get; set; }
    public int ValueSize { get; set; }
    public Dictionary<string, double> Metrics { get; set; } = new();
    public List<string> Notes { get; set; } = new();

    /// <summary>Set when the run could not be done (for example a native library is missing); the metrics are then partial.</summary>
    public string? Error { get; set; }

    [JsonIgnore] public string Id => $"{Store}:{Variant}";
}

/// <summary>The names, units and meaning of every metric the harness reports.</summary>
public static class Metrics
{
    public sealed record Definition(string Key, string Title, string Unit, bool HigherIsBetter);

    public static readonly Definition[] Throughput =
    [
        new("fill", "fill (put every key once, 1 thread)", "ops/s", true),
        new("overwrite", "overwrite (put random existing keys, 1 thread)", "ops/s", true),
        new("overwrite16", "overwrite, 16 writer threads", "ops/s", true),
        new("read1", "random get of existing keys, 1 thread", "ops/s", true),
        new("read2", "random get of existing keys, 2 threads", "ops/s", true),
        new("miss1", "get of absent keys, 1 thread", "ops/s", true),
        new("miss2", "get of absent keys, 2 threads", "ops/s", true),
        new("mixed", "mixed 90% get / 10% put, 2 threads", "ops/s", true),
    ];

    public static readonly Definition[] Durable =
    [
        new("fdatasync", "the machine: append one record + fdatasync on a plain file, 1 thread, in each store's process before its durable runs (ceiling for 1 durable writer)", "ops/s", true),
        new("durable1", "durable puts (acknowledged after fsync), 1 writer", "ops/s", true),
        new("durable1.ceiling", "1 durable writer ÷ the machine's append + fdatasync rate measured just before it in the same process", "ratio", true),
        new("durable16", "durable puts (acknowledged after fsync), 16 writers", "ops/s", true),
    ];

    // Other keys: reopen.ms, close.ms, space.fill, space.overwrite, space.compacted, compact.ms, rss.peak,
    // managed.bytes_per_key, keydir.bytes_per_key, mixed.get.p50/p99/p999, mixed.put.p50/p99/p999 (microseconds).
}
