using System.Buffers;
using System.Diagnostics;

namespace Bitcask.Bench.Harness;

/// <summary>
/// One workload on one bitcask store, in a loop, for profiling from outside (perf, dotnet-trace, dotnet-counters):
/// fills <c>--keys</c> keys (Buffered, fast) unless the directory already holds them, then runs <c>--op</c> on
/// <c>--threads</c> threads for <c>--seconds</c> and prints ops/s and ns per operation. Ops: get (random existing key),
/// miss (absent key), put (random overwrite at <c>--durability</c>), seq (new keys at <c>--durability</c>).
/// </summary>
public static class HotMode
{
    public static int Run(Args args, TextWriter output)
    {
        var keys = args.Long("keys", 1_000_000, 1, 1L << 34);
        var valueSize = args.Int("value-size", 100, 1, 16 << 20);
        var threads = args.Int("threads", 1, 1, 256);
        var seconds = args.Double("seconds", 10, 0.1, 3600);
        var op = args.String("op", "get");
        var durability = Enum.Parse<Durability>(args.String("durability", "Flushed"), ignoreCase: true);
        var dir = args.OptionalString("dir") ?? Path.Combine(Path.GetTempPath(), $"bitcask-hot-{keys}-{valueSize}");
        var space = new KeySpace(valueSize);
        if (!Directory.Exists(dir))
        {
            var fill = Stopwatch.StartNew();
            using var filling = BitcaskStore.Open(dir, new BitcaskOptions { Durability = Durability.Buffered, CompactionEnabled = false });
            Span<byte> k = stackalloc byte[KeySpace.KeyLength];
            for (long i = 0; i < keys; i++)
            {
                KeySpace.Key(i, k);
                filling.Put(k, space.Value(i));
            }
            output.WriteLine($"filled {keys:N0} keys in {fill.Elapsed.TotalSeconds:F1} s");
        }
        var open = Stopwatch.StartNew();
        using var store = BitcaskStore.Open(dir, new BitcaskOptions { Durability = durability, CompactionEnabled = false });
        output.WriteLine($"opened in {open.Elapsed.TotalMilliseconds:F0} ms; pid {Environment.ProcessId}; running {op} on {threads} thread(s) for {seconds} s");
        long next = keys;
        var counts = new long[threads];
        var stop = 0;
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var rng = new FastRandom(KeySpace.Mix((ulong)t + 17));
            var key = new byte[KeySpace.KeyLength];
            var buffer = new ArrayBufferWriter<byte>(Math.Max(256, valueSize));
            long n = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                for (var j = 0; j < 64; j++, n++)
                {
                    switch (op)
                    {
                        case "get":
                            KeySpace.Key(rng.Next(keys), key);
                            buffer.ResetWrittenCount();
                            if (!store.TryGet(key, buffer)) throw new InvalidOperationException("miss on an existing key");
                            break;
                        case "miss":
                            KeySpace.MissingKey(rng.Next(keys), key);
                            buffer.ResetWrittenCount();
                            if (store.TryGet(key, buffer)) throw new InvalidOperationException("hit on an absent key");
                            break;
                        case "put":
                            var i = rng.Next(keys);
                            KeySpace.Key(i, key);
                            store.Put(key, space.Value(i, 1));
                            break;
                        case "seq":
                            var s = Interlocked.Increment(ref next);
                            KeySpace.Key(s, key);
                            store.Put(key, space.Value(s));
                            break;
                        default: throw new ArgumentException($"Unknown --op '{op}'; expected get, miss, put or seq.");
                    }
                }
                Volatile.Write(ref counts[t], n);
            }
        }) { IsBackground = true }).ToArray();
        var timer = Stopwatch.StartNew();
        foreach (var w in workers) w.Start();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref stop, 1);
        foreach (var w in workers) w.Join();
        var elapsed = timer.Elapsed.TotalSeconds;
        var total = counts.Sum();
        output.WriteLine($"{op} x{threads} ({durability}): {total / elapsed:N0} ops/s, {elapsed * 1e9 * threads / total:F0} ns per op per thread");
        return 0;
    }
}
