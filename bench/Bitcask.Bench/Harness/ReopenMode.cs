using System.Diagnostics;
using System.Globalization;

namespace Bitcask.Bench.Harness;

/// <summary>
/// Reopen time with and without hint files. For each key count and value size it fills a store (16-byte keys, one put
/// each, Buffered, compaction off, values stored uncompressed), lets the hint files be written, and then opens it in fresh
/// child processes: first with the hint files, then with them moved aside (so open scans every segment). Each child
/// times <c>BitcaskStore.Open</c> (read-only, so nothing on disk changes between runs) up to the first successful Get,
/// twice: the first open pays the process's one-time JIT and type loading, the second shows the steady state.
/// </summary>
public static class ReopenMode
{
    /// <param name="FirstFaults">Minor page faults of the first open (Linux; 0 elsewhere).</param>
    /// <param name="TouchNsPerPage">What the first write to a fresh 4 KiB page of memory costs in that process (a probe
    /// after the opens): how much of a first open's time the memory it fills for the first time can take.</param>
    public sealed record Sample(double FirstMs, double FirstCpuMs, double WarmMs, double FirstFaults = 0, double TouchNsPerPage = 0);

    public sealed record Row(long Keys, int ValueSize, long DataBytes, long HintBytes, Sample WithHints, Sample WithoutHints);

