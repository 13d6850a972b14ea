using System.Net;
using System.Net.Sockets;
using Bitcask.Replication;

namespace Bitcask.Replication.Tests;

/// <summary>Three (or more) nodes on 127.0.0.1 in this process, each with its own store and log directory.</summary>
internal sealed class Cluster : IAsyncDisposable
{
    internal static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "bitcask-raft-" + Guid.NewGuid().ToString("N"));
    internal readonly IPEndPoint[] EndPoints;
    internal readonly ReplicatedStore?[] Nodes;
    /// <summary>The static configuration every node starts with (a subset when a test adds the rest later).</summary>
    internal IReadOnlyList<IPEndPoint> Members;
    private readonly long _snapshotInterval;
    private readonly TimeSpan _operationTimeout;

    private Cluster(int size, long snapshotInterval, TimeSpan operationTimeout)
    {
        _snapshotInterval = snapshotInterval;
        _operationTimeout = operationTimeout;
        EndPoints = Enumerable.Range(0, size).Select(_ => new IPEndPoint(IPAddress.Loopback, FreePort())).ToArray();
        Nodes = new ReplicatedStore?[size];
        Members = EndPoints;
    }

    /// <summary>Changes a node's options before it starts (the RESP cluster adds its metadata).</summary>
    internal Func<int, ReplicationOptions, ReplicationOptions>? Configure;

    /// <summary>A cluster with no node started yet.</summary>
    internal static Task<Cluster> CreateAsync(int size = 3, long snapshotInterval = 10_000, TimeSpan? operationTimeout = null) =>
        Task.FromResult(new Cluster(size, snapshotInterval, operationTimeout ?? TimeSpan.FromSeconds(15)));

    internal static async Task<Cluster> StartAsync(int size = 3, long snapshotInterval = 10_000, TimeSpan? operationTimeout = null, int initial = 0)
    {
        var c = new Cluster(size, snapshotInterval, operationTimeout ?? TimeSpan.FromSeconds(15));
        if (initial > 0) c.Members = c.EndPoints[..initial];
        await Task.WhenAll(Enumerable.Range(0, initial > 0 ? initial : size).Select(c.StartNodeAsync));
        await c.WaitForLeaderAsync();
        return c;
    }

    internal ReplicationOptions Options(int i, IReadOnlyList<IPEndPoint>? members = null) => new()
    {
        NodeEndPoint = EndPoints[i],
        Members = members ?? Members,
        StoreDirectory = StoreDir(i),
        LogDirectory = LogDir(i),
        SnapshotInterval = _snapshotInterval,
        OperationTimeout = _operationTimeout,
        // Generous timeouts: the suite runs beside other test projects on a loaded 2-core machine, where a
        // 300 ms election timeout can expire while a healthy leader's heartbeat waits for a CPU.
        LowerElectionTimeout = 800,
        UpperElectionTimeout = 1600,
    };

    internal string StoreDir(int i) => Path.Combine(_root, $"n{i}", "store");
    internal string LogDir(int i) => Path.Combine(_root, $"n{i}", "raft");

    internal async Task StartNodeAsync(int i) =>
        Nodes[i] = await ReplicatedStore.StartAsync(Configure is null ? Options(i) : Configure(i, Options(i)));

    internal async Task StopNodeAsync(int i)
    {
        if (Nodes[i] is { } n)
        {
            Nodes[i] = null;
            await n.DisposeAsync();
        }
    }

    internal ReplicatedStore Node(int i) => Nodes[i] ?? throw new InvalidOperationException($"node {i} is stopped");

    internal IEnumerable<int> Running => Enumerable.Range(0, Nodes.Length).Where(i => Nodes[i] is not null);

    /// <summary>Waits until exactly one running node leads and every running node agrees on it.</summary>
    internal async Task<int> WaitForLeaderAsync()
    {
        var found = -1;
        await Eventually(() =>
        {
            var leaders = Running.Where(i => Node(i).IsLeader).ToArray();
            if (leaders.Length != 1) return false;
            var leader = EndPoints[leaders[0]];
            found = leaders[0];
            return Running.All(i => Equals(Node(i).Status.Leader, leader));
        }, "a single agreed leader");
        return found;
    }

    internal int Leader() => Running.Single(i => Node(i).IsLeader);
    internal int Follower() => Running.First(i => !Node(i).IsLeader);

    internal static async Task Eventually(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"gave up waiting for {what}");
            await Task.Delay(25);
        }
    }

    /// <summary>A loopback port to listen on (<see cref="Bitcask.Testing.TestPorts"/>).</summary>
    private static int FreePort() => Bitcask.Testing.TestPorts.Free();

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Running.ToArray().Select(i => StopNodeAsync(i)));
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
