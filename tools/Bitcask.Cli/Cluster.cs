using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Bitcask.Replication;
using Bitcask.Server;
using Microsoft.Extensions.Logging;

namespace Bitcask.Cli;

// `bitcask serve DIR --cluster-id ...` (one node of a Raft cluster) and `bitcask cluster status|add|remove`
// (README, "Cluster"; /work/briefs/cluster-contract.md is the contract the fault tests rely on).
internal static partial class Commands
{
    /// <summary>The cluster flags of <c>bitcask serve</c>.</summary>
    private sealed class ClusterFlags
    {
        public readonly Option<string?> ClusterId = new("--cluster-id") { Description = "Run as one node of this Raft cluster (DIR then holds store/ and raft/). Without it the server is standalone.", HelpName = "ID" };
        public readonly Option<string?> Node = new("--node") { Description = "This node's Raft address ip:port: its identity in the membership and where the other nodes connect.", HelpName = "IP:PORT" };
        public readonly Option<string?> Peers = new("--peers") { Description = "The other members of the initial configuration, comma-separated ip:port (used only the first time the node starts; DIR/raft/members holds the membership from then on).", HelpName = "IP:PORT,..." };
        public readonly Option<string?> NodeListen = new("--node-listen") { Description = "Where the Raft listener binds (default: --node), when a proxy or NAT sits at --node.", HelpName = "IP:PORT" };
        public readonly Option<string?> ElectionTimeout = new("--election-timeout") { Description = "Randomized election timeout in ms, lower-upper (default 300-600).", HelpName = "MS-MS" };
        public readonly Option<double> OperationTimeout = new("--operation-timeout") { Description = "Seconds a write or a read barrier may wait for a leader and a majority before the client gets -CLUSTERDOWN.", DefaultValueFactory = _ => 5 };
        public readonly Option<long?> SnapshotInterval = new("--snapshot-interval") { Description = "Take a snapshot (a store backup) every N applied entries (default 10000); the Raft log is truncated below it.", HelpName = "N" };
        public readonly Option<bool> Join = new("--join") { Description = "Start with no membership and wait to be added with 'bitcask cluster add'." };

        public IEnumerable<Option> All => [ClusterId, Node, Peers, NodeListen, ElectionTimeout, OperationTimeout, SnapshotInterval, Join];
    }

    private static IPEndPoint ParseEndPoint(string? text, string option)
    {
        if (text is null || !IPEndPoint.TryParse(text.Trim(), out var ep) || ep.Port == 0)
            throw new CliError($"{option} '{text}' is not an ip:port address (example: 127.0.0.1:7001)");
        return ep;
    }

