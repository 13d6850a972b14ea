using System.Buffers;

namespace Bitcask.Bench.Stores;

/// <summary>
/// One open key-value store under test. The harness drives every store through this small surface so that the
/// workloads are the same code for all of them. Thread-safety: <see cref="NewSession"/> may be called from any
/// thread; each <see cref="IKvSession"/> is used by one thread at a time (FASTER and SQLite need per-thread state).
/// </summary>
public interface IKvStore : IDisposable
{
    /// <summary>The store's short name (bitcask, rocksdb, faster, lmdb, sqlite).</summary>
    string Name { get; }

    /// <summary>The durability setting this store runs at, in words, printed next to every number.</summary>
    string Settings { get; }

    /// <summary>A handle for one thread.</summary>
    IKvSession NewSession();

    /// <summary>Makes everything written so far durable (fsync or the store's equivalent).</summary>
    void Sync();

    /// <summary>Runs the store's own space reclamation once, or returns false when the store has none the harness can call.</summary>
    bool TryCompact(out string note);
}

/// <summary>One thread's access to a store.</summary>
public interface IKvSession : IDisposable
{
    /// <summary>Writes <paramref name="value"/> under <paramref name="key"/>; returns when the store's durability setting says the write is acknowledged.</summary>
    void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Appends the value of <paramref name="key"/> to <paramref name="value"/> and returns true, or returns false when absent.</summary>
    bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value);
}

/// <summary>What a store is opened for: throughput workloads at its default (or nearest non-syncing) setting, or durable puts.</summary>
public enum StoreRole
{
    /// <summary>fill, overwrite, read, miss, mixed, reopen, space.</summary>
    Throughput,
    /// <summary>Puts acknowledged only after fsync (or the store's equivalent).</summary>
    Durable,
}

/// <summary>One store at one setting, as the compare command lists it.</summary>
/// <param name="Store">Adapter name.</param>
/// <param name="Variant">Setting key understood by the adapter (e.g. "flushed", "sync").</param>
/// <param name="Role">Which workloads this configuration runs.</param>
public sealed record StoreConfig(string Store, string Variant, StoreRole Role)
{
    public string Id => $"{Store}:{Variant}";
    public override string ToString() => Id;
}
