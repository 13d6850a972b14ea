using System.Buffers;
using System.Diagnostics;
using Bitcask.Bench.Stores;

namespace Bitcask.Bench.Harness;

/// <summary>Sizes of one run. <see cref="Seconds"/> caps every workload after fill (it stops at the key count or the time, whichever comes first).</summary>
public sealed record RunOptions(long Keys, int ValueSize, double Seconds, double DurableSeconds)
{
    public void Validate()
    {
        if (Keys is < 1 or > 1L << 40) throw new ArgumentOutOfRangeException(nameof(Keys), Keys, "--keys must be between 1 and 2^40");
        if (ValueSize is < 1 or > 16 << 20) throw new ArgumentOutOfRangeException(nameof(ValueSize), ValueSize, "--value-size must be between 1 and 16777216 bytes");
        if (Seconds is <= 0 or > 3600) throw new ArgumentOutOfRangeException(nameof(Seconds), Seconds, "--seconds must be more than 0 and at most 3600");
        if (DurableSeconds is <= 0 or > 3600) throw new ArgumentOutOfRangeException(nameof(DurableSeconds), DurableSeconds, "--durable-seconds must be more than 0 and at most 3600");
    }
}

/// <summary>
/// Runs the workloads of one store configuration in this process (the compare command starts one process per store so
/// that peak memory is per store). Throughput role: fill, space, overwrite, space, compaction, read1/2, miss1/2,
/// reopen, then the concurrent-writer workloads overwrite16 and mixed (with latencies). Durable role: durable puts with 1 and 16 writers for a fixed time.
/// </summary>
public sealed class WorkloadRunner(StoreConfig config, string directory, RunOptions options, TextWriter? log = null)
{
    private readonly KeySpace _space = new(options.ValueSize);

    /// <summary>How long past its time limit a workload may run before the store counts as hung.</summary>
    public static TimeSpan StallGrace { get; set; } = TimeSpan.FromSeconds(60);
    private IKvStore? _store;

    public RunResult Run()
    {
        options.Validate();
        var result = new RunResult { Store = config.Store, Variant = config.Variant, Role = config.Role.ToString(), Keys = options.Keys, ValueSize = options.ValueSize };
        try
        {
            var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
            _store = StoreCatalog.Open(config, directory);
            result.Settings = _store.Settings;
            if (config.Role == StoreRole.Throughput) RunThroughput(result, managedBefore);
            else RunDurable(result);
        }
        catch (Exception e) when (LmdbKv.IsNativeLoadFailure(e))
        {
            result.Error = config.Store == "lmdb" ? LmdbKv.NativeMissingMessage(e) : $"{config.Store}: native library could not be loaded: {e.GetBaseException().Message}";
        }
        catch (StoreStalledException e)
        {
            result.Error = e.Message;
            _store = null; // its threads are stuck inside it: closing would wait forever; the process exits instead
        }
        catch (Exception e)
        {
            result.Error = $"{e.GetType().Name}: {e.Message}";
            log?.WriteLine($"[{config.Id}] failed: {e}");
        }
        finally
        {
            try { _store?.Dispose(); }
            catch (Exception e) when (result.Error is not null) { log?.WriteLine($"[{config.Id}] close after failure: {e.Message}"); }
            _store = null;
        }
        result.Metrics["rss.peak"] = Process.GetCurrentProcess().PeakWorkingSet64;
        return result;
    }

    private IKvStore Store => _store ?? throw new InvalidOperationException("store not open");

    private void Say(string message) => log?.WriteLine($"[{config.Id}] {message}");