    /// <summary>Starts the node and its RESP server; returns the exit code after SIGTERM/SIGINT.</summary>
    private static int ServeCluster(CliContext c, ParseResult r, ClusterFlags f, string dir, BitcaskServerOptions serverOptions, Durability durability)
    {
        var clusterId = r.GetValue(f.ClusterId)!;
        var node = ParseEndPoint(r.GetValue(f.Node) ?? throw new CliError("--cluster-id needs --node ip:port (this node's Raft address)"), "--node");
        var join = r.GetValue(f.Join);
        var peers = (r.GetValue(f.Peers) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => ParseEndPoint(p, "--peers")).ToList();
        if (join && peers.Count > 0) throw new CliError("--join starts a node with no membership; leave out --peers (the leader sends the configuration when the node is added)");
        if (peers.Contains(node)) peers.Remove(node);
        var listen = r.GetValue(f.NodeListen) is { } l ? ParseEndPoint(l, "--node-listen") : null;
        var (lower, upper) = (300, 600);
        if (r.GetValue(f.ElectionTimeout) is { } et)
        {
            var parts = et.Split('-');
            if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out lower) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out upper)
                || lower < 10 || upper <= lower)
                throw new CliError($"--election-timeout '{et}' must be lower-upper in ms with 10 <= lower < upper (example: 150-300)");
        }
        var operationTimeout = r.GetValue(f.OperationTimeout);
        if (operationTimeout is <= 0 or > 3600) throw new CliError("--operation-timeout must be between 0 and 3600 seconds");
        var snapshotInterval = r.GetValue(f.SnapshotInterval) ?? 10_000;
        if (snapshotInterval < 2) throw new CliError("--snapshot-interval must be at least 2 entries");

        var root = Path.GetFullPath(dir);
        if (File.Exists(root)) throw new CliError($"{root} is a file; a cluster node needs a directory (it holds store/ and raft/)");
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any()
            && !Directory.Exists(Path.Combine(root, "store")) && !Directory.Exists(Path.Combine(root, "raft")))
            throw new CliError($"{root} is not empty and is not a cluster node's directory (no store/ or raft/ in it); give an empty or new directory");
        var raftDir = Path.Combine(root, "raft");
        var idFile = Path.Combine(raftDir, "cluster-id");
        if (File.Exists(idFile) && File.ReadAllText(idFile).Trim() is var recorded && recorded != clusterId)
            throw new CliError($"{root} belongs to cluster '{recorded}', not '{clusterId}' (start it with --cluster-id {recorded}, or give an empty directory)");

        // The port goes into the member metadata before the server listens, so 0 is resolved to a free port first.
        var port = serverOptions.Port != 0 ? serverOptions.Port : FreePort(serverOptions.BindAddress);
        serverOptions = serverOptions with { Port = port, ClusterId = clusterId };
        var announce = serverOptions.BindAddress.Equals(IPAddress.Any) || serverOptions.BindAddress.Equals(IPAddress.IPv6Any) ? node.Address : serverOptions.BindAddress;

        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
            .SetMinimumLevel(LogLevel.Information).AddFilter("DotNext", LogLevel.Warning));
        var options = new ReplicationOptions
        {
            NodeEndPoint = node,
            ListenEndPoint = listen,
            Members = join ? [] : [node, .. peers],
            StoreDirectory = Path.Combine(root, "store"),
            LogDirectory = raftDir,
            StoreOptions = new BitcaskOptions { Durability = durability, LoggerFactory = loggerFactory },
            LowerElectionTimeout = lower,
            UpperElectionTimeout = upper,
            OperationTimeout = TimeSpan.FromSeconds(operationTimeout),
            SnapshotInterval = snapshotInterval,
            ClusterId = clusterId,
            Metadata = new Dictionary<string, string> { [ReplicatedStore.ClientAddressMetadataKey] = new IPEndPoint(announce, port).ToString() },
            LoggerFactory = loggerFactory,
        };
        try
        {
            return RunClusterNode(c, options, serverOptions, loggerFactory).GetAwaiter().GetResult();
        }
        catch (ClusterIdMismatchException e)
        {
            throw new CliError($"{root} belongs to cluster '{e.RecordedId}', not '{e.GivenId}' (start it with --cluster-id {e.RecordedId}, or give an empty directory)");
        }
        catch (SocketException e)
        {
            throw new CliError($"cannot listen: {e.Message}");
        }
    }

    private static int FreePort(IPAddress address)
    {
        using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static async Task<int> RunClusterNode(CliContext c, ReplicationOptions options, BitcaskServerOptions serverOptions, ILoggerFactory loggerFactory)
    {
        await using var node = await ReplicatedStore.StartAsync(options).ConfigureAwait(false);
        await using var server = new BitcaskServer(node, serverOptions, loggerFactory);
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        await server.StartAsync().ConfigureAwait(false);
        var keys = node.ReadLocal(s => s.Count - s.Keys("\0raft:"u8.ToArray()).Count()); // less the replication layer's own keys
        c.Out.WriteLine($"Ready to accept connections on {server.EndPoint} (durability {options.StoreOptions!.Durability}, " +
            $"{keys} keys, cluster {options.ClusterId} node {options.NodeEndPoint})");
        c.Out.Flush();
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        c.Out.WriteLine("Shutting down: finishing commands in flight, leaving the Raft cluster, syncing");
        c.Out.Flush();
        await server.StopAsync().ConfigureAwait(false);
        await node.DisposeAsync().ConfigureAwait(false);
        c.Out.WriteLine("Stopped; every acknowledged write is on disk");
        c.Out.Flush();
        return Program.Ok;
    }

    // ------------------------------------------------------------------ bitcask cluster

    private static Command Cluster(CliContext c)
    {
        var server = new Option<string>("--server") { Description = "A node's RESP address ip:port.", Required = true, HelpName = "IP:PORT" };
        var passwordFile = new Option<string?>("--requirepass-file") { Description = $"File whose first line is the nodes' password (or set {PasswordVariable}).", HelpName = "FILE" };
        var digest = new Option<bool>("--digest") { Description = "Also print each node's keyspace digest (equal on nodes at the same applied index)." };
        var status = new Command("status", Help(
            "Ask every member the node knows of for its Raft state: node, RESP address, role, term, leader, commit and applied " +
            "index. Exit 0 when every member answered, 1 when one could not be reached (the others are still printed).",
            "bitcask cluster status --server 127.0.0.1:6381", "bitcask cluster status --server 127.0.0.1:6381 --digest"))
        { server, passwordFile, digest };
        status.SetAction(r => Guard(c, () => ClusterStatus(c, r.GetValue(server)!, ReadPassword(r.GetValue(passwordFile)), r.GetValue(digest))));

        Command Change(string name, string verb, string example)
        {
            var member = new Argument<string>("NODE") { Description = "The Raft address (ip:port) of the node to " + verb + "." };
            var cmd = new Command(name, Help($"{char.ToUpperInvariant(verb[0])}{verb[1..]} a node through a Raft configuration change, sent to the leader " +
                "(found through --server). " + (name == "add" ? "The node must run with --join; it catches up (snapshot, then log) before it counts. " : "") +
                "Exit 0 done, 1 refused or failed, 2 usage error.", example))
            { server, passwordFile, member };
            cmd.SetAction(r => Guard(c, () => ClusterChange(c, r.GetValue(server)!, ReadPassword(r.GetValue(passwordFile)), name.ToUpperInvariant(), r.GetValue(member)!)));
            return cmd;
        }

        return new Command("cluster", "Raft cluster administration for nodes started with 'bitcask serve --cluster-id'.")
        {
            status,
            Change("add", "add", "bitcask cluster add --server 127.0.0.1:6381 127.0.0.1:7004"),
            Change("remove", "remove", "bitcask cluster remove --server 127.0.0.1:6381 127.0.0.1:7003"),
        };
    }

    private static int ClusterStatus(CliContext c, string server, string? password, bool digest)
    {
        var first = RaftStatus(ParseEndPoint(server, "--server"), password);
        var members = ((List<object?>)first["members"]!).Cast<string>().ToList();
        var resp = ToMap((List<object?>)first["resp"]!);
        var rows = new List<string[]>();
        var unreachable = 0;
        foreach (var member in members)
        {
            var address = resp.GetValueOrDefault(member) as string;
            if (string.IsNullOrEmpty(address))
            {
                rows.Add([member, "?", "unreachable", "", "", "", "", .. digest ? new[] { "" } : []]);
                unreachable++;
                continue;
            }
            try
            {
                var ep = ParseEndPoint(address, "resp");
                var s = RaftStatus(ep, password);
                var d = digest ? ToMap((List<object?>)RespClient.Call(ep, password, "BITCASK.RAFT", "DIGEST")!) : null;
                rows.Add([member, address, (string)s["role"]!, Str(s["term"]), (string)s["leader"]!, Str(s["commit_index"]), Str(s["applied_index"]),
                    .. d is null ? [] : new[] { $"{Str(d["applied_index"])}:{d["digest"]}" }]);
            }
            catch (Exception e) when (e is IOException or SocketException or RespErrorException or CliError)
            {
                rows.Add([member, address, "unreachable", "", "", "", "", .. digest ? new[] { "" } : []]);
                unreachable++;
            }
        }
        string[] header = ["node", "resp", "role", "term", "leader", "commit", "applied", .. digest ? new[] { "digest" } : []];
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(row => row[i].Length))).ToArray();
        c.Out.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in rows) c.Out.WriteLine(string.Join("  ", row.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
        return unreachable == 0 ? Program.Ok : Program.Problems;

        static string Str(object? o) => Convert.ToString(o, CultureInfo.InvariantCulture) ?? "";
    }

    private static int ClusterChange(CliContext c, string server, string? password, string verb, string member)
    {
        ParseEndPoint(member, "NODE");
        var at = ParseEndPoint(server, "--server");
        var status = RaftStatus(at, password);
        if ((string)status["role"]! != "leader")
        {
            if (status["leader_resp"] is not string { Length: > 0 } leader)
                throw new CliError("no leader is known to " + server + " (no majority?); try again", Program.Problems);
            at = ParseEndPoint(leader, "leader");
        }
        try
        {
            RespClient.Call(at, password, "BITCASK.RAFT", verb, member);
        }
        catch (RespErrorException e)
        {
            throw new CliError($"{verb.ToLowerInvariant()} {member}: {e.Message}", Program.Problems);
        }
        c.Out.WriteLine($"{(verb == "ADD" ? "Added" : "Removed")} {member} (through the leader at {at})");
        return Program.Ok;
    }

    private static Dictionary<string, object?> RaftStatus(IPEndPoint at, string? password)
    {
        try
        {
            return ToMap((List<object?>)RespClient.Call(at, password, "BITCASK.RAFT", "STATUS")!);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new CliError($"cannot reach {at}: {e.Message}", Program.Problems);
        }
        catch (RespErrorException e)
        {
            throw new CliError($"{at}: {e.Message}", Program.Problems);
        }
    }

    private static Dictionary<string, object?> ToMap(List<object?> flat)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < flat.Count; i += 2) map[(string)flat[i]!] = flat[i + 1];
        return map;
    }

    internal sealed class RespErrorException(string message) : Exception(message);

    /// <summary>The few RESP2 calls the admin commands make (one connection per call): a command as an array of bulk
    /// strings, a reply as string, long, list or null; an error reply throws <see cref="RespErrorException"/>.</summary>
    internal static class RespClient
    {
        public static object? Call(IPEndPoint at, string? password, params string[] command)
        {
            using var client = new TcpClient();
            client.ReceiveTimeout = client.SendTimeout = 30_000;
            client.Connect(at);
            using var stream = client.GetStream();
            using var reader = new BufferedStream(stream);
            if (password is not null)
            {
                Send(stream, "AUTH", password);
                Read(reader);
            }
            Send(stream, command);
            return Read(reader);
        }

        private static void Send(Stream stream, params string[] args)
        {
            var text = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
            foreach (var a in args) text.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
            stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
        }

        private static object? Read(Stream s)
        {
            var line = ReadLine(s);
            if (line.Length == 0) throw new IOException("empty reply line");
            var rest = line[1..];
            switch (line[0])
            {
                case '+': return rest;
                case '-': throw new RespErrorException(rest);
                case ':': return long.Parse(rest, CultureInfo.InvariantCulture);
                case '$':
                    var n = int.Parse(rest, CultureInfo.InvariantCulture);
                    if (n < 0) return null;
                    var bytes = new byte[n + 2];
                    s.ReadExactly(bytes);
                    return Encoding.UTF8.GetString(bytes, 0, n);
                case '*':
                    var count = int.Parse(rest, CultureInfo.InvariantCulture);
                    if (count < 0) return null;
                    var list = new List<object?>(count);
                    for (var i = 0; i < count; i++) list.Add(Read(s));
                    return list;
                default: throw new IOException($"unexpected reply '{line}'");
            }
        }

        private static string ReadLine(Stream s)
        {
            var bytes = new List<byte>();
            while (true)
            {
                var b = s.ReadByte();
                if (b < 0) throw new EndOfStreamException("the server closed the connection");
                if (b == '\n' && bytes.Count > 0 && bytes[^1] == '\r') return Encoding.UTF8.GetString([.. bytes[..^1]]);
                bytes.Add((byte)b);
            }
        }
    }
}
