using System.Buffers;

namespace Bitcask.Bench.Stores;

/// <summary>This engine. Variants: buffered, flushed (the default), synced.</summary>
public sealed class BitcaskKv : IKvStore
{
    private readonly BitcaskStore _store;

    private BitcaskKv(BitcaskStore store, string settings)
    {
        _store = store;
        Settings = settings;
    }

    public static readonly string[] Variants = ["buffered", "flushed", "synced"];

    public static BitcaskKv Open(string directory, string variant)
    {
        var (durability, settings) = variant switch
        {
            "buffered" => (Durability.Buffered, "Buffered (OS write when the 256 KiB buffer fills or every 100 ms)"),
            "flushed" => (Durability.Flushed, "Flushed (default: one write syscall per group, no fsync)"),
            "synced" => (Durability.Synced, "Synced (fdatasync per group commit)"),
            _ => throw new ArgumentException($"Unknown bitcask variant '{variant}'; expected one of {string.Join(", ", Variants)}.", nameof(variant)),
        };
        return new BitcaskKv(BitcaskStore.Open(directory, new BitcaskOptions { Durability = durability }), settings);
    }

    public string Name => "bitcask";
    public string Settings { get; }

    /// <summary>The engine under test, for the bitcask-only measurements (keydir bytes, compaction).</summary>
    public BitcaskStore Store => _store;

    public IKvSession NewSession() => new Session(_store);

    public void Sync() => _store.Sync();

    public bool TryCompact(out string note)
    {
        var result = _store.Compact();
        note = $"BitcaskStore.Compact: {result.SegmentsIn} segment(s) in, {result.SegmentsOut} out, {result.RecordsDropped:N0} records dropped in {result.Duration.TotalMilliseconds:F0} ms";
        return true;
    }

    public void Dispose() => _store.Dispose();

    private sealed class Session(BitcaskStore store) : IKvSession
    {
        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => store.Put(key, value);
        public bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value) => store.TryGet(key, value);
        public void Dispose() { }
    }
}
