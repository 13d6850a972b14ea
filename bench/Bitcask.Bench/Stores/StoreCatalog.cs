namespace Bitcask.Bench.Stores;

/// <summary>The stores the harness knows, the settings each runs at, and how to open one.</summary>
public static class StoreCatalog
{
    public static readonly string[] Names = ["bitcask", "rocksdb", "faster", "lmdb", "sqlite"];

    /// <summary>
    /// The configurations of one store: its default setting (or, where the default already fsyncs every commit, its
    /// nearest non-syncing setting) for the throughput workloads, and its fully synced setting for the durable puts.
    /// Bitcask runs the throughput workloads at Buffered and Flushed; Flushed is the reference for the ratios.
    /// </summary>
    public static IReadOnlyList<StoreConfig> ConfigsFor(string store) => store switch
    {
        "bitcask" => [new("bitcask", "flushed", StoreRole.Throughput), new("bitcask", "buffered", StoreRole.Throughput), new("bitcask", "synced", StoreRole.Durable)],
        "rocksdb" => [new("rocksdb", "wal", StoreRole.Throughput), new("rocksdb", "sync", StoreRole.Durable)],
        "faster" => [new("faster", "memory", StoreRole.Throughput), new("faster", "checkpoint", StoreRole.Durable)],
        "lmdb" => [new("lmdb", "nosync", StoreRole.Throughput), new("lmdb", "sync", StoreRole.Durable)],
        "sqlite" => [new("sqlite", "normal", StoreRole.Throughput), new("sqlite", "full", StoreRole.Durable)],
        _ => throw new ArgumentException($"Unknown store '{store}'; known stores: {string.Join(", ", Names)}."),
    };

    /// <summary>Parses "bitcask,rocksdb" into store names, rejecting unknown ones with a message naming them.</summary>
    public static IReadOnlyList<string> ParseStores(string list)
    {
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(n => n.ToLowerInvariant()).Distinct().ToArray();
        if (names.Length == 0) throw new ArgumentException("--stores names no store; known stores: " + string.Join(", ", Names) + ".");
        var unknown = names.Where(n => !Names.Contains(n)).ToArray();
        if (unknown.Length > 0) throw new ArgumentException($"Unknown store(s) {string.Join(", ", unknown)} in --stores; known stores: {string.Join(", ", Names)}.");
        return names;
    }

    public static IKvStore Open(StoreConfig config, string directory) => config.Store switch
    {
        "bitcask" => BitcaskKv.Open(directory, config.Variant),
        "rocksdb" => RocksDbKv.Open(directory, config.Variant),
        "faster" => FasterKv.Open(directory, config.Variant),
        "lmdb" => LmdbKv.Open(directory, config.Variant),
        "sqlite" => SqliteKv.Open(directory, config.Variant),
        _ => throw new ArgumentException($"Unknown store '{config.Store}'; known stores: {string.Join(", ", Names)}."),
    };

    /// <summary>Bytes of all files under <paramref name="directory"/> (apparent sizes).</summary>
    public static long DiskBytes(string directory) =>
        Directory.Exists(directory)
            ? new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length)
            : 0;
}
