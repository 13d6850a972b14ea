using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace Bitcask.Cluster.Tests.Infrastructure;

/// <summary>
/// A loopback cluster of 'bitcask serve' node processes (issue 13's contract: /work/briefs/cluster-contract.md in the
/// project notes): node i's identity and Raft address is its <see cref="LinkProxy"/> port, its Raft listener a port of
/// its own behind the proxy, its RESP port fixed for the life of the harness (clients reconnect to the same address
/// after a restart), its DIR a temporary folder. Kill -9, SIGTERM, restart, wipe, partition through the proxy; the
/// leader, status and content digest over RESP. Dispose kills every node and deletes the folders. Not thread-safe.
/// </summary>
internal sealed class ClusterHarness : IDisposable
{
    internal sealed class Node(int index, int listenPort, int respPort, string directory)
    {
        public int Index { get; } = index;
        public int ListenPort { get; } = listenPort;
        public int RespPort { get; } = respPort;
        public string Directory { get; } = directory;
        public ServeProcess? Process { get; set; }
        public bool Up => Process is { HasExited: false };
    }

    private readonly ITestOutputHelper? _log;
    private readonly string[] _extraArguments;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public ClusterHarness(string clusterId, ITestOutputHelper? log, int size = 3, params string[] extraArguments)
        : this(clusterId, log, size, useProxy: true, extraArguments)
    {
    }

    /// <param name="useProxy">false: no proxy, each node's --node is its own listener (tests that need no partition).</param>
    public ClusterHarness(string clusterId, ITestOutputHelper? log, int size, bool useProxy, params string[] extraArguments)
    {
        // The proxy's forwarding runs on the thread pool; the test's own blocking calls must not starve it.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
        ClusterId = clusterId;
        UsesProxy = useProxy;
        _log = log;
        _extraArguments = extraArguments;
        Nodes = [.. Enumerable.Range(0, size).Select(i => new Node(i, TestEnvironment.FreePort(), TestEnvironment.FreePort(), TestEnvironment.NewDirectory($"node{i}")))];
        Proxy = new LinkProxy(size, i => Nodes[i].ListenPort, i => Nodes[i].Process is { HasExited: false } p ? p.Pid : null);
    }

    public string ClusterId { get; }
    public bool UsesProxy { get; }
    public IReadOnlyList<Node> Nodes { get; }
    public LinkProxy Proxy { get; }
    public IReadOnlyList<int> RespPorts => [.. Nodes.Select(n => n.RespPort)];

    /// <summary>Node i's identity: its address in the membership (the proxy in front of it).</summary>
    public string Address(int i) => $"127.0.0.1:{(UsesProxy ? Proxy.ProxyPort(i) : Nodes[i].ListenPort)}";

