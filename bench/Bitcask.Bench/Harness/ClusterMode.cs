using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Bitcask.Bench.Harness;

/// <summary>
/// Cluster mode (issue 13): committed SET/s through redis-benchmark (100-byte values, no pipelining) with 1, 16 and 64
/// clients against the leader of a 3-node loopback cluster ('bitcask serve --cluster-id', every node Synced) and against
/// one 'bitcask serve --durability Synced' in the same run, and linearizable GET/s on the leader (each GET waits for a
/// Raft read barrier). Fresh processes and empty directories per run; medians of the runs and the cluster ÷ single
/// ratio. All nodes share this machine's cores, so only the ratios mean something.
/// </summary>
public static class ClusterMode
{
    public static int Run(Args args, TextWriter output, TextWriter error)
    {
        var runs = args.Int("runs", 3, 1, 20);
        var maxRequests = args.Int("requests", 20_000, 1_000, 10_000_000);
        var clientCounts = args.Longs("clients", [1, 16, 64], 1, 1000).Select(c => (int)c).ToArray();
        var benchmark = ServerMode.Find("redis-benchmark") ?? throw new InvalidOperationException("redis-benchmark is not installed (Debian package redis-tools).");
        var cli = ServerMode.CliDll();
        var results = new Dictionary<(string Target, string Test, int Clients), List<double>>();
        void Add(string target, string test, int clients, double rps) =>
            (results.TryGetValue((target, test, clients), out var list) ? list : results[(target, test, clients)] = []).Add(rps);
        int Requests(int clients) => Math.Min(maxRequests, Math.Max(2_000, 400 * clients));

        for (var run = 0; run < runs; run++)
        {
            // one Synced server
            var dir = NewDirectory();
            var port = ServerMode.FreePort();
            using (var single = ServerMode.Start("dotnet", [cli, "serve", dir, "--port", Text(port), "--durability", "Synced"]))
            {
                try
                {
                    ServerMode.WaitForPort(port, single);
                    foreach (var clients in clientCounts)
                    {
                        var rps = Benchmark(benchmark, port, "set", Requests(clients), clients);
                        Add("single", "SET", clients, rps);
                        error.WriteLine($"run {run + 1}/{runs} single Synced SET -c {clients}: {rps:N0}/s");
                    }
                }
                finally
                {
                    ServerMode.Stop(single);
                    Delete(dir);
                }
            }

            // a 3-node cluster
            var nodes = Enumerable.Range(0, 3).Select(_ => (Dir: NewDirectory(), Resp: ServerMode.FreePort(), Raft: ServerMode.FreePort())).ToArray();
            var processes = new List<Process>();
            try
            {
                for (var i = 0; i < 3; i++)
                {
                    var peers = string.Join(',', nodes.Where((_, j) => j != i).Select(n => $"127.0.0.1:{n.Raft}"));
                    processes.Add(ServerMode.Start("dotnet", [cli, "serve", nodes[i].Dir, "--port", Text(nodes[i].Resp), "--durability", "Synced",
                        "--cluster-id", "bench", "--node", $"127.0.0.1:{nodes[i].Raft}", "--peers", peers]));
                }
                for (var i = 0; i < 3; i++) ServerMode.WaitForPort(nodes[i].Resp, processes[i]);
                var leader = WaitForLeader(nodes.Select(n => n.Resp).ToArray());
                foreach (var clients in clientCounts)
                {
                    var rps = Benchmark(benchmark, nodes[leader].Resp, "set", Requests(clients), clients);
                    Add("cluster", "SET", clients, rps);
                    error.WriteLine($"run {run + 1}/{runs} cluster SET -c {clients} (leader node {leader}): {rps:N0}/s");
                }
                foreach (var clients in clientCounts)
                {
                    var rps = Benchmark(benchmark, nodes[leader].Resp, "get", Requests(clients) * 2, clients);
                    Add("cluster", "GET", clients, rps);
                    error.WriteLine($"run {run + 1}/{runs} cluster linearizable GET -c {clients}: {rps:N0}/s");
                }
            }
            finally
            {
                foreach (var process in processes)
                {
                    ServerMode.Stop(process);
                    process.Dispose();
                }
                foreach (var node in nodes) Delete(node.Dir);
            }
        }

        double Median(string target, string test, int clients) =>
            results.TryGetValue((target, test, clients), out var l) ? ServerMode.MedianOf(l) : double.NaN;
        output.WriteLine($"redis-benchmark -d 100 -P 1, requests per second, median of {runs} runs (load average at the end: {ServerMode.LoadAverage()})");
        output.WriteLine();
        output.WriteLine("| clients | single Synced SET/s | 3-node cluster SET/s (committed) | cluster ÷ single (median of the per-run ratios) | cluster GET/s on the leader (linearizable) |");
        output.WriteLine("| ---: | ---: | ---: | ---: | ---: |");
        foreach (var clients in clientCounts)
        {
            var single = Median("single", "SET", clients);
            var cluster = Median("cluster", "SET", clients);
            // the ratio within each run (both measured under that run's load), then the median of those
            var singles = results.GetValueOrDefault(("single", "SET", clients)) ?? [];
            var clusters = results.GetValueOrDefault(("cluster", "SET", clients)) ?? [];
            var ratio = singles.Count == clusters.Count && singles.Count > 0
                ? ServerMode.MedianOf([.. clusters.Zip(singles, (c, s) => c / s)]) : double.NaN;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {clients} | {single:N0} | {cluster:N0} | {ratio:0.00}× | {Median("cluster", "GET", clients):N0} |"));
        }
        return 0;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string NewDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "bitcask-bench-cluster-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void Delete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    private static double Benchmark(string benchmark, int port, string test, int requests, int clients)
    {
        var psi = new ProcessStartInfo(benchmark) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-p", Text(port), "-t", test, "-n", Text(requests), "-c", Text(clients), "-d", "100", "-P", "1", "-r", "100000", "--csv" })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var text = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(600_000)) process.Kill();
        foreach (var line in text.Split('\n'))
        {
            var fields = line.Trim().Split(',').Select(f => f.Trim('"')).ToArray();
            if (fields.Length >= 2 && fields[0].Equals(test, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var rps))
                return rps;
        }
        throw new InvalidOperationException($"redis-benchmark gave no {test} figure: {text} {stderr.Result}");
    }

    /// <summary>The index of the node whose INFO replication says role:master (waits up to 60 s for an election).</summary>
    private static int WaitForLeader(int[] ports)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            for (var i = 0; i < ports.Length; i++)
            {
                try
                {
                    if (InfoReplication(ports[i]).Contains("role:master", StringComparison.Ordinal)) return i;
                }
                catch (Exception e) when (e is IOException or SocketException) { }
            }
            Thread.Sleep(100);
        }
        throw new InvalidOperationException("the cluster elected no leader within 60 s");
    }

    private static string InfoReplication(int port)
    {
        using var client = new TcpClient { NoDelay = true, ReceiveTimeout = 5000 };
        client.Connect("127.0.0.1", port);
        using var stream = client.GetStream();
        stream.Write("*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"u8);
        var reply = new StringBuilder();
        var buffer = new byte[4096];
        // a bulk reply: $<length>\r\n<text>\r\n
        while (true)
        {
            var n = stream.Read(buffer);
            if (n == 0) break;
            reply.Append(Encoding.UTF8.GetString(buffer, 0, n));
            var text = reply.ToString();
            var newline = text.IndexOf("\r\n", StringComparison.Ordinal);
            if (newline > 0 && text[0] == '$' && int.TryParse(text[1..newline], CultureInfo.InvariantCulture, out var length) && text.Length >= newline + 2 + length) break;
            if (newline > 0 && text[0] == '-') break;
        }
        return reply.ToString();
    }
}
