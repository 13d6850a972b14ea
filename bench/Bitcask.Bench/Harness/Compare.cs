using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Bitcask.Bench.Stores;

namespace Bitcask.Bench.Harness;

/// <summary>
/// The compare command: runs every store configuration <c>runs</c> times, each run in its own child process
/// (<c>run-one</c>), takes medians, prints one Markdown table per workload and writes the same as JSON.
/// </summary>
public static class Compare
{
    public const string ResultMarker = "@@BITCASK-BENCH-RESULT@@";

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public sealed record Report(string Date, string Machine, RunOptions Options, int Runs, List<ConfigSummary> Configs);

    public sealed record ConfigSummary(string Store, string Variant, string Role, string Settings, string? Error,
        Dictionary<string, double> Median, List<RunResult> Runs, List<string> Notes)
    {
        public string Id => $"{Store}:{Variant}";
    }

    public static int Run(Args args, TextWriter output, TextWriter log)
    {
        var stores = StoreCatalog.ParseStores(args.String("stores", string.Join(',', StoreCatalog.Names)));
        var options = new RunOptions(
            args.Long("keys", 1_000_000, 1, 1L << 40),
            args.Int("value-size", 100, 1, 16 << 20),
            args.Double("seconds", 5, 0.01, 3600),
            args.Double("durable-seconds", 5, 0.01, 3600));
        var runs = args.Int("runs", 3, 1, 100);
        var root = args.String("dir", Path.Combine(Path.GetTempPath(), $"bitcask-bench-{Environment.ProcessId}"));
        var outDir = args.String("out", "bench-results");
        var roles = args.String("roles", "throughput,durable").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(r => Enum.TryParse<StoreRole>(r, ignoreCase: true, out var role) ? role : throw new ArgumentException($"Unknown role '{r}' in --roles; expected throughput and/or durable.")).ToHashSet();

        var configs = stores.SelectMany(StoreCatalog.ConfigsFor).Where(c => roles.Contains(c.Role)).ToList();
        // Runs are interleaved (run 1 of every store, then run 2 of every store, ...) so that a change in the machine's
        // load over the minutes of a comparison falls on every store alike instead of on whichever store ran then.
        var results = configs.ToDictionary(c => c, _ => new List<RunResult>());
        var given = new HashSet<StoreConfig>();
        for (var run = 1; run <= runs; run++)
        {
            foreach (var config in configs)
            {
                if (given.Contains(config)) continue;
                var dir = Path.Combine(root, $"{config.Store}-{config.Variant}-{run}");
                log.WriteLine($"== {config.Id} run {run}/{runs} in {dir}");
                var result = RunChild(config, dir, options, log);
                TryDelete(dir);
                results[config].Add(result);
                if (result.Error is not null)
                {
                    log.WriteLine($"   {config.Id}: {result.Error}");
                    if (result.Metrics.Count <= 1) given.Add(config); // nothing measured (e.g. a missing native library): another run will not help
                }
            }
        }
        var summaries = configs.Select(c => Summarize(c, results[c])).ToList();
        TryDelete(root);

        var report = new Report(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), MachineDescription(), options, runs, summaries);
        var markdown = ToMarkdown(report);
        output.Write(markdown);
        Directory.CreateDirectory(outDir);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        File.WriteAllText(Path.Combine(outDir, $"compare-{stamp}.json"), JsonSerializer.Serialize(report, Json));
        File.WriteAllText(Path.Combine(outDir, $"compare-{stamp}.md"), markdown);
        log.WriteLine($"Wrote {Path.Combine(outDir, $"compare-{stamp}.json")} and .md");
        return summaries.Any(s => s.Error is not null && !s.Error.Contains("liblmdb", StringComparison.Ordinal)) ? 1 : 0;
    }

    private static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The command line that starts this program again: its apphost when there is one beside the assembly,
    /// otherwise the dotnet host with the assembly (also when running inside a test host).</summary>
    public static (string FileName, List<string> Prefix) SelfCommand()
    {
        var assembly = typeof(Compare).Assembly.Location;
        var apphost = Path.Combine(Path.GetDirectoryName(assembly)!, Path.GetFileNameWithoutExtension(assembly) + (OperatingSystem.IsWindows() ? ".exe" : ""));
        if (File.Exists(apphost)) return (apphost, []);
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host) || !File.Exists(host))
            host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p).Equals("dotnet", StringComparison.OrdinalIgnoreCase) ? p : "dotnet";
        return (host, [assembly]);
    }

    public static RunResult RunChild(StoreConfig config, string directory, RunOptions options, TextWriter log)
    {
        var (file, prefix) = SelfCommand();
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in new[]
                 {
                     "run-one", "--store", config.Store, "--variant", config.Variant, "--role", config.Role.ToString().ToLowerInvariant(),
                     "--dir", directory, "--keys", options.Keys.ToString(CultureInfo.InvariantCulture),
                     "--value-size", options.ValueSize.ToString(CultureInfo.InvariantCulture),
                     "--seconds", options.Seconds.ToString(CultureInfo.InvariantCulture),
                     "--durable-seconds", options.DurableSeconds.ToString(CultureInfo.InvariantCulture),
                 })
            start.ArgumentList.Add(a);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stderr = new StringBuilder();
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            log.WriteLine("   " + e.Data);
        };
        child.BeginErrorReadLine();
        var stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var marker = stdout.LastIndexOf(ResultMarker, StringComparison.Ordinal);
        if (marker >= 0)
        {
            var json = stdout[(marker + ResultMarker.Length)..];
            var parsed = JsonSerializer.Deserialize<RunResult>(json, Json);
            if (parsed is not null) return parsed;
        }
        string tail;
        lock (stderr) tail = stderr.ToString();
        tail = tail.Length > 2000 ? tail[^2000..] : tail;
        return new RunResult
        {
            Store = config.Store, Variant = config.Variant, Role = config.Role.ToString(), Keys = options.Keys, ValueSize = options.ValueSize,
            Error = $"child process exited with code {child.ExitCode} without a result. {tail.Trim()}",
        };
    }

    public static ConfigSummary Summarize(StoreConfig config, List<RunResult> results)
    {
        var ok = results; // partial results of a failed run still count for the workloads it finished
        var median = ok.SelectMany(r => r.Metrics.Keys).Distinct()
            .ToDictionary(k => k, k => Median(ok.Where(r => r.Metrics.ContainsKey(k)).Select(r => r.Metrics[k])));
        var settings = results.Select(r => r.Settings).FirstOrDefault(s => !string.IsNullOrEmpty(s)) ?? "";
        var error = results.Select(r => r.Error).FirstOrDefault(e => e is not null);
        var notes = results.SelectMany(r => r.Notes).Distinct().ToList();
        return new ConfigSummary(config.Store, config.Variant, config.Role.ToString(), settings, error, median, results, notes);
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static string MachineDescription()
    {
        string cpu = "";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return $"{Environment.ProcessorCount} cores{(cpu.Length > 0 ? " (" + cpu + ")" : "")}, {memory / (1L << 30)} GiB RAM, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }

    // ------------------------------------------------------------------ report

    public static string ToMarkdown(Report report)
    {
        var sb = new StringBuilder();
        var o = report.Options;
        sb.AppendLine($"## Comparison, {report.Date}");
        sb.AppendLine();
        sb.AppendLine($"{o.Keys:N0} keys of {KeySpace.KeyLength} B, values of {o.ValueSize} B (incompressible); median of {report.Runs} run(s), each store in its own process; " +
                      $"workloads after fill stop at {o.Keys:N0} operations or {o.Seconds} s; durable puts run {o.DurableSeconds} s. Machine: {report.Machine}. " +
                      "One run on a shared machine: read the ratios, not the absolute numbers.");
        sb.AppendLine();
        var throughputRef = report.Configs.FirstOrDefault(c => c.Id == "bitcask:flushed");
        var durableRef = report.Configs.FirstOrDefault(c => c.Id == "bitcask:synced");
        foreach (var metric in Metrics.Throughput) AppendMetric(sb, report, metric, "Throughput", throughputRef);
        foreach (var metric in Metrics.Durable) AppendMetric(sb, report, metric, "Durable", durableRef);

        var throughput = report.Configs.Where(c => c.Role == "Throughput").ToList();
        if (throughput.Count > 0)
        {
            sb.AppendLine("### latency under the mixed workload (µs)");
            sb.AppendLine();
            sb.AppendLine("| store | settings | get p50 | get p99 | get p99.9 | put p50 | put p99 | put p99.9 |");
            sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var c in throughput.Where(c => c.Median.ContainsKey("mixed.get.p50")))
                sb.AppendLine($"| {c.Store} | {c.Settings} | {F(c, "mixed.get.p50")} | {F(c, "mixed.get.p99")} | {F(c, "mixed.get.p999")} | {F(c, "mixed.put.p50")} | {F(c, "mixed.put.p99")} | {F(c, "mixed.put.p999")} |");
            sb.AppendLine();

            var live = o.Keys * (KeySpace.KeyLength + (long)o.ValueSize);
            sb.AppendLine($"### reopen, space and memory (live data {Bytes(live)})");
            sb.AppendLine();
            sb.AppendLine("| store | settings | reopen to first get | disk after fill | after overwrite | after compaction | peak RSS | keydir B/key | managed B/key |");
            sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var c in throughput.Where(c => c.Median.ContainsKey("fill")))
                sb.AppendLine($"| {c.Store} | {c.Settings} | {Ms(c, "reopen.ms")} | {B(c, "space.fill")} | {B(c, "space.overwrite")} | {B(c, "space.compacted")} | {B(c, "rss.peak")} | {F(c, "keydir.bytes_per_key")} | {F(c, "managed.bytes_per_key")} |");
            sb.AppendLine();
        }

        var problems = report.Configs.Where(c => c.Error is not null).ToList();
        var notes = report.Configs.SelectMany(c => c.Notes.Select(n => $"{c.Id}: {n}")).ToList();
        if (problems.Count + notes.Count > 0)
        {
            sb.AppendLine("### notes");
            sb.AppendLine();
            foreach (var c in problems) sb.AppendLine($"- **{c.Id} failed** ({c.Runs.Count(r => r.Error is not null)} of {c.Runs.Count} runs; workloads it finished are in the tables): {c.Error}");
            foreach (var n in notes) sb.AppendLine($"- {n}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static void AppendMetric(StringBuilder sb, Report report, Metrics.Definition metric, string role, ConfigSummary? reference)
    {
        var rows = report.Configs.Where(c => c.Role == role && c.Median.ContainsKey(metric.Key)).ToList();
        if (rows.Count == 0) return;
        var refValue = reference?.Median.GetValueOrDefault(metric.Key, double.NaN) ?? double.NaN;
        sb.AppendLine($"### {metric.Title}");
        sb.AppendLine();
        sb.AppendLine($"| store | settings | {metric.Unit} (median) | × {reference?.Id ?? "bitcask"} | runs |");
        sb.AppendLine("| --- | --- | ---: | ---: | --- |");
        foreach (var c in rows)
        {
            var value = c.Median[metric.Key];
            var ratio = double.IsNaN(refValue) || refValue == 0 ? "" : (value / refValue).ToString("0.00", CultureInfo.InvariantCulture) + "×";
            string Format(double v) => metric.Unit == "ratio" ? v.ToString("0.00", CultureInfo.InvariantCulture) + "×" : Count(v);
            var runs = string.Join(" / ", c.Runs.Where(r => r.Metrics.ContainsKey(metric.Key)).Select(r => Format(r.Metrics[metric.Key])));
            var (store, settings) = metric.Key == "fdatasync" ? ($"machine (measured in the {c.Store} process)", "plain file: pwrite + fdatasync") : (c.Store, c.Settings);
            sb.AppendLine($"| {store} | {settings} | {Format(value)} | {ratio} | {runs} |");
        }
        sb.AppendLine();
    }

    internal static string Count(double v) => v switch
    {
        >= 10_000_000 => (v / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        >= 1_000_000 => (v / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
        >= 10_000 => (v / 1e3).ToString("0", CultureInfo.InvariantCulture) + "K",
        >= 1_000 => (v / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "K",
        _ => v.ToString("0", CultureInfo.InvariantCulture),
    };

    private static string F(ConfigSummary c, string key) =>
        c.Median.TryGetValue(key, out var v) && !double.IsNaN(v) ? v.ToString(v >= 100 ? "0" : "0.0", CultureInfo.InvariantCulture) : "–";

    private static string Ms(ConfigSummary c, string key) =>
        c.Median.TryGetValue(key, out var v) ? v.ToString(v >= 100 ? "0" : "0.0", CultureInfo.InvariantCulture) + " ms" : "–";

    private static string B(ConfigSummary c, string key) => c.Median.TryGetValue(key, out var v) ? Bytes(v) : "–";

    public static string Bytes(double v) => v switch
    {
        >= 1L << 30 => (v / (1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (v / (1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (v / (1L << 10)).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => v.ToString("0", CultureInfo.InvariantCulture) + " B",
    };
}