    private void RunThroughput(RunResult result, long managedBefore)
    {
        var keys = options.Keys;
        var time = TimeSpan.FromSeconds(options.Seconds);

        result.Metrics["fill"] = Fill();
        Say($"fill {result.Metrics["fill"]:N0} ops/s");
        if (Store is BitcaskKv bitcask)
        {
            var stats = bitcask.Store.GetStats();
            result.Metrics["keydir.bytes_per_key"] = (double)stats.KeydirBytes / keys;
            result.Metrics["managed.bytes_per_key"] = (double)(GC.GetTotalMemory(forceFullCollection: true) - managedBefore) / keys;
        }
        Store.Sync();
        result.Metrics["space.fill"] = StoreCatalog.DiskBytes(directory);

        result.Metrics["overwrite"] = RunThreads(1, keys, time, (s, t, ref rng, buffer, n) => Put(s, rng.Next(keys), 1));
        Say($"overwrite {result.Metrics["overwrite"]:N0} ops/s");
        Store.Sync();
        result.Metrics["space.overwrite"] = StoreCatalog.DiskBytes(directory);
        var compactTimer = Stopwatch.StartNew();
        if (Store.TryCompact(out var note))
        {
            result.Metrics["compact.ms"] = compactTimer.Elapsed.TotalMilliseconds;
            Store.Sync();
            result.Metrics["space.compacted"] = StoreCatalog.DiskBytes(directory);
        }
        result.Notes.Add("compaction: " + note);

        long misses = 0;
        result.Metrics["read1"] = RunThreads(1, keys, time, (s, t, ref rng, buffer, n) => { if (!Get(s, KeyOf(rng.Next(keys)), buffer)) Interlocked.Increment(ref misses); });
        result.Metrics["read2"] = RunThreads(2, keys, time, (s, t, ref rng, buffer, n) => { if (!Get(s, KeyOf(rng.Next(keys)), buffer)) Interlocked.Increment(ref misses); });
        if (misses > 0) throw new InvalidOperationException($"{config.Id}: {misses} gets of existing keys found nothing");
        Say($"read1 {result.Metrics["read1"]:N0} ops/s, read2 {result.Metrics["read2"]:N0} ops/s");

        long hits = 0;
        result.Metrics["miss1"] = RunThreads(1, keys, time, (s, t, ref rng, buffer, n) => { if (Get(s, MissingKeyOf(rng.Next(keys)), buffer)) Interlocked.Increment(ref hits); });
        result.Metrics["miss2"] = RunThreads(2, keys, time, (s, t, ref rng, buffer, n) => { if (Get(s, MissingKeyOf(rng.Next(keys)), buffer)) Interlocked.Increment(ref hits); });
        if (hits > 0) throw new InvalidOperationException($"{config.Id}: {hits} gets of absent keys found a value");
        Say($"miss1 {result.Metrics["miss1"]:N0} ops/s, miss2 {result.Metrics["miss2"]:N0} ops/s");

        var (closeMs, reopenMs) = Reopen(keys);
        result.Metrics["close.ms"] = closeMs;
        result.Metrics["reopen.ms"] = reopenMs;
        Say($"close {closeMs:F0} ms, reopen to first get {reopenMs:F1} ms");

        // Concurrent writers last: a store that stalls under them (see bench/NOTES.md) still reports everything above.
        result.Metrics["overwrite16"] = RunThreads(16, keys, time, (s, t, ref rng, buffer, n) => Put(s, rng.Next(keys), 2));
        Say($"overwrite16 {result.Metrics["overwrite16"]:N0} ops/s");
        var (mixed, getLatency, putLatency) = Mixed(keys, time, 2);
        result.Metrics["mixed"] = mixed;
        AddLatency(result, "mixed.get", getLatency);
        AddLatency(result, "mixed.put", putLatency);
        Say($"mixed {mixed:N0} ops/s, get p99 {getLatency.Percentile(99) / 1000:F1} µs, put p99 {putLatency.Percentile(99) / 1000:F1} µs");
    }

