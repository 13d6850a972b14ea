using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Bitcask.Cli;

internal static partial class Commands
{
    private static Command Bench(CliContext c)
    {
        var dir = new Argument<string?>("DIR")
        {
            Description = "A missing or empty directory for the store (kept afterwards). Default: a new temporary directory, removed afterwards.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var keys = new Option<int>("--keys") { Description = "Number of keys (10 to 10000000).", DefaultValueFactory = _ => 200_000, HelpName = "N" };
        keys.Validators.Add(v => { if (v.GetValueOrDefault<int>() is < 10 or > 10_000_000) v.AddError("--keys must be between 10 and 10000000."); });
        var cmd = new Command("bench", Help(
            "A short built-in workload with a summary table: puts, random gets, overwrites, deletes, concurrent synced puts " +
            "(group commit), a compaction, and a reopen, then a check that every key reads back right.",
            "bitcask bench", "bitcask bench /tmp/bench-store --keys 1000000"))
        { dir, keys };
        cmd.SetAction(r => Guard(c, () => RunBench(c, r.GetValue(dir), r.GetValue(keys))));
        return cmd;
    }

    private sealed record Phase(string Name, long Ops, TimeSpan Time, string Note);

    private static int RunBench(CliContext c, string? requested, int n)
    {
        var temporary = requested is null;
        var path = Path.GetFullPath(requested ?? Path.Combine(Path.GetTempPath(), $"bitcask-bench-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]));
        if (File.Exists(path)) throw new CliError($"'{path}' is a file; bench needs a missing or empty directory");
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
            throw new CliError($"'{path}' is not empty; bench needs a missing or empty directory so it never touches existing data");
        var phases = new List<Phase>();
        var value = new byte[100];
        var random = new Random(12345);
        random.NextBytes(value);
        var key = new byte[12];
        static void KeyFor(byte[] key, int i)
        {
            "key:"u8.CopyTo(key);
            i.TryFormat(key.AsSpan(4), out _, "D8", CultureInfo.InvariantCulture);
        }
        var options = new BitcaskOptions { MaxSegmentBytes = 8 << 20, MaxValueBytes = 4096, CompactionEnabled = false };
        var total = 5L * n;
        var done = 0L;
        var failures = 0;
        try
        {
            ProgressBar.Run(c, "bench", progress =>
            {
                void Step(long k) { done += k; if ((done & 1023) == 0 || k > 1) progress?.Invoke(done, total); }
                using (var store = BitcaskStore.Open(path, options))
                {
                    var clock = Stopwatch.StartNew();
                    for (var i = 0; i < n; i++) { KeyFor(key, i); BitConverter.TryWriteBytes(value, i); store.Put(key, value); Step(1); }
                    phases.Add(new Phase("put (new keys)", n, clock.Elapsed, $"{value.Length}-byte values, Flushed"));

                    clock.Restart();
                    var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
                    for (var i = 0; i < n; i++)
                    {
                        var k = random.Next(n);
                        KeyFor(key, k);
                        buffer.ResetWrittenCount();
                        if (!store.TryGet(key, buffer) || BitConverter.ToInt32(buffer.WrittenSpan) != k) failures++;
                        Step(1);
                    }
                    phases.Add(new Phase("get (random)", n, clock.Elapsed, "TryGet into a reused buffer"));

                    clock.Restart();
                    var overwrites = n / 2;
                    for (var i = 0; i < overwrites; i++) { KeyFor(key, i); BitConverter.TryWriteBytes(value, -i - 1); store.Put(key, value); Step(1); }
                    phases.Add(new Phase("put (overwrite)", overwrites, clock.Elapsed, "first half of the keys"));

                    clock.Restart();
                    var deletes = n / 10;
                    for (var i = n - deletes; i < n; i++) { KeyFor(key, i); store.Delete(key); Step(1); }
                    phases.Add(new Phase("delete", deletes, clock.Elapsed, "last tenth of the keys"));
                }

                using (var store = BitcaskStore.Open(path, options with { Durability = Durability.Synced }))
                {
                    const int threads = 4;
                    var perThread = Math.Min(2000, Math.Max(1, n / 100));
                    var clock = Stopwatch.StartNew();
                    Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                    {
                        var k = new byte[16];
                        for (var i = 0; i < perThread; i++)
                        {
                            "sync:"u8.CopyTo(k);
                            (t * perThread + i).TryFormat(k.AsSpan(5), out _, "D8", CultureInfo.InvariantCulture);
                            store.Put(k.AsSpan(0, 13), value);
                        }
                    });
                    phases.Add(new Phase("put (Synced, 4 threads)", threads * perThread, clock.Elapsed, "fdatasync per group commit"));
                    Step(n / 2);

                    var before = store.GetStats();
                    clock.Restart();
                    var result = store.Compact();
                    var after = store.GetStats();
                    phases.Add(new Phase("compact", result.SegmentsIn, clock.Elapsed,
                        $"{Text.Bytes(before.TotalBytes)} -> {Text.Bytes(after.TotalBytes)}, {result.RecordsDropped:N0} records dropped"));
                    Step(n / 2);
                }

                var reopen = Stopwatch.StartNew();
                using (var store = BitcaskStore.Open(path, options with { ReadOnly = true }))
                {
                    var openTime = reopen.Elapsed;
                    var s = store.GetStats();
                    phases.Add(new Phase("reopen", store.Count, openTime, $"{s.Segments.Count} segments, {s.Segments.Count(x => x.HasHintFile)} loaded from hint files"));
                    var clock = Stopwatch.StartNew();
                    var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
                    for (var i = 0; i < n; i++)
                    {
                        KeyFor(key, i);
                        buffer.ResetWrittenCount();
                        var found = store.TryGet(key, buffer);
                        var expected = i >= n - n / 10 ? (int?)null : i < n / 2 ? -i - 1 : i;
                        if (expected is null ? found : !found || BitConverter.ToInt32(buffer.WrittenSpan) != expected) failures++;
                        Step(1);
                    }
                    phases.Add(new Phase("check every key", n, clock.Elapsed, failures == 0 ? "all values as expected" : $"{failures} WRONG"));
                }
                return 0;
            });
        }
        finally
        {
            if (temporary && Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }

        var console = TableConsole(c);
        var table = new Table().Border(TableBorder.Rounded).Title($"bitcask bench: {n:N0} keys in {Markup.Escape(temporary ? "a temporary directory" : path)}");
        table.AddColumn("phase").AddColumn(new TableColumn("ops").RightAligned()).AddColumn(new TableColumn("time").RightAligned())
            .AddColumn(new TableColumn("ops/s").RightAligned()).AddColumn("notes");
        foreach (var p in phases)
            table.AddRow(Markup.Escape(p.Name), p.Ops.ToString("N0", CultureInfo.InvariantCulture), $"{p.Time.TotalMilliseconds:F0} ms",
                p.Time.TotalSeconds > 0 ? (p.Ops / p.Time.TotalSeconds).ToString("N0", CultureInfo.InvariantCulture) : "-", Markup.Escape(p.Note));
        console.Write(table);
        if (failures > 0)
        {
            c.Err.WriteLine($"bitcask: {failures} reads returned a wrong or missing value");
            return Program.Problems;
        }
        return Program.Ok;
    }
}