    public void Log(string message) => _log?.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:0.000}] {message}");

    public IEnumerable<string> ArgumentsOf(int i)
    {
        var node = Nodes[i];
        return [node.Directory, "--port", node.RespPort.ToString(CultureInfo.InvariantCulture), "--durability", "Synced",
            "--cluster-id", ClusterId, "--node", Address(i),
            "--peers", string.Join(',', Enumerable.Range(0, Nodes.Count).Where(j => j != i).Select(Address)),
            .. (UsesProxy ? (string[])["--node-listen", $"127.0.0.1:{node.ListenPort}"] : []), .. _extraArguments];
    }

    /// <summary>Starts every node that is down and waits for their Ready lines.</summary>
    public void StartAll()
    {
        foreach (var node in Nodes.Where(n => !n.Up)) Launch(node.Index);
        foreach (var node in Nodes) node.Process!.WaitReady();
        Log("all nodes ready");
    }

    /// <summary>Starts node i (again) and waits for its Ready line.</summary>
    public void Start(int i)
    {
        Launch(i);
        Nodes[i].Process!.WaitReady();
        Log($"node {i} ready");
    }

    private void Launch(int i)
    {
        var node = Nodes[i];
        node.Process?.Dispose();
        node.Process = new ServeProcess(ArgumentsOf(i), $"node {i} ({Address(i)}, RESP {node.RespPort})");
    }

    public void Kill9(int i)
    {
        Nodes[i].Process?.Kill9();
        Log($"node {i} killed (SIGKILL)");
    }

    /// <summary>SIGTERM; returns the exit code.</summary>
    public int Terminate(int i) => Nodes[i].Process!.Terminate();

    /// <summary>Deletes node i's DIR (a wiped disk); the node must be down.</summary>
    public void Wipe(int i)
    {
        if (Nodes[i].Up) throw new InvalidOperationException($"node {i} still runs");
        Directory.Delete(Nodes[i].Directory, recursive: true);
        Directory.CreateDirectory(Nodes[i].Directory);
        Log($"node {i} DIR wiped");
    }

    /// <summary>One command on node i (a fresh connection).</summary>
    public object? Call(int i, params object[] command)
    {
        using var connection = RespConnection.Open(Nodes[i].RespPort, TimeSpan.FromSeconds(10));
        return connection.Call(command);
    }

    /// <summary>INFO replication of node i as field → value.</summary>
    public Dictionary<string, string> Replication(int i)
    {
        var reply = Call(i, "INFO", "replication");
        if (reply is not string text) throw new InvalidDataException($"INFO replication on node {i} answered {reply}");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith('#') && l.Contains(':'))
            .Select(l => l.Split(':', 2)).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.First()[1]);
    }

    /// <summary>BITCASK.RAFT STATUS of node i as field → value (nested lists joined with commas).</summary>
    public Dictionary<string, string> Status(int i) => Fields(i, Call(i, "BITCASK.RAFT", "STATUS"), "BITCASK.RAFT STATUS");

    /// <summary>A RESP3 map or a RESP2 flat array of pairs as field → text.</summary>
    private static Dictionary<string, string> Fields(int i, object? reply, string command)
    {
        var pairs = reply switch
        {
            RespMap map => map.Pairs.Select(p => (Key: Text(p.Key), Value: Text(p.Value))).ToList(),
            List<object?> flat => [.. Enumerable.Range(0, flat.Count / 2).Select(k => (Key: Text(flat[2 * k]), Value: Text(flat[2 * k + 1])))],
            _ => throw new InvalidDataException($"{command} on node {i} answered {reply}"),
        };
        return pairs.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.First().Value);
    }

    private static string Text(object? value) => value switch
    {
        null => "",
        List<object?> list => string.Join(",", list.Select(Text)),
        RespSimple s => s.Text,
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>BITCASK.RAFT DIGEST of node i: its applied index and a hash of its user keyspace at that index.</summary>
    public (long Applied, string Digest) Digest(int i)
    {
        var fields = Fields(i, Call(i, "BITCASK.RAFT", "DIGEST"), "BITCASK.RAFT DIGEST");
        return (long.Parse(fields["applied_index"], CultureInfo.InvariantCulture), fields["digest"]);
    }

    /// <summary>The node that says role:master, once a majority of the running nodes agree it is the leader.</summary>
    public int WaitForLeader(TimeSpan? timeout = null, int? not = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        string last = "";
        while (deadline.Elapsed < limit)
        {
            var views = new List<(int Node, string Role, string Leader)>();
            foreach (var node in Nodes.Where(n => n.Up))
            {
                try
                {
                    var info = Replication(node.Index);
                    views.Add((node.Index, info.GetValueOrDefault("role", "?"), info.GetValueOrDefault("raft_leader", "")));
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidDataException) { }
            }
            last = string.Join("; ", views.Select(v => $"node {v.Node}: {v.Role}, leader {v.Leader}"));
            var masters = views.Where(v => v.Role == "master" && v.Node != not).ToList();
            if (masters.Count == 1)
            {
                var leader = masters[0].Node;
                if (views.Count(v => Names(v.Leader, leader)) * 2 > Nodes.Count)
                {
                    Log($"leader: node {leader} (waited {deadline.ElapsedMilliseconds} ms)");
                    return leader;
                }
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"no leader agreed by a majority within {limit.TotalSeconds} s: {last}");
    }

    /// <summary>Whether <paramref name="leader"/> (as INFO's raft_leader shows it) names node i: its Raft address, or
    /// its RESP address.</summary>
    public bool Names(string leader, int i) => leader == Address(i) || leader == $"127.0.0.1:{Nodes[i].RespPort}";

    /// <summary>Waits until every running node reports the same applied index and the same digest.</summary>
    public string WaitForConvergence(TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        var last = "";
        while (deadline.Elapsed < limit)
        {
            try
            {
                var views = Nodes.Where(n => n.Up).Select(n => (n.Index, Value: Digest(n.Index))).Select(v => (v.Index, v.Value.Applied, v.Value.Digest)).ToList();
                last = string.Join("; ", views.Select(v => $"node {v.Index}: applied {v.Applied}, digest {v.Digest}"));
                if (views.Select(v => v.Applied).Distinct().Count() == 1 && views.Select(v => v.Digest).Distinct().Count() == 1 && views.Count == Nodes.Count(n => n.Up))
                {
                    Log("converged: " + last);
                    return views[0].Digest;
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidDataException or InvalidOperationException)
            {
                last = e.Message;
            }
            Thread.Sleep(200);
        }
        throw new TimeoutException($"the nodes did not converge within {limit.TotalSeconds} s: {last}");
    }

    public void Dispose()
    {
        foreach (var node in Nodes) node.Process?.Dispose();
        Proxy.Dispose();
        foreach (var node in Nodes) TestEnvironment.DeleteDirectory(node.Directory);
    }

    /// <summary>The last output of every node (for failure messages).</summary>
    public string RecentOutput() =>
        string.Join("\n", Nodes.Select(n => $"--- node {n.Index} ({(n.Up ? "up" : "down")}):\n{n.Process?.RecentOutput()}"));
}
