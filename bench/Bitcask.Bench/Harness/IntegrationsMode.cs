using System.Diagnostics;
using System.Globalization;
using System.Threading.RateLimiting;
using Bitcask.Extensions.Caching;
using Bitcask.Extensions.RateLimiting;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace Bitcask.Bench.Harness;

/// <summary>
/// <c>integrations</c> mode: HybridCache get-or-create per second with our L2 vs <c>MemoryDistributedCache</c> (hits
/// served by L1, hits with L1 disabled so the L2 serves them, and misses that run the factory and write L2), and
/// rate-limiter acquires per second of our durable fixed window vs the in-memory <see cref="FixedWindowRateLimiter"/>,
/// all in the same run; medians of <c>--runs</c> runs.
/// </summary>
public static class IntegrationsMode
{
    public static int Run(Args args, TextWriter output)
    {
        var seconds = args.Double("seconds", 2, 0.2, 600);
        var runs = args.Int("runs", 3, 1, 20);
        var keys = args.Int("keys", 10_000, 100, 10_000_000);
        var results = new List<Dictionary<string, double>>();
        for (var run = 0; run < runs; run++)
        {
            results.Add(RunOnce(keys, seconds));
            Console.Error.WriteLine($"run {run + 1}/{runs} done");
        }
        double M(string name) => results.Select(r => r[name]).Order().ElementAt(results.Count / 2);
        var c = CultureInfo.InvariantCulture;
        output.WriteLine($"integrations: {keys:N0} keys, 100 B values, Flushed store, {seconds} s per cell, medians of {runs} runs");
        output.WriteLine();
        output.WriteLine("| HybridCache GetOrCreateAsync, 1 thread | bitcask L2 ops/s | MemoryDistributedCache L2 ops/s | ratio |");
        output.WriteLine("| --- | ---: | ---: | ---: |");
        foreach (var (name, label) in new[] { ("hit", "hit (L1)"), ("l2hit", "hit, L1 disabled (served by L2)"), ("miss", "miss (factory + L2 write)") })
            output.WriteLine(string.Create(c, $"| {label} | {M("bitcask-" + name):N0} | {M("memory-" + name):N0} | {M("bitcask-" + name) / M("memory-" + name):F2} |"));
        output.WriteLine();
        output.WriteLine("| Rate limiter AttemptAcquire, 1,000 partitions | bitcask fixed window ops/s | in-memory FixedWindowRateLimiter ops/s | ratio |");
        output.WriteLine("| --- | ---: | ---: | ---: |");
        foreach (var threads in new[] { 1, 16 })
            output.WriteLine(string.Create(c, $"| {threads} thread{(threads > 1 ? "s" : "")} | {M("bitcask-acquire" + threads):N0} | {M("memory-acquire" + threads):N0} | {M("bitcask-acquire" + threads) / M("memory-acquire" + threads):F2} |"));
        return 0;
    }

    private static Dictionary<string, double> RunOnce(int keys, double seconds)
    {
        var result = new Dictionary<string, double>();
        var dir = Path.Combine(Path.GetTempPath(), "bitcask-integrations-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            using var store = BitcaskStore.Open(dir, new BitcaskOptions { Durability = Durability.Flushed });
            foreach (var l2 in new[] { "bitcask", "memory" })
            {
                var services = new ServiceCollection();
                if (l2 == "bitcask") services.AddBitcaskDistributedCache(store);
                else services.AddDistributedMemoryCache();
                services.AddHybridCache();
                using var sp = services.BuildServiceProvider();
                var cache = sp.GetRequiredService<HybridCache>();
                var value = new string('v', 100);
                for (var i = 0; i < keys; i++) cache.SetAsync("k" + i, value).AsTask().Wait();
                var noLocal = new HybridCacheEntryOptions { Flags = HybridCacheEntryFlags.DisableLocalCache };
                result[l2 + "-hit"] = Measure(seconds, r => Hit(cache, "k" + r.Next(keys), null));
                result[l2 + "-l2hit"] = Measure(seconds, r => Hit(cache, "k" + r.Next(keys), noLocal));
                var miss = 0L;
                result[l2 + "-miss"] = Measure(seconds, _ => Hit(cache, "new" + Interlocked.Increment(ref miss), null));
            }

            using var durable = BitcaskRateLimiter.CreateFixedWindow(store, "bench", (int p) => p.ToString(CultureInfo.InvariantCulture),
                new FixedWindowRateLimiterOptions { PermitLimit = int.MaxValue, Window = TimeSpan.FromHours(1) });
            using var memory = PartitionedRateLimiter.Create<int, int>(p => RateLimitPartition.GetFixedWindowLimiter(p,
                _ => new FixedWindowRateLimiterOptions { PermitLimit = int.MaxValue, Window = TimeSpan.FromHours(1) }));
            foreach (var threads in new[] { 1, 16 })
            {
                result["bitcask-acquire" + threads] = Measure(seconds, r => Acquire(durable, r.Next(1000)), threads);
                result["memory-acquire" + threads] = Measure(seconds, r => Acquire(memory, r.Next(1000)), threads);
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
        return result;
    }

    private static void Hit(HybridCache cache, string key, HybridCacheEntryOptions? options)
    {
        var v = cache.GetOrCreateAsync(key, static _ => ValueTask.FromResult(new string('m', 100)), options);
        if (!v.IsCompletedSuccessfully) v.AsTask().Wait();
    }

    private static void Acquire(PartitionedRateLimiter<int> limiter, int partition)
    {
        using var lease = limiter.AttemptAcquire(partition);
        if (!lease.IsAcquired) throw new InvalidOperationException("A bench acquire failed: the limit is int.MaxValue.");
    }

    private static double Measure(double seconds, Action<Random> op, int threads = 1)
    {
        long total = 0;
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var random = new Random(t + 1);
            long n = 0;
            while ((n & 63) != 0 || Stopwatch.GetTimestamp() < until)
            {
                op(random);
                n++;
            }
            Interlocked.Add(ref total, n);
        })).ToList();
        var clock = Stopwatch.StartNew();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        return total / clock.Elapsed.TotalSeconds;
    }
}