    private void RunDurable(RunResult result)
    {
        var time = TimeSpan.FromSeconds(options.DurableSeconds);
        // The machine's ceiling for one durable writer, measured in every store's process right before its 1-writer run:
        // on a VM whose fdatasync latency moves from minute to minute, only a ratio taken in the same minute says how
        // close a store comes to it (bench/README.md, "Issue 14 progress").
        result.Metrics["fdatasync"] = FdatasyncRate(time);
        Say($"machine: append {KeySpace.KeyLength + options.ValueSize + 32} B + fdatasync {result.Metrics["fdatasync"]:N0}/s");
        long next = 0;
        foreach (var writers in new[] { 1, 16 })
        {
            var name = "durable" + writers;
            result.Metrics[name] = RunThreads(writers, long.MaxValue, time, (s, t, ref rng, buffer, n) => Put(s, Interlocked.Increment(ref next), 0));
            Say($"{name} {result.Metrics[name]:N0} ops/s");
        }
        result.Metrics["durable1.ceiling"] = result.Metrics["durable1"] / result.Metrics["fdatasync"];
    }

    /// <summary>The machine's own rate of (append one record-sized block + fdatasync) on a plain file in the store's
    /// directory: the ceiling for one durable writer.</summary>
    private double FdatasyncRate(TimeSpan time)
    {
        var path = Path.Combine(directory, "fdatasync-baseline.tmp");
        var block = new byte[KeySpace.KeyLength + options.ValueSize + 32];
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite);
            long offset = 0, count = 0;
            var timer = Stopwatch.StartNew();
            while (timer.Elapsed < time)
            {
                RandomAccess.Write(handle, block, offset);
                offset += block.Length;
                if (!Bitcask.Storage.Native.TryDataSync(handle, path)) RandomAccess.FlushToDisk(handle);
                count++;
            }
            return count / timer.Elapsed.TotalSeconds;
        }
        finally
        {
            File.Delete(path);
        }
    }

    internal static void AddLatency(RunResult result, string prefix, LatencyHistogram histogram)
    {
        if (histogram.Count == 0) return;
        result.Metrics[prefix + ".p50"] = histogram.Percentile(50) / 1000.0;
        result.Metrics[prefix + ".p99"] = histogram.Percentile(99) / 1000.0;
        result.Metrics[prefix + ".p999"] = histogram.Percentile(99.9) / 1000.0;
    }

    private double Fill()
    {
        using var session = Store.NewSession();
        Span<byte> key = stackalloc byte[KeySpace.KeyLength];
        var timer = Stopwatch.StartNew();
        for (long i = 0; i < options.Keys; i++)
        {
            KeySpace.Key(i, key);
            session.Put(key, _space.Value(i));
        }
        return options.Keys / timer.Elapsed.TotalSeconds;
    }

    [ThreadStatic] private static byte[]? t_key;

    private static byte[] KeyOf(long index)
    {
        var key = t_key ??= new byte[KeySpace.KeyLength];
        KeySpace.Key(index, key);
        return key;
    }

    private static byte[] MissingKeyOf(long index)
    {
        var key = t_key ??= new byte[KeySpace.KeyLength];
        KeySpace.MissingKey(index, key);
        return key;
    }

    private void Put(IKvSession session, long index, int round) => session.Put(KeyOf(index), _space.Value(index, round));

    private static bool Get(IKvSession session, byte[] key, ArrayBufferWriter<byte> buffer)
    {
        buffer.ResetWrittenCount();
        return session.TryGet(key, buffer);
    }

    private delegate void Operation(IKvSession session, int thread, ref FastRandom random, ArrayBufferWriter<byte> buffer, long n);

    /// <summary>Runs <paramref name="operation"/> on <paramref name="threads"/> threads (each with its own session) until
    /// <paramref name="maxOps"/> operations in all or <paramref name="limit"/> has passed; returns operations per second.</summary>
    private double RunThreads(int threads, long maxOps, TimeSpan limit, Operation operation)
    {
        var perThread = maxOps == long.MaxValue ? long.MaxValue : Math.Max(1, maxOps / threads);
        var counts = new long[threads];
        var sessions = Enumerable.Range(0, threads).Select(_ => Store.NewSession()).ToArray();
        try
        {
            using var start = new Barrier(threads + 1);
            var deadline = long.MaxValue;
            Exception? failure = null;
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                var rng = new FastRandom(KeySpace.Mix((ulong)(t + 1) * 7919 + (ulong)Environment.TickCount64));
                var buffer = new ArrayBufferWriter<byte>(Math.Max(256, options.ValueSize));
                var session = sessions[t];
                start.SignalAndWait();
                long n = 0;
                try
                {
                    while (n < perThread)
                    {
                        operation(session, t, ref rng, buffer, n);
                        n++;
                        if ((n & 63) == 0 && Stopwatch.GetTimestamp() > Volatile.Read(ref deadline)) break;
                    }
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                    Volatile.Write(ref deadline, 0); // stop the others
                }
                counts[t] = n;
            }) { IsBackground = true, Name = $"bench-{t}" }).ToArray();
            foreach (var w in workers) w.Start();
            Volatile.Write(ref deadline, Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency));
            var timer = Stopwatch.StartNew();
            start.SignalAndWait();
            var grace = limit + StallGrace;
            foreach (var w in workers)
            {
                var left = grace - timer.Elapsed;
                if (!w.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero))
                    throw new StoreStalledException($"{config.Id}: {threads} thread(s) made no progress for {StallGrace.TotalSeconds:F0} s past the {limit.TotalSeconds:F1} s limit; the store stopped answering (a hang). Worker stacks: use dotnet-stack on this process.");
            }
            var elapsed = timer.Elapsed.TotalSeconds;
            if (failure is not null) throw new InvalidOperationException($"{config.Id}: a worker thread failed: {failure.Message}", failure);
            return counts.Sum() / elapsed;
        }
        finally
        {
            foreach (var s in sessions) s.Dispose();
        }
    }

    private (double OpsPerSecond, LatencyHistogram Get, LatencyHistogram Put) Mixed(long keys, TimeSpan limit, int threads)
    {
        var gets = Enumerable.Range(0, threads).Select(_ => new LatencyHistogram()).ToArray();
        var puts = Enumerable.Range(0, threads).Select(_ => new LatencyHistogram()).ToArray();
        var opsPerSecond = RunThreads(threads, keys, limit, (s, t, ref rng, buffer, n) =>
        {
            var index = rng.Next(keys);
            var started = Stopwatch.GetTimestamp();
            if (rng.Next(10) == 0)
            {
                Put(s, index, 3);
                puts[t].Record(ToNanoseconds(Stopwatch.GetTimestamp() - started));
            }
            else
            {
                if (!Get(s, KeyOf(index), buffer)) throw new InvalidOperationException($"{config.Id}: get of an existing key found nothing in the mixed workload");
                gets[t].Record(ToNanoseconds(Stopwatch.GetTimestamp() - started));
            }
        });
        var get = new LatencyHistogram();
        var put = new LatencyHistogram();
        foreach (var h in gets) get.Merge(h);
        foreach (var h in puts) put.Merge(h);
        return (opsPerSecond, get, put);
    }

    internal static long ToNanoseconds(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));

    private (double CloseMs, double ReopenMs) Reopen(long keys)
    {
        var timer = Stopwatch.StartNew();
        Store.Dispose();
        _store = null;
        var closeMs = timer.Elapsed.TotalMilliseconds;
        var probe = KeyOf(keys / 2);
        var buffer = new ArrayBufferWriter<byte>(Math.Max(256, options.ValueSize));
        timer.Restart();
        _store = StoreCatalog.Open(config, directory);
        using (var session = _store.NewSession())
        {
            if (!session.TryGet(probe, buffer)) throw new InvalidOperationException($"{config.Id}: after reopen, an existing key was not found");
        }
        return (closeMs, timer.Elapsed.TotalMilliseconds);
    }
}

/// <summary>A workload's threads stopped making progress inside the store.</summary>
public sealed class StoreStalledException(string message) : Exception(message);