    public static int Run(Args args, TextWriter output, TextWriter log)
    {
        var counts = args.Longs("keys", [1_000_000, 10_000_000], 1, 1L << 31);
        var sizes = args.Longs("value-size", [100, 1024], 1, 16 << 20).Select(v => (int)v).ToArray();
        var runs = args.Int("runs", 3, 1, 99);
        var root = args.String("dir", Path.Combine(Path.GetTempPath(), $"bitcask-bench-reopen-{Environment.ProcessId}"));
        var rows = new List<Row>();
        try
        {
            foreach (var n in counts)
                foreach (var size in sizes)
                {
                    // 10M keys of 1 KiB would need 10 GiB of disk: skip combinations over 4 GiB of values unless asked for.
                    if (n * (long)size > 4L << 30 && args.OptionalString("keys") is null) continue;
                    rows.Add(Measure(Path.Combine(root, $"{n}-{size}"), n, size, runs, log));
                }
        }
        finally
        {
            try { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
        output.WriteLine($"Reopen to first get, medians of {runs} fresh processes each. Machine: {Compare.MachineDescription()}");
        output.WriteLine();
        output.WriteLine("| keys | value | data | hints | with hints | without | ratio | with hints, warm | without, warm | ratio, warm | page faults, first open with hints | first touch of a 4 KiB page |");
        output.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in rows)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Keys:N0} | {r.ValueSize} B | {Mib(r.DataBytes)} | {Mib(r.HintBytes)} | {r.WithHints.FirstMs:F0} ms (CPU {r.WithHints.FirstCpuMs:F0}) | {r.WithoutHints.FirstMs:F0} ms (CPU {r.WithoutHints.FirstCpuMs:F0}) | {r.WithoutHints.FirstMs / r.WithHints.FirstMs:F1}× | {r.WithHints.WarmMs:F0} ms | {r.WithoutHints.WarmMs:F0} ms | {r.WithoutHints.WarmMs / r.WithHints.WarmMs:F1}× | {r.WithHints.FirstFaults:N0} | {r.WithHints.TouchNsPerPage / 1000:F1} µs |"));
        output.WriteLine();
        output.WriteLine("First open: a new process's first BitcaskStore.Open (includes JIT and type loading, about 0.1 s on this machine). Warm: a second open of the same store in that process.");
        output.WriteLine("A first open fills memory the process never touched before (the keydir, ~48 B per key), one minor page fault per 4 KiB page; a warm open mostly reuses memory the GC already has. The last column is a probe of what one such first touch costs here (64 MiB of fresh memory, one write per page).");
        return 0;
    }

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F0} MiB");

    private static Row Measure(string dir, long keys, int valueSize, int runs, TextWriter log)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var timer = Stopwatch.StartNew();
        var space = new KeySpace(valueSize);
        Span<byte> key = stackalloc byte[KeySpace.KeyLength];
        var options = new BitcaskOptions { Durability = Durability.Buffered, CompactionEnabled = false, CompressionThreshold = 0 };
        using (var store = BitcaskStore.Open(dir, options))
            for (long i = 0; i < keys; i++)
            {
                KeySpace.Key(i, key);
                store.Put(key, space.Value(i));
            }
        // The segment sealed by the close gets its hint from the next read-write open, in the background.
        using (var store = BitcaskStore.Open(dir, options))
        {
            var deadline = DateTime.UtcNow.AddMinutes(10);
            while (store.GetStats().Segments.Any(s => !s.HasHintFile) && DateTime.UtcNow < deadline) Thread.Sleep(50);
        }
        log.WriteLine($"filled {keys:N0} x {valueSize} B in {timer.Elapsed.TotalSeconds:F1} s");
        var data = Directory.GetFiles(dir, "*.seg").Sum(f => new FileInfo(f).Length);
        var hints = Directory.GetFiles(dir, "*.hint");
        var hintBytes = hints.Sum(f => new FileInfo(f).Length);

        var with = MedianOf(runs, () => Child(dir, keys, log));
        var aside = dir + ".hints";
        Directory.CreateDirectory(aside);
        foreach (var h in hints) File.Move(h, Path.Combine(aside, Path.GetFileName(h)));
        var without = MedianOf(runs, () => Child(dir, keys, log));
        Directory.Delete(dir, recursive: true);
        Directory.Delete(aside, recursive: true);
        log.WriteLine($"  with hints {with.FirstMs:F0} ms, without {without.FirstMs:F0} ms");
        return new Row(keys, valueSize, data, hintBytes, with, without);
    }

    private static Sample MedianOf(int runs, Func<Sample> run)
    {
        var samples = Enumerable.Range(0, runs).Select(_ => run()).ToList();
        return new Sample(Compare.Median(samples.Select(s => s.FirstMs)), Compare.Median(samples.Select(s => s.FirstCpuMs)),
            Compare.Median(samples.Select(s => s.WarmMs)), Compare.Median(samples.Select(s => s.FirstFaults)), Compare.Median(samples.Select(s => s.TouchNsPerPage)));
    }

    private static Sample Child(string dir, long keys, TextWriter log)
    {
        var (file, prefix) = Compare.SelfCommand();
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in new[] { "reopen-one", "--dir", dir, "--keys", keys.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stderr = child.StandardError.ReadToEndAsync();
        var stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith("reopen ", StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
            throw new InvalidOperationException($"reopen child failed (exit {child.ExitCode}): {stderr.Result.Trim()}");
        var parts = line.Split(' ');
        log.WriteLine("  " + line.Trim());
        return new Sample(double.Parse(parts[1], CultureInfo.InvariantCulture), double.Parse(parts[2], CultureInfo.InvariantCulture),
            double.Parse(parts[3], CultureInfo.InvariantCulture), double.Parse(parts[4], CultureInfo.InvariantCulture), double.Parse(parts[5], CultureInfo.InvariantCulture));
    }

    /// <summary>The child: opens the store twice, then probes first-touch cost; prints
    /// "reopen FIRST_MS FIRST_CPU_MS WARM_MS FIRST_FAULTS TOUCH_NS_PER_PAGE".</summary>
    public static int RunOne(Args args)
    {
        var dir = args.OptionalString("dir") ?? throw new ArgumentException("--dir is required");
        var keys = args.Long("keys", 1, 1, 1L << 40);
        var faults = MinorFaults();
        var first = OpenOnce(dir, keys);
        faults = MinorFaults() - faults;
        GC.Collect();
        var warm = OpenOnce(dir, keys);
        var touch = FirstTouchNsPerPage();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"reopen {first.Wall:F1} {first.Cpu:F1} {warm.Wall:F1} {faults} {touch:F0}"));
        return 0;
    }

    /// <summary>Minor page faults of this process so far (Linux /proc/self/stat field 10; 0 elsewhere).</summary>
    internal static long MinorFaults()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after "pid (comm) ": state is field 3
        return long.Parse(fields[7], CultureInfo.InvariantCulture);
    }

    /// <summary>Nanoseconds per 4 KiB page to write one byte into each page of 64 MiB of memory this process never
    /// touched (a pinned, uninitialized array: the GC does not clear it, so the first write faults the page in).</summary>
    internal static double FirstTouchNsPerPage()
    {
        const int Size = 64 << 20, Page = 4096;
        var block = GC.AllocateUninitializedArray<byte>(Size, pinned: true);
        var timer = Stopwatch.StartNew();
        for (var i = Page; i < Size; i += Page) block[i] = 1;
        var ns = timer.Elapsed.TotalMilliseconds * 1e6 / (Size / Page - 1);
        GC.KeepAlive(block);
        return ns;
    }

    private static (double Wall, double Cpu) OpenOnce(string dir, long keys)
    {
        Span<byte> key = stackalloc byte[KeySpace.KeyLength];
        KeySpace.Key(keys - 1, key);
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var timer = Stopwatch.StartNew();
        using var store = BitcaskStore.Open(dir, new BitcaskOptions { ReadOnly = true });
        if (!store.ContainsKey(key)) throw new InvalidOperationException("the last key written is missing after reopen");
        var wall = timer.Elapsed.TotalMilliseconds;
        process.Refresh();
        if (store.Count != keys) throw new InvalidOperationException($"reopen found {store.Count} keys, expected {keys}");
        return (wall, (process.TotalProcessorTime - cpu).TotalMilliseconds);
    }
}
