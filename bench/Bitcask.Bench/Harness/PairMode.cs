using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Bitcask.Bench.Stores;

namespace Bitcask.Bench.Harness;

/// <summary>
/// Tightly paired read ratios: in each round, every store in turn runs in a fresh child process (fill, then random gets
/// and gets of absent keys on 1 and 2 threads, a few seconds each); the ratio of each store to the first one is taken
/// per round, and the median over rounds is reported. Rounds are short (well under a minute), so a change in the
/// machine's load hits both sides of a ratio alike, which the full <c>compare</c> (minutes per store) cannot promise on
/// a shared machine.
/// </summary>
public static class PairMode
{
    private const string Marker = "--- pair result ---";
    private static readonly string[] Ops = ["read1", "read2", "miss1", "miss2"];

    public static int Run(Args args, TextWriter output, TextWriter log)
    {
        var stores = args.String("stores", "bitcask:flushed,faster:memory").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var keys = args.Long("keys", 1_000_000, 1, 1L << 32);
        var valueSize = args.Int("value-size", 100, 1, 1 << 20);
        var rounds = args.Int("rounds", 5, 1, 100);
        var seconds = args.Double("seconds", 3, 0.1, 600);
        var root = args.String("dir", Path.Combine(Path.GetTempPath(), $"bitcask-bench-pair-{Environment.ProcessId}"));
        var results = stores.ToDictionary(s => s, _ => new List<Dictionary<string, double>>());
        for (var r = 0; r < rounds; r++)
        {
            foreach (var s in stores)
            {
                var dir = Path.Combine(root, $"{s.Replace(':', '-')}-{r}");
                try
                {
                    results[s].Add(Child(s, dir, keys, valueSize, seconds));
                    log.WriteLine($"round {r + 1}/{rounds} {s}: " + string.Join(", ", Ops.Select(o => $"{o} {results[s][^1][o]:N0}/s")));
                }
                finally
                {
                    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                }
            }
        }
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Paired reads: {keys:N0} keys of {KeySpace.KeyLength} B, {valueSize} B values; {rounds} rounds, each store in a fresh process per round, {seconds} s per workload; ratio = store / {stores[0]} within a round, median over rounds. Machine: {Compare.MachineDescription()}");
        sb.AppendLine();
        sb.AppendLine("| store | " + string.Join(" | ", Ops.Select(o => $"{o} ops/s (median)")) + " | " + string.Join(" | ", Ops.Select(o => $"{o} × {stores[0]} (median of per-round ratios)")) + " |");
        sb.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", Ops.Length * 2)));
        foreach (var s in stores)
        {
            var medians = Ops.Select(o => Compare.Count(Compare.Median(results[s].Select(m => m[o]))) + "/s");
            var ratios = Ops.Select(o =>
            {
                var per = results[s].Zip(results[stores[0]], (a, b) => a[o] / b[o]).ToList();
                return $"{Compare.Median(per):F2}× ({string.Join(" / ", per.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))})";
            });
            sb.AppendLine($"| {s} | {string.Join(" | ", medians)} | {string.Join(" | ", ratios)} |");
        }
        output.Write(sb.ToString());
        return 0;
    }

    private static Dictionary<string, double> Child(string store, string dir, long keys, int valueSize, double seconds)
    {
        var (file, prefix) = Compare.SelfCommand();
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in new[]
                 {
                     "pair-one", "--store", store, "--dir", dir, "--keys", keys.ToString(CultureInfo.InvariantCulture),
                     "--value-size", valueSize.ToString(CultureInfo.InvariantCulture), "--seconds", seconds.ToString(CultureInfo.InvariantCulture),
                 })
            start.ArgumentList.Add(a);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stderr = child.StandardError.ReadToEndAsync();
        var stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var marker = stdout.LastIndexOf(Marker, StringComparison.Ordinal);
        if (child.ExitCode != 0 || marker < 0) throw new InvalidOperationException($"pair child {store} failed (exit {child.ExitCode}): {stderr.Result.Trim()}");
        return JsonSerializer.Deserialize<Dictionary<string, double>>(stdout[(marker + Marker.Length)..]) ?? throw new InvalidOperationException("no result");
    }

    /// <summary>The child: fills one store, then runs read1, read2, miss1, miss2 for <c>--seconds</c> each.</summary>
    public static int RunOne(Args args)
    {
        var id = (args.OptionalString("store") ?? throw new ArgumentException("pair-one needs --store.")).Split(':');
        if (id.Length != 2) throw new ArgumentException("--store is store:variant, e.g. faster:memory.");
        var dir = args.OptionalString("dir") ?? throw new ArgumentException("pair-one needs --dir.");
        var keys = args.Long("keys", 1_000_000, 1, 1L << 32);
        var seconds = args.Double("seconds", 3, 0.1, 600);
        var space = new KeySpace(args.Int("value-size", 100, 1, 1 << 20));
        var m = new Dictionary<string, double>();
        using (var store = StoreCatalog.Open(new StoreConfig(id[0], id[1], StoreRole.Throughput), dir))
        {
            using (var session = store.NewSession())
            {
                var key = new byte[KeySpace.KeyLength];
                for (long i = 0; i < keys; i++)
                {
                    KeySpace.Key(i, key);
                    session.Put(key, space.Value(i));
                }
            }
            foreach (var op in Ops)
                m[op] = Threads(store, op[^1] - '0', keys, seconds, miss: op.StartsWith("miss", StringComparison.Ordinal));
        }
        Console.Out.WriteLine(Marker);
        Console.Out.WriteLine(JsonSerializer.Serialize(m));
        return 0;
    }

    private static double Threads(IKvStore store, int threads, long keys, double seconds, bool miss)
    {
        var stop = 0;
        var counts = new long[threads];
        var failures = 0;
        var sessions = Enumerable.Range(0, threads).Select(_ => store.NewSession()).ToArray();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var rng = new FastRandom(KeySpace.Mix((ulong)t * 7919 + 1));
            var key = new byte[KeySpace.KeyLength];
            var buffer = new ArrayBufferWriter<byte>(256);
            long n = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                for (var j = 0; j < 64; j++, n++)
                {
                    if (miss) KeySpace.MissingKey(rng.Next(keys), key);
                    else KeySpace.Key(rng.Next(keys), key);
                    buffer.ResetWrittenCount();
                    if (sessions[t].TryGet(key, buffer) == miss) Interlocked.Increment(ref failures);
                }
            }
            counts[t] = n;
        }) { IsBackground = true }).ToArray();
        var timer = Stopwatch.StartNew();
        foreach (var w in workers) w.Start();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref stop, 1);
        foreach (var w in workers) w.Join();
        var elapsed = timer.Elapsed.TotalSeconds;
        foreach (var s in sessions) s.Dispose();
        if (failures > 0) throw new InvalidOperationException($"{failures} gets returned the wrong presence");
        return counts.Sum() / elapsed;
    }
}
