using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;

namespace Bitcask.Bench.Harness;

/// <summary>
/// <c>primitives</c> mode: plain <c>Put</c>, <c>CompareAndSet</c> (a <c>GetInfo</c> then a CAS on that version) and
/// <c>Increment</c> per second on 1 and 16 threads over the same filled store, in the same run; and a watcher's end-to-end
/// delay (p50/p99) while a writer puts at a paced rate. Medians of <c>--runs</c> runs.
/// </summary>
public static class PrimitivesMode
{
    public static int Run(Args args, TextWriter output)
    {
        var keys = args.Long("keys", 1_000_000, 1_000, 100_000_000);
        var seconds = args.Double("seconds", 3, 0.2, 600);
        var runs = args.Int("runs", 3, 1, 20);
        var rate = args.Long("watch-rate", 100_000, 1_000, 10_000_000);
        var results = new List<Dictionary<string, double>>();
        for (var run = 0; run < runs; run++)
        {
            var dir = Path.Combine(Path.GetTempPath(), "bitcask-primitives-" + Guid.NewGuid().ToString("N")[..8]);
            try
            {
                results.Add(RunOnce(dir, keys, seconds, rate));
            }
            finally
            {
                try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
            }
            Console.Error.WriteLine($"run {run + 1}/{runs} done");
        }
        output.WriteLine($"primitives: {keys:N0} keys (16 B keys, 100 B values), Flushed, {seconds} s per cell, medians of {runs} runs");
        output.WriteLine();
        output.WriteLine("| operation | 1 thread ops/s | 16 threads ops/s | vs Put (1 / 16) |");
        output.WriteLine("| --- | ---: | ---: | ---: |");
        foreach (var op in new[] { "put", "cas", "increment" })
        {
            double Median(string name) => results.Select(r => r[name]).Order().ElementAt(results.Count / 2);
            var one = Median(op + "1");
            var sixteen = Median(op + "16");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {op} | {one:N0} | {sixteen:N0} | {one / Median("put1"):F2} / {sixteen / Median("put16"):F2} |"));
        }
        output.WriteLine();
        double M(string name) => results.Select(r => r[name]).Order().ElementAt(results.Count / 2);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"16 writers' puts/s with a stalled watcher subscribed to every key: {M("putStalled16"):N0}, without: {M("putAfter16"):N0} ({M("putStalled16") / M("putAfter16"):F2}×)"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"watch delay at {M("watchRate"):N0} puts/s achieved ({rate:N0} asked): p50 {M("watchP50"):F1} µs, p99 {M("watchP99"):F1} µs, events {M("watchEvents"):N0}"));
        return 0;
    }

    private static Dictionary<string, double> RunOnce(string dir, long keys, double seconds, long rate)
    {
        var result = new Dictionary<string, double>();
        using var store = BitcaskStore.Open(dir, new BitcaskOptions { Durability = Durability.Flushed, CompactionEnabled = false });
        var value = new byte[100];
        Random.Shared.NextBytes(value);
        for (long i = 0; i < keys; i++) store.Put(Key(i), value);
        for (long i = 0; i < 10_000; i++) store.Put(Counter(i), "0"u8);

        foreach (var threads in new[] { 1, 16 })
        {
            result["put" + threads] = Measure(threads, seconds, (random, _) => store.Put(Key(random.NextInt64(keys)), value));
            result["cas" + threads] = Measure(threads, seconds, (random, _) =>
            {
                var key = Key(random.NextInt64(keys));
                var version = store.GetInfo(key)?.Version ?? 0;
                store.CompareAndSet(key, version, value);
            });
            result["increment" + threads] = Measure(threads, seconds, (random, _) => store.Increment(Counter(random.NextInt64(10_000))));
        }

        // A stalled watcher (subscribed, never reading) beside 16 writers: what it costs them.
        using (var stalled = new CancellationTokenSource())
        {
            var enumerator = store.Watch(Array.Empty<byte>(), 0, stalled.Token).GetAsyncEnumerator(stalled.Token);
            var first = enumerator.MoveNextAsync(); // subscribes; never awaited again
            result["putStalled16"] = Measure(16, seconds, (random, _) => store.Put(Key(random.NextInt64(keys)), value));
            result["putAfter16"] = Measure(16, seconds, (random, _) => store.Put(Key(random.NextInt64(keys)), value));
            stalled.Cancel();
            try { first.AsTask().Wait(); } catch (AggregateException) { }
            enumerator.DisposeAsync().AsTask().Wait();
        }

        // Watch delay: each value carries the Stopwatch timestamp of its put; the watcher measures when it sees it.
        var delays = new List<double>();
        using var cts = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            await foreach (var e in store.Watch("watch/"u8.ToArray(), 0, cts.Token))
            {
                var sent = BinaryPrimitives.ReadInt64LittleEndian(e.Value);
                delays.Add((Stopwatch.GetTimestamp() - sent) * 1e6 / Stopwatch.Frequency);
            }
        });
        Thread.Sleep(200); // the watch subscribes
        var clock = Stopwatch.StartNew();
        long sentCount = 0;
        var payload = new byte[100];
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            var due = (long)(clock.Elapsed.TotalSeconds * rate);
            for (; sentCount < due; sentCount++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
                store.Put(Key(sentCount % keys, "watch/"), payload);
            }
            Thread.SpinWait(50);
        }
        var achieved = sentCount / clock.Elapsed.TotalSeconds;
        Thread.Sleep(500);
        cts.Cancel();
        try { watcher.Wait(); } catch (AggregateException) { }
        var sorted = delays.Order().ToArray();
        result["watchRate"] = achieved;
        result["watchEvents"] = sorted.Length;
        result["watchP50"] = sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
        result["watchP99"] = sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))];
        return result;
    }

    private static double Measure(int threads, double seconds, Action<Random, int> op)
    {
        long total = 0;
        var stop = DateTime.UtcNow.AddSeconds(seconds);
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var random = new Random(t * 7919 + 1);
            long n = 0;
            while ((n & 63) != 0 || DateTime.UtcNow < stop)
            {
                op(random, t);
                n++;
            }
            Interlocked.Add(ref total, n);
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        return total / clock.Elapsed.TotalSeconds;
    }

    private static byte[] Key(long i, string prefix = "")
    {
        var key = new byte[prefix.Length + 16];
        System.Text.Encoding.ASCII.GetBytes(prefix, key);
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(prefix.Length), (long)((ulong)i * 0x9E3779B97F4A7C15UL));
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(prefix.Length + 8), i);
        return key;
    }

    private static byte[] Counter(long i) => System.Text.Encoding.ASCII.GetBytes($"counter:{i:D8}");
}
