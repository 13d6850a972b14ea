using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Bitcask.Server;

namespace Bitcask.Replication.Tests;

/// <summary>A <see cref="Cluster"/> whose nodes each run a RESP server (BitcaskServer over the node), as
/// <c>bitcask serve --cluster-id</c> does: each node publishes its RESP address in its Raft member metadata.</summary>
internal sealed class RespCluster : IAsyncDisposable
{
    internal readonly Cluster Raft;
    internal readonly int[] Ports;
    private readonly BitcaskServer?[] _servers;

    private RespCluster(Cluster raft)
    {
        Raft = raft;
        Ports = raft.EndPoints.Select(_ => FreePort()).ToArray();
        _servers = new BitcaskServer?[raft.EndPoints.Length];
        raft.Configure = (i, o) => new ReplicationOptions
        {
            NodeEndPoint = o.NodeEndPoint, Members = i >= raft.Members.Count ? [] : o.Members, /* later nodes join */ StoreDirectory = o.StoreDirectory, LogDirectory = o.LogDirectory,
            SnapshotInterval = o.SnapshotInterval, OperationTimeout = o.OperationTimeout,
            LowerElectionTimeout = o.LowerElectionTimeout, UpperElectionTimeout = o.UpperElectionTimeout,
            ClusterId = "test",
            Metadata = new Dictionary<string, string> { [ReplicatedStore.ClientAddressMetadataKey] = $"127.0.0.1:{Ports[i]}" },
        };
    }

    internal static async Task<RespCluster> StartAsync(int size = 3, TimeSpan? operationTimeout = null, int initial = 0)
    {
        var c = new RespCluster(await Cluster.CreateAsync(size, operationTimeout: operationTimeout));
        var count = initial > 0 ? initial : size;
        if (initial > 0) c.Raft.Members = c.Raft.EndPoints[..initial];
        await Task.WhenAll(Enumerable.Range(0, count).Select(c.StartNodeAsync));
        await c.Raft.WaitForLeaderAsync();
        return c;
    }

    internal async Task StartNodeAsync(int i)
    {
        await Raft.StartNodeAsync(i);
        var server = new BitcaskServer(Raft.Node(i), new BitcaskServerOptions { Port = Ports[i], ClusterId = "test" });
        await server.StartAsync();
        _servers[i] = server;
    }

    internal async Task StopNodeAsync(int i)
    {
        if (_servers[i] is { } s)
        {
            _servers[i] = null;
            await s.StopAsync(TimeSpan.FromSeconds(2));
        }
        await Raft.StopNodeAsync(i);
    }

    internal RespConnection Connect(int i) => new(Ports[i]);

    /// <summary>Waits until every running node knows every running member's RESP address (INFO can name the master).</summary>
    internal Task WaitForAddressesAsync() => Cluster.Eventually(() => Raft.Running.All(i =>
    {
        using var conn = Connect(i);
        var status = conn.Map("BITCASK.RAFT", "STATUS");
        var resp = ToMap((List<object?>)status["resp"]!);
        return Raft.Running.All(j => resp.GetValueOrDefault(Raft.EndPoints[j].ToString()) as string == $"127.0.0.1:{Ports[j]}");
    }), "every node to know every member's RESP address");

    internal static Dictionary<string, object?> ToMap(List<object?> flat)
    {
        var map = new Dictionary<string, object?>();
        for (var i = 0; i + 1 < flat.Count; i += 2) map[(string)flat[i]!] = flat[i + 1];
        return map;
    }

    /// <summary>A loopback port to listen on (<see cref="Bitcask.Testing.TestPorts"/>).</summary>
    private static int FreePort() => Bitcask.Testing.TestPorts.Free();

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < _servers.Length; i++)
            if (_servers[i] is { } s) await s.StopAsync(TimeSpan.FromSeconds(2));
        await Raft.DisposeAsync();
    }
}

/// <summary>One RESP2 connection for tests: a command as bulk strings; a reply as string, long, list or null; an error
/// reply comes back as <see cref="RespError"/>.</summary>
internal sealed class RespConnection : IDisposable
{
    private readonly TcpClient _client = new();
    private readonly BufferedStream _in;
    private readonly NetworkStream _out;

    internal RespConnection(int port)
    {
        _client.Connect(IPAddress.Loopback, port);
        _client.ReceiveTimeout = 60_000;
        _out = _client.GetStream();
        _in = new BufferedStream(_out);
    }

    internal sealed record RespError(string Message);

    internal object? Call(params string[] args)
    {
        var text = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (var a in args) text.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        _out.Write(Encoding.UTF8.GetBytes(text.ToString()));
        return Read();
    }

    /// <summary>A call whose reply must not be an error.</summary>
    internal object? Ok(params string[] args)
    {
        var reply = Call(args);
        if (reply is RespError e) throw new InvalidOperationException($"{string.Join(' ', args)}: {e.Message}");
        return reply;
    }

    internal Dictionary<string, object?> Map(params string[] args) => RespCluster.ToMap((List<object?>)Ok(args)!);

    private object? Read()
    {
        var line = ReadLine();
        var rest = line[1..];
        switch (line[0])
        {
            case '+': return rest;
            case '-': return new RespError(rest);
            case ':': return long.Parse(rest, CultureInfo.InvariantCulture);
            case '$':
                var n = int.Parse(rest, CultureInfo.InvariantCulture);
                if (n < 0) return null;
                var bytes = new byte[n + 2];
                _in.ReadExactly(bytes);
                return Encoding.UTF8.GetString(bytes, 0, n);
            case '*':
                var count = int.Parse(rest, CultureInfo.InvariantCulture);
                if (count < 0) return null;
                var list = new List<object?>(count);
                for (var i = 0; i < count; i++) list.Add(Read());
                return list;
            case '=':
                var len = int.Parse(rest, CultureInfo.InvariantCulture);
                var verbatim = new byte[len + 2];
                _in.ReadExactly(verbatim);
                return Encoding.UTF8.GetString(verbatim, 4, len - 4);
            default: throw new IOException($"unexpected reply '{line}'");
        }
    }

    private string ReadLine()
    {
        var bytes = new List<byte>();
        while (true)
        {
            var b = _in.ReadByte();
            if (b < 0) throw new EndOfStreamException("the server closed the connection");
            if (b == '\n' && bytes.Count > 0 && bytes[^1] == '\r') return Encoding.UTF8.GetString([.. bytes[..^1]]);
            bytes.Add((byte)b);
        }
    }

    public void Dispose()
    {
        _in.Dispose();
        _client.Dispose();
    }
}
