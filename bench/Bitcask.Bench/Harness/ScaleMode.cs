using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Bitcask.Bench.Harness;

/// <summary>
/// How cost grows with the store: for each key count, in a fresh child process per run, fill (1 thread, Flushed),
/// random get and get of absent keys (1 thread), random overwrite (1 thread), a full compaction, close + reopen to the
/// first get; keydir bytes per key, disk bytes and peak RSS. Writes a Markdown table and an SVG chart of nanoseconds per
/// operation against key count (log-log; flat lines mean cost per operation does not grow with the store).
/// </summary>
public static class ScaleMode
{
    private const string Marker = "--- scale result ---";

    /// <summary>The per-operation series drawn in the chart: metric key, label, colour.</summary>
    private static readonly (string Key, string Label, string Colour)[] Series =
    [
        ("fill", "fill (put of a new key)", "#1f77b4"),
        ("overwrite", "overwrite (put of an existing key)", "#ff7f0e"),
        ("get", "random get", "#2ca02c"),
        ("miss", "get of an absent key", "#9467bd"),
        ("reopen", "reopen, per key", "#8c564b"),
        ("compact", "compaction, per record", "#d62728"),
    ];

    public static int Run(Args args, TextWriter output, TextWriter log)
    {
        var counts = args.Longs("keys", [1_000_000, 10_000_000, 30_000_000], 1, 1L << 32);
        var valueSize = args.Int("value-size", 100, 1, 1 << 20);
        var runs = args.Int("runs", 1, 1, 9);
        var seconds = args.Double("seconds", 10, 0.1, 3600);
        var outDir = args.String("out", "bench-results");
        var svgPath = args.OptionalString("svg");
        var root = args.String("dir", Path.Combine(Path.GetTempPath(), $"bitcask-bench-scale-{Environment.ProcessId}"));
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outDir);
        var rows = new List<(long Keys, Dictionary<string, double>? Median, string? Skipped, List<Dictionary<string, double>> Runs)>();
        foreach (var n in counts)
        {
            var recordBytes = KeySpace.KeyLength + valueSize + 32L;
            var diskNeeded = (long)(n * (recordBytes + 48) * 2.5); // data + hints, overwrites, compaction output beside its input
            var memoryNeeded = n * 120L; // keydir (~50 B/key) twice over while stripes grow, plus the hint mappings
            var free = new DriveInfo(Path.GetFullPath(root)).AvailableFreeSpace;
            var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            if (diskNeeded > free || memoryNeeded > memory)
            {
                var why = diskNeeded > free
                    ? $"skipped: needs about {Compare.Bytes(diskNeeded)} of disk, {Compare.Bytes(free)} free"
                    : $"skipped: needs about {Compare.Bytes(memoryNeeded)} of memory, {Compare.Bytes(memory)} available";
                log.WriteLine($"scale {n:N0}: {why}");
                rows.Add((n, null, why, []));
                continue;
            }
            var samples = new List<Dictionary<string, double>>();
            for (var r = 0; r < runs; r++)
            {
                var dir = Path.Combine(root, $"{n}-{r}");
                try
                {
                    log.WriteLine($"scale {n:N0} keys, run {r + 1}/{runs}");
                    samples.Add(Child(dir, n, valueSize, seconds, log));
                }
                finally
                {
                    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                }
            }
            var median = samples.SelectMany(s => s.Keys).Distinct().ToDictionary(k => k, k => Compare.Median(samples.Where(s => s.ContainsKey(k)).Select(s => s[k])));
            rows.Add((n, median, null, samples));
        }
        var md = ToMarkdown(rows.Select(r => (r.Keys, r.Median, r.Skipped)).ToList(), valueSize, runs, seconds);
        output.Write(md);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        File.WriteAllText(Path.Combine(outDir, $"scale-{stamp}.md"), md);
        File.WriteAllText(Path.Combine(outDir, $"scale-{stamp}.json"), JsonSerializer.Serialize(rows.Select(r => new { r.Keys, r.Median, r.Skipped, r.Runs }), Compare.Json));
        var svg = ToSvg(rows.Where(r => r.Median is not null).Select(r => (r.Keys, r.Median!)).ToList(), valueSize, runs);
        File.WriteAllText(svgPath ?? Path.Combine(outDir, $"scale-{stamp}.svg"), svg);
        return 0;
    }

    private static Dictionary<string, double> Child(string dir, long keys, int valueSize, double seconds, TextWriter log)
    {
        var (file, prefix) = Compare.SelfCommand();
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in new[]
                 {
                     "scale-one", "--dir", dir, "--keys", keys.ToString(CultureInfo.InvariantCulture),
                     "--value-size", valueSize.ToString(CultureInfo.InvariantCulture), "--seconds", seconds.ToString(CultureInfo.InvariantCulture),
                 })
            start.ArgumentList.Add(a);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        child.ErrorDataReceived += (_, e) => { if (e.Data is not null) log.WriteLine("   " + e.Data); };
        child.BeginErrorReadLine();
        var stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var marker = stdout.LastIndexOf(Marker, StringComparison.Ordinal);
        if (child.ExitCode != 0 || marker < 0) throw new InvalidOperationException($"scale child failed (exit {child.ExitCode}): {stdout.Trim()}");
        return JsonSerializer.Deserialize<Dictionary<string, double>>(stdout[(marker + Marker.Length)..]) ?? throw new InvalidOperationException("scale child printed no result");
    }

    /// <summary>The child: one store of <c>--keys</c> keys, every measurement, one JSON object on stdout.</summary>
    public static int RunOne(Args args)
    {
        var dir = args.OptionalString("dir") ?? throw new ArgumentException("scale-one needs --dir.");
        var keys = args.Long("keys", 1_000_000, 1, 1L << 32);
        var valueSize = args.Int("value-size", 100, 1, 1 << 20);
        var seconds = args.Double("seconds", 10, 0.1, 3600);
        var space = new KeySpace(valueSize);
        var m = new Dictionary<string, double>();
        var options = new BitcaskOptions { CompactionEnabled = false }; // Flushed (the default); compaction only when asked
        void Say(string s) => Console.Error.WriteLine($"  [{keys:N0}] {s}");

        var store = BitcaskStore.Open(dir, options);
        try
        {
            var key = new byte[KeySpace.KeyLength];
            var timer = Stopwatch.StartNew();
            var cpu = CpuNs();
            for (long i = 0; i < keys; i++)
            {
                KeySpace.Key(i, key);
                store.Put(key, space.Value(i));
            }
            m["fill"] = keys / timer.Elapsed.TotalSeconds;
            m["fill.cpu_ns"] = (CpuNs() - cpu) / (double)keys;
            Say($"fill {m["fill"]:N0}/s");
            store.Sync();
            var stats = store.GetStats();
            m["keydir.bytes_per_key"] = (double)stats.KeydirBytes / keys;
            m["disk.fill"] = StoreDiskBytes(dir);

            var buffer = new ArrayBufferWriter<byte>(Math.Max(256, valueSize));
            var rng = new FastRandom(KeySpace.Mix((ulong)keys));
            (m["get"], m["get.cpu_ns"]) = Loop(keys, seconds, () =>
            {
                KeySpace.Key(rng.Next(keys), key);
                buffer.ResetWrittenCount();
                if (!store.TryGet(key, buffer)) throw new InvalidOperationException("get of an existing key found nothing");
            });
            (m["miss"], m["miss.cpu_ns"]) = Loop(keys, seconds, () =>
            {
                KeySpace.MissingKey(rng.Next(keys), key);
                buffer.ResetWrittenCount();
                if (store.TryGet(key, buffer)) throw new InvalidOperationException("get of an absent key found a value");
            });
            Say($"get {m["get"]:N0}/s, miss {m["miss"]:N0}/s");
            (m["overwrite"], m["overwrite.cpu_ns"]) = Loop(keys, seconds, () =>
            {
                var i = rng.Next(keys);
                KeySpace.Key(i, key);
                store.Put(key, space.Value(i, 1));
            });
            Say($"overwrite {m["overwrite"]:N0}/s");
            store.Sync();
            m["disk.overwrite"] = StoreDiskBytes(dir);

            cpu = CpuNs();
            var compaction = store.Compact();
            m["compact.cpu_ns"] = (CpuNs() - cpu) / (double)Math.Max(1, compaction.RecordsKept + compaction.RecordsDropped + compaction.RecordsExpired);
            var records = compaction.RecordsKept + compaction.RecordsDropped + compaction.RecordsExpired;
            m["compact.ms"] = compaction.Duration.TotalMilliseconds;
            m["compact"] = records / Math.Max(1e-9, compaction.Duration.TotalSeconds);
            m["compact.mb_per_s"] = compaction.BytesBefore / 1048576.0 / Math.Max(1e-9, compaction.Duration.TotalSeconds);
            m["disk.compacted"] = StoreDiskBytes(dir);
            Say($"compaction {compaction.Duration.TotalSeconds:F1} s, {m["compact"]:N0} records/s, {m["compact.mb_per_s"]:F0} MiB/s");

            store.Dispose();
            timer.Restart();
            cpu = CpuNs();
            store = BitcaskStore.Open(dir, options);
            KeySpace.Key(keys / 2, key);
            buffer.ResetWrittenCount();
            if (!store.TryGet(key, buffer)) throw new InvalidOperationException("after reopen, an existing key was not found");
            m["reopen.ms"] = timer.Elapsed.TotalMilliseconds;
            m["reopen"] = keys / timer.Elapsed.TotalSeconds;
            m["reopen.cpu_ns"] = (CpuNs() - cpu) / (double)keys;
            Say($"reopen {m["reopen.ms"]:F0} ms");
        }
        finally
        {
            store.Dispose();
        }
        m["rss.peak"] = Process.GetCurrentProcess().PeakWorkingSet64;
        Console.Out.WriteLine(Marker);
        Console.Out.WriteLine(JsonSerializer.Serialize(m));
        return 0;
    }

    /// <summary>Runs <paramref name="op"/> up to <paramref name="maxOps"/> times or <paramref name="seconds"/>; ops per
    /// second, and the process's CPU nanoseconds per op.</summary>
    private static (double PerSecond, double CpuNs) Loop(long maxOps, double seconds, Action op)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var timer = Stopwatch.StartNew();
        var cpu = CpuNs();
        long n = 0;
        while (n < maxOps)
        {
            op();
            n++;
            if ((n & 255) == 0 && Stopwatch.GetTimestamp() > deadline) break;
        }
        return (n / timer.Elapsed.TotalSeconds, (CpuNs() - cpu) / (double)n);
    }

    /// <summary>CPU time this process has used (every thread: the store's background work counts), in nanoseconds. On a
    /// shared machine it moves far less with other processes' load than wall time does.</summary>
    private static long CpuNs()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime.Ticks * 100;
    }

    private static long StoreDiskBytes(string dir) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static string Ns(Dictionary<string, double> m, string key) => m.TryGetValue(key, out var v) && v > 0 ? (1e9 / v).ToString("F0", CultureInfo.InvariantCulture) : "–";

    private static string Cpu(Dictionary<string, double> m, string key) => m.TryGetValue(key + ".cpu_ns", out var v) ? v.ToString("F0", CultureInfo.InvariantCulture) : "–";

    /// <summary>CPU ns per operation when the run measured it, else wall ns per operation.</summary>
    private static double ChartNs(Dictionary<string, double> m, string key) =>
        m.TryGetValue(key + ".cpu_ns", out var cpu) && cpu > 0 ? cpu : 1e9 / m[key];

    private static string ToMarkdown(List<(long Keys, Dictionary<string, double>? M, string? Skipped)> rows, int valueSize, int runs, double seconds)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Scale: {KeySpace.KeyLength} B keys, {valueSize} B values, bitcask Flushed (default), 1 thread; median of {runs} fresh process(es) per size; get, miss and overwrite run up to the key count or {seconds} s. Machine: {Compare.MachineDescription()}");
        sb.AppendLine();
        sb.AppendLine("| keys | fill | get | absent get | overwrite | compaction | reopen to first get | keydir B/key | peak RSS | disk after fill | after overwrite | after compaction |");
        sb.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (keys, m, skipped) in rows)
        {
            if (m is null)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {keys:N0} | {skipped} | | | | | | | | | | |");
                continue;
            }
            string Ops(string k) => m.TryGetValue(k, out var v) ? $"{Compare.Count(v)}/s ({Ns(m, k)} ns; CPU {Cpu(m, k)})" : "–";
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {keys:N0} | {Ops("fill")} | {Ops("get")} | {Ops("miss")} | {Ops("overwrite")} | {m.GetValueOrDefault("compact.ms") / 1000:F1} s, {Compare.Count(m.GetValueOrDefault("compact"))} rec/s, {m.GetValueOrDefault("compact.mb_per_s"):F0} MiB/s; CPU {Cpu(m, "compact")} ns/rec | {m.GetValueOrDefault("reopen.ms"):F0} ms ({Ns(m, "reopen")} ns/key; CPU {Cpu(m, "reopen")}) | {m.GetValueOrDefault("keydir.bytes_per_key"):F1} | {Compare.Bytes(m.GetValueOrDefault("rss.peak"))} | {Compare.Bytes(m.GetValueOrDefault("disk.fill"))} | {Compare.Bytes(m.GetValueOrDefault("disk.overwrite"))} | {Compare.Bytes(m.GetValueOrDefault("disk.compacted"))} |");
        }
        sb.AppendLine();
        sb.AppendLine("ns in parentheses: nanoseconds per operation (per key for reopen), the quantity that should stay flat as the store grows; CPU: the process's CPU nanoseconds per operation (all its threads), which other processes' load moves much less than wall time. The chart plots CPU ns.");
        return sb.ToString();
    }

    /// <summary>A log-log line chart of ns per operation against key count, as SVG text (no plotting dependency).</summary>
    public static string ToSvg(List<(long Keys, Dictionary<string, double> M)> rows, int valueSize, int runs)
    {
        const int width = 760, height = 440, left = 70, right = 250, top = 40, bottom = 60;
        var plotW = width - left - right;
        var plotH = height - top - bottom;
        var points = Series.Select(s => (s, rows.Where(r => r.M.GetValueOrDefault(s.Key) > 0).Select(r => (X: (double)r.Keys, Y: ChartNs(r.M, s.Key))).ToList())).ToList();
        var all = points.SelectMany(p => p.Item2).ToList();
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"22\" font-size=\"14\">bitcask: CPU ns per operation as the store grows ({KeySpace.KeyLength} B keys, {valueSize} B values, median of {runs})</text>");
        if (all.Count == 0)
        {
            sb.AppendLine("</svg>");
            return sb.ToString();
        }
        var xMin = Math.Log10(all.Min(p => p.X)) - 0.1;
        var xMax = Math.Log10(all.Max(p => p.X)) + 0.1;
        var yMin = Math.Floor(Math.Log10(all.Min(p => p.Y)));
        var yMax = Math.Ceiling(Math.Log10(all.Max(p => p.Y)));
        if (yMax <= yMin) yMax = yMin + 1;
        double Px(double x) => left + (Math.Log10(x) - xMin) / (xMax - xMin) * plotW;
        double Py(double y) => top + plotH - (Math.Log10(y) - yMin) / (yMax - yMin) * plotH;
        string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
        for (var e = yMin; e <= yMax; e++)
        {
            for (var k = 1; k < 10 && e + Math.Log10(k) <= yMax; k++)
            {
                var y = Py(Math.Pow(10, e) * k);
                sb.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{left + plotW}\" y1=\"{F(y)}\" y2=\"{F(y)}\" stroke=\"{(k == 1 ? "#bbb" : "#eee")}\"/>");
            }
            sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{F(Py(Math.Pow(10, e)) + 4)}\" text-anchor=\"end\">{Math.Pow(10, e):G}</text>");
        }
        foreach (var (keys, _) in rows)
        {
            var x = Px(keys);
            sb.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{F(x)}\" x2=\"{F(x)}\" y1=\"{top}\" y2=\"{top + plotH}\" stroke=\"#ddd\"/>");
            sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{F(x)}\" y=\"{top + plotH + 18}\" text-anchor=\"middle\">{(keys >= 1_000_000 ? $"{keys / 1e6:G}M" : $"{keys:N0}")}</text>");
        }
        sb.AppendLine(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#444\"/>");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left + plotW / 2}\" y=\"{height - 18}\" text-anchor=\"middle\">keys in the store (log scale)</text>");
        sb.AppendLine(CultureInfo.InvariantCulture, $"<text transform=\"translate(18,{top + plotH / 2}) rotate(-90)\" text-anchor=\"middle\">CPU ns per operation (log scale)</text>");
        var legendY = top + 10;
        foreach (var ((_, label, colour), pts) in points)
        {
            if (pts.Count == 0) continue;
            sb.AppendLine(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(" ", pts.Select(p => $"{F(Px(p.X))},{F(Py(p.Y))}"))}\"/>");
            foreach (var p in pts)
                sb.AppendLine(CultureInfo.InvariantCulture, $"<circle cx=\"{F(Px(p.X))}\" cy=\"{F(Py(p.Y))}\" r=\"3.5\" fill=\"{colour}\"><title>{label}: {p.Y:F0} ns at {p.X:N0} keys</title></circle>");
            sb.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{left + plotW + 16}\" x2=\"{left + plotW + 40}\" y1=\"{legendY}\" y2=\"{legendY}\" stroke=\"{colour}\" stroke-width=\"2\"/>");
            sb.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left + plotW + 46}\" y=\"{legendY + 4}\">{label}</text>");
            legendY += 20;
        }
        sb.AppendLine("</svg>");
        return sb.ToString();
    }
}
