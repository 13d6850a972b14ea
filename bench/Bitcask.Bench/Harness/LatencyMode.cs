using System.Buffers;
using System.Diagnostics;
using Bitcask.Bench.Stores;

namespace Bitcask.Bench.Harness;

/// <summary>
/// Get and Put latency percentiles of this engine (Flushed) under the mixed workload (90% get / 10% put, 2 threads):
/// first for a fixed time on a quiet store, then while one <c>BitcaskStore.Compact</c> runs (after every key was
/// overwritten once so that half the data is dead).
/// </summary>
public static class LatencyMode
{
    public sealed record Phase(string Name, long Ops, double Seconds, LatencyHistogram Get, LatencyHistogram Put);

    public static int Run(Args args, TextWriter output)
    {
        var keys = args.Long("keys", 1_000_000, 1, 1L << 40);
        var valueSize = args.Int("value-size", 100, 1, 16 << 20);
        var seconds = args.Double("seconds", 10, 0.01, 3600);
        var dir = Path.Combine(Path.GetTempPath(), $"bitcask-bench-latency-{Environment.ProcessId}");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        try
        {
            var phases = Measure(dir, keys, valueSize, TimeSpan.FromSeconds(seconds), out var compactionNote);
            output.WriteLine($"Latency under the mixed workload (90% get / 10% put, 2 threads), bitcask Flushed, {keys:N0} keys, {KeySpace.KeyLength} B keys, {valueSize} B values. Machine: {Compare.MachineDescription()}");
            output.WriteLine();
            output.WriteLine("| phase | ops | ops/s | get p50 µs | get p99 µs | get p99.9 µs | put p50 µs | put p99 µs | put p99.9 µs |");
            output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var p in phases)
                output.WriteLine($"| {p.Name} | {p.Ops:N0} | {p.Ops / p.Seconds:N0} | {Us(p.Get, 50)} | {Us(p.Get, 99)} | {Us(p.Get, 99.9)} | {Us(p.Put, 50)} | {Us(p.Put, 99)} | {Us(p.Put, 99.9)} |");
            output.WriteLine();
            output.WriteLine(compactionNote);
            return 0;
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static string Us(LatencyHistogram h, double percentile) => h.Count == 0 ? "–" : (h.Percentile(percentile) / 1000.0).ToString("F1");

    public static List<Phase> Measure(string dir, long keys, int valueSize, TimeSpan duration, out string compactionNote)
    {
        var space = new KeySpace(valueSize);
        var kv = BitcaskKv.Open(dir, "flushed");
        try
        {
            return Measure(kv.Store, space, keys, duration, out compactionNote);
        }
        catch (StoreStalledException)
        {
            kv = null; // its threads are stuck inside it; closing would wait forever
            throw;
        }
        finally
        {
            kv?.Dispose();
        }
    }

    private static List<Phase> Measure(BitcaskStore store, KeySpace space, long keys, TimeSpan duration, out string compactionNote)
    {
        Span<byte> key = stackalloc byte[KeySpace.KeyLength];
        for (long i = 0; i < keys; i++)
        {
            KeySpace.Key(i, key);
            store.Put(key, space.Value(i));
        }
        var phases = new List<Phase> { Mixed("quiet store", store, space, keys, () => false, duration) };

        for (long i = 0; i < keys; i++) // every key once more: half of the data is now dead
        {
            KeySpace.Key(i, key);
            store.Put(key, space.Value(i, 1));
        }
        store.Sync();
        var compaction = Task.Factory.StartNew(() =>
        {
            var timer = Stopwatch.StartNew();
            var result = store.Compact();
            return (timer.Elapsed, result);
        }, TaskCreationOptions.LongRunning);
        phases.Add(Mixed("during compaction", store, space, keys, () => compaction.IsCompleted, TimeSpan.FromHours(1)));
        var (compactionTime, compacted) = compaction.GetAwaiter().GetResult();
        var stats = store.GetStats();
        compactionNote = $"The compaction took {compactionTime.TotalMilliseconds:F0} ms ({compacted.SegmentsIn} segment(s) in, {compacted.SegmentsOut} out, {compacted.RecordsDropped:N0} records dropped; the second phase runs exactly while it runs); " +
                         $"after it: {stats.Segments.Count} segment(s), {Compare.Bytes(stats.TotalBytes)} on disk, {stats.Fragmentation:P0} dead.";
        return phases;
    }

    /// <summary>Runs the mixed workload on 2 threads until <paramref name="stop"/> returns true or <paramref name="duration"/> passes.</summary>
    public static Phase Mixed(string name, BitcaskStore store, KeySpace space, long keys, Func<bool> stop, TimeSpan duration)
    {
        const int threads = 2;
        var gets = new LatencyHistogram[threads];
        var puts = new LatencyHistogram[threads];
        var ops = new long[threads];
        var running = 1;
        Exception? failure = null;
        using var start = new Barrier(threads + 1);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var get = gets[t] = new LatencyHistogram();
            var put = puts[t] = new LatencyHistogram();
            var rng = new FastRandom(KeySpace.Mix((ulong)t + 99));
            var buffer = new ArrayBufferWriter<byte>(Math.Max(256, space.ValueSize));
            var key = new byte[KeySpace.KeyLength];
            start.SignalAndWait();
            long n = 0;
            try
            {
                while (Volatile.Read(ref running) == 1)
                {
                    var index = rng.Next(keys);
                    KeySpace.Key(index, key);
                    var began = Stopwatch.GetTimestamp();
                    if (rng.Next(10) == 0)
                    {
                        store.Put(key, space.Value(index, 2));
                        put.Record(WorkloadRunner.ToNanoseconds(Stopwatch.GetTimestamp() - began));
                    }
                    else
                    {
                        buffer.ResetWrittenCount();
                        if (!store.TryGet(key, buffer)) throw new InvalidOperationException("a get of an existing key found nothing");
                        get.Record(WorkloadRunner.ToNanoseconds(Stopwatch.GetTimestamp() - began));
                    }
                    n++;
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
            ops[t] = n;
        }) { IsBackground = true }).ToArray();
        foreach (var w in workers) w.Start();
        start.SignalAndWait();
        var timer = Stopwatch.StartNew();
        while (!stop() && timer.Elapsed < duration && Volatile.Read(ref failure) is null) Thread.Sleep(5);
        Volatile.Write(ref running, 0);
        var elapsed = timer.Elapsed.TotalSeconds;
        foreach (var w in workers)
            if (!w.Join(WorkloadRunner.StallGrace))
                throw new StoreStalledException($"mixed workload ({name}): a worker made no progress for {WorkloadRunner.StallGrace.TotalSeconds:F0} s after the stop signal; the store stopped answering (a hang).");
        if (failure is not null) throw new InvalidOperationException($"mixed workload ({name}) failed: {failure.Message}", failure);
        var allGets = new LatencyHistogram();
        var allPuts = new LatencyHistogram();
        foreach (var h in gets) allGets.Merge(h);
        foreach (var h in puts) allPuts.Merge(h);
        return new Phase(name, ops.Sum(), elapsed, allGets, allPuts);
    }
}
