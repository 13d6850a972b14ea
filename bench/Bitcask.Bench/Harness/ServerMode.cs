using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bitcask.Bench.Harness;

/// <summary>
/// Server mode: redis-benchmark (50 clients, 100-byte values, SET and GET, pipelining 1 and 16) against 'bitcask serve'
/// in Synced and Flushed mode and against redis-server with appendfsync always and everysec, in the same run, each
/// server fresh (a new process and an empty directory) per run; medians of the runs, ratios against the Redis peer
/// measured in the same run. Each server first gets an untimed warm-up run (<c>--warmup</c> requests, 20,000 by default).
/// </summary>
public static class ServerMode
{
    private sealed record Target(string Name, Func<string, int, Process> Start);

    public static int Run(Args args, TextWriter output, TextWriter error)
    {
        var requests = args.Int("requests", 50_000, 1_000, 10_000_000);
        var runs = args.Int("runs", 3, 1, 20);
        var clients = args.Int("clients", 50, 1, 1000);
        var warmup = args.Int("warmup", 20_000, 0, 10_000_000);
        var redisServer = Find("redis-server");
        var benchmark = Find("redis-benchmark") ?? throw new InvalidOperationException("redis-benchmark is not installed (Debian package redis-tools).");
        var cli = CliDll();
        var targets = new List<Target>
        {
            new("bitcask Synced", (dir, port) => Start("dotnet", [cli, "serve", dir, "--port", port.ToString(CultureInfo.InvariantCulture), "--durability", "Synced"])),
            new("bitcask Flushed", (dir, port) => Start("dotnet", [cli, "serve", dir, "--port", port.ToString(CultureInfo.InvariantCulture), "--durability", "Flushed"])),
        };
        if (redisServer is not null)
        {
            targets.Add(new("redis always", (dir, port) => Start(redisServer, RedisArgs(dir, port, "always"))));
            targets.Add(new("redis everysec", (dir, port) => Start(redisServer, RedisArgs(dir, port, "everysec"))));
        }
        else error.WriteLine("note: redis-server is not installed; measuring bitcask only");

        var results = new Dictionary<(string Target, string Test, int Pipeline), List<double>>();
        var cpu = new Dictionary<(string Target, string Test, int Pipeline), List<double>>();
        for (var run = 0; run < runs; run++)
            foreach (var target in targets)
                foreach (var pipeline in new[] { 1, 16 })
                {
                    var dir = Path.Combine(Path.GetTempPath(), "bitcask-bench-server-" + Guid.NewGuid().ToString("N")[..8]);
                    Directory.CreateDirectory(dir);
                    var port = FreePort();
                    using var server = target.Start(dir, port);
                    try
                    {
                        WaitForPort(port, server);
                        // An untimed run first: a long-running server is warm (the JIT has optimised its hot code),
                        // which a fresh process is not for its first seconds. Redis has nothing to warm; it gets the same.
                        if (warmup > 0) Benchmark(benchmark, port, warmup, clients, pipeline);
                        var measured = Measure(server, benchmark, port, requests, clients, pipeline);
                        foreach (var (test, rps, micros) in measured)
                        {
                            (results.TryGetValue((target.Name, test, pipeline), out var list) ? list : results[(target.Name, test, pipeline)] = []).Add(rps);
                            (cpu.TryGetValue((target.Name, test, pipeline), out var c) ? c : cpu[(target.Name, test, pipeline)] = []).Add(micros);
                        }
                        error.WriteLine($"run {run + 1}/{runs} {target.Name} P{pipeline}: {string.Join(", ", measured.Select(m => $"{m.Test} {m.Rps:N0}/s {m.CpuMicros:0.0} µs CPU"))} (load {LoadAverage()})");
                    }
                    finally
                    {
                        Stop(server);
                        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
                    }
                }

        output.WriteLine($"redis-benchmark -c {clients} -d 100 -n {requests} after an untimed warm-up of {warmup} requests, requests per second, median of {runs} runs (load average at the end: {LoadAverage()})");
        output.WriteLine();
        output.WriteLine("| test | " + string.Join(" | ", targets.Select(t => t.Name)) + (redisServer is null ? "" : " | Synced ÷ always | Flushed ÷ everysec") + " |");
        output.WriteLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", targets.Count + (redisServer is null ? 0 : 2))));
        foreach (var pipeline in new[] { 1, 16 })
            foreach (var test in new[] { "SET", "GET" })
            {
                double Median(string target) => results.TryGetValue((target, test, pipeline), out var l) ? MedianOf(l) : double.NaN;
                var row = $"| {test} P{pipeline} | " + string.Join(" | ", targets.Select(t => Median(t.Name).ToString("N0", CultureInfo.InvariantCulture)));
                if (redisServer is not null)
                    row += $" | {Median("bitcask Synced") / Median("redis always"):0.00}× | {Median("bitcask Flushed") / Median("redis everysec"):0.00}×";
                output.WriteLine(row + " |");
            }
        output.WriteLine();
        output.WriteLine($"Server CPU time (utime + stime) per request in µs, median of {runs} runs (lower is better; ratios: Redis ÷ bitcask, so ≥ 1 means bitcask costs no more)");
        output.WriteLine();
        output.WriteLine("| test | " + string.Join(" | ", targets.Select(t => t.Name)) + (redisServer is null ? "" : " | always ÷ Synced | everysec ÷ Flushed") + " |");
        output.WriteLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", targets.Count + (redisServer is null ? 0 : 2))));
        foreach (var pipeline in new[] { 1, 16 })
            foreach (var test in new[] { "SET", "GET" })
            {
                double Median(string target) => cpu.TryGetValue((target, test, pipeline), out var l) ? MedianOf(l) : double.NaN;
                var row = $"| {test} P{pipeline} | " + string.Join(" | ", targets.Select(t => Median(t.Name).ToString("0.0", CultureInfo.InvariantCulture)));
                if (redisServer is not null)
                    row += $" | {Median("redis always") / Median("bitcask Synced"):0.00}× | {Median("redis everysec") / Median("bitcask Flushed"):0.00}×";
                output.WriteLine(row + " |");
            }
        return 0;
    }

