using System.Buffers;
using System.Reflection;

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

    public bool TryCompact(out string note) => TryCompact(_store, CancellationToken.None, out note);

    /// <summary>
    /// Calls <c>BitcaskStore.Compact(CancellationToken)</c> when the engine this was built against has it (it is being
    /// added on main); looked up by reflection so that the harness builds and runs against either version.
    /// </summary>
    public static bool TryCompact(BitcaskStore store, CancellationToken ct, out string note)
    {
        var method = CompactMethod;
        if (method is null)
        {
            note = "BitcaskStore.Compact(CancellationToken) is not in this engine build yet; skipped";
            return false;
        }
        try
        {
            var result = method.Invoke(store, [ct]);
            if (result is Task task) task.GetAwaiter().GetResult();
            else if (result is ValueTask valueTask) valueTask.AsTask().GetAwaiter().GetResult();
            note = "BitcaskStore.Compact";
            return true;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    /// <summary>True when this engine build has a compaction the harness can call.</summary>
    public static bool HasCompact => CompactMethod is not null;

    private static MethodInfo? CompactMethod =>
        typeof(BitcaskStore).GetMethod("Compact", BindingFlags.Public | BindingFlags.Instance, [typeof(CancellationToken)])
        ?? typeof(BitcaskStore).GetMethod("CompactAsync", BindingFlags.Public | BindingFlags.Instance, [typeof(CancellationToken)]);

    public void Dispose() => _store.Dispose();

    private sealed class Session(BitcaskStore store) : IKvSession
    {
        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => store.Put(key, value);
        public bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value) => store.TryGet(key, value);
        public void Dispose() { }
    }
}
