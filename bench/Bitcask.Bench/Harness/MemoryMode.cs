using System.Diagnostics;

namespace Bitcask.Bench.Harness;

/// <summary>
/// Keydir bytes per key: loads N keys into a bitcask store and reports the managed-heap growth per key
/// (GC.GetTotalMemory after a full collection) and the engine's own <c>StoreStats.KeydirBytes</c> per key, beside the
/// same heap figure for a <c>Dictionary&lt;byte[], (uint, uint, uint)&gt;</c> holding the same keys.
/// </summary>
public static class MemoryMode
{
    public sealed record Row(string Structure, long Keys, int KeyLength, double ManagedBytesPerKey, double ReportedBytesPerKey, double LoadSeconds);

    public static int Run(Args args, TextWriter output)
    {
        var counts = args.Longs("keys", [1_000_000, 10_000_000], 1, 1L << 31);
        var valueSize = args.Int("value-size", 100, 1, 16 << 20);
        output.WriteLine($"Memory per key: {KeySpace.KeyLength}-byte keys, {valueSize}-byte values. Machine: {Compare.MachineDescription()}");
        output.WriteLine();
        output.WriteLine("| structure | keys | key length | managed heap B/key | engine-reported B/key | B/key over key length | load time |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var n in counts)
        {
            foreach (var row in new[] { MeasureBitcask(n, valueSize), MeasureDictionary(n) })
                output.WriteLine($"| {row.Structure} | {row.Keys:N0} | {row.KeyLength} | {row.ManagedBytesPerKey:F1} | {(double.IsNaN(row.ReportedBytesPerKey) ? "–" : row.ReportedBytesPerKey.ToString("F1"))} | {row.ManagedBytesPerKey - row.KeyLength:F1} | {row.LoadSeconds:F1} s |");
        }
        output.WriteLine();
        output.WriteLine("Managed heap B/key: growth of GC.GetTotalMemory(true) while the structure holds the keys, divided by keys.");
        return 0;
    }

    public static Row MeasureBitcask(long keys, int valueSize)
    {
        var space = new KeySpace(valueSize);
        var dir = Path.Combine(Path.GetTempPath(), $"bitcask-bench-memory-{Environment.ProcessId}-{keys}");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        try
        {
            var before = GC.GetTotalMemory(forceFullCollection: true);
            var timer = Stopwatch.StartNew();
            using var store = BitcaskStore.Open(dir, new BitcaskOptions()); // defaults (Flushed); the keydir does not depend on durability
            Span<byte> key = stackalloc byte[KeySpace.KeyLength];
            for (long i = 0; i < keys; i++)
            {
                KeySpace.Key(i, key);
                store.Put(key, space.Value(i));
            }
            var seconds = timer.Elapsed.TotalSeconds;
            var after = GC.GetTotalMemory(forceFullCollection: true);
            var reported = store.GetStats().KeydirBytes;
            GC.KeepAlive(store);
            return new Row("bitcask keydir", keys, KeySpace.KeyLength, (double)(after - before) / keys, (double)reported / keys, seconds);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    public static Row MeasureDictionary(long keys)
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var timer = Stopwatch.StartNew();
        var map = new Dictionary<byte[], (uint, uint, uint)>(ByteArrayComparer.Instance);
        for (long i = 0; i < keys; i++)
        {
            var key = new byte[KeySpace.KeyLength];
            KeySpace.Key(i, key);
            map[key] = ((uint)(i >> 20), (uint)i, 132);
        }
        var seconds = timer.Elapsed.TotalSeconds;
        var after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(map);
        return new Row("Dictionary<byte[], (uint, uint, uint)>", keys, KeySpace.KeyLength, (double)(after - before) / keys, double.NaN, seconds);
    }

    /// <summary>Content equality for byte arrays (the baseline's comparer).</summary>
    public sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => ReferenceEquals(x, y) || (x is not null && y is not null && x.AsSpan().SequenceEqual(y));
        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