    private static string[] RedisArgs(string dir, int port, string fsync) =>
        ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", fsync, "--daemonize", "no"];

    /// <summary>SET then GET, each a redis-benchmark run of its own so that the server's CPU time (utime + stime, from
    /// /proc) is read around each: requests per second and the server's CPU microseconds per request.</summary>
    private static List<(string Test, double Rps, double CpuMicros)> Measure(Process server, string benchmark, int port, int requests, int clients, int pipeline)
    {
        var results = new List<(string, double, double)>();
        foreach (var test in new[] { "set", "get" })
        {
            server.Refresh();
            var before = server.TotalProcessorTime;
            var (name, rps) = Benchmark(benchmark, port, requests, clients, pipeline, test).Single();
            server.Refresh();
            results.Add((name, rps, (server.TotalProcessorTime - before).TotalMicroseconds / requests));
        }
        return results;
    }

    private static List<(string Test, double Rps)> Benchmark(string benchmark, int port, int requests, int clients, int pipeline, string tests = "set,get")
    {
        var psi = new ProcessStartInfo(benchmark) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-p", port.ToString(CultureInfo.InvariantCulture), "-t", tests, "-n", requests.ToString(CultureInfo.InvariantCulture),
                     "-c", clients.ToString(CultureInfo.InvariantCulture), "-d", "100", "-P", pipeline.ToString(CultureInfo.InvariantCulture), "-r", "100000", "--csv" })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var text = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(600_000)) process.Kill();
        var results = new List<(string, double)>();
        foreach (var line in text.Split('\n'))
        {
            var fields = line.Trim().Split(',').Select(f => f.Trim('"')).ToArray();
            if (fields.Length >= 2 && fields[0] is "SET" or "GET" && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var rps))
                results.Add((fields[0], rps));
        }
        if (results.Count != tests.Split(',').Length) throw new InvalidOperationException($"redis-benchmark gave no figures for {tests}: {text} {stderr.Result}");
        return results;
    }

    internal static Process Start(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    internal static void Stop(Process process)
    {
        if (process.HasExited) return;
        Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        if (!process.WaitForExit(30_000)) process.Kill(entireProcessTree: true);
    }

    internal static void WaitForPort(int port, Process server)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !server.HasExited)
            {
                Thread.Sleep(50);
            }
        }
    }

    internal static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    internal static double MedianOf(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    internal static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; } catch (IOException) { return "?"; }
    }

    internal static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    internal static string CliDll()
    {
        var baseDir = AppContext.BaseDirectory.TrimEnd('/');
        var config = new DirectoryInfo(baseDir).Parent!.Name;
        var dll = Path.GetFullPath(Path.Combine(baseDir, "../../../../../tools/Bitcask.Cli/bin", config, "net10.0/Bitcask.Cli.dll"));
        if (!File.Exists(dll)) throw new InvalidOperationException($"the CLI is not built at {dll} (dotnet build tools/Bitcask.Cli -c {config})");
        return dll;
    }
}
