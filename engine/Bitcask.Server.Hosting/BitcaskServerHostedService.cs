using System.Net;
using Bitcask.Replication;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bitcask.Server.Hosting;

/// <summary>Starts the store (or the cluster node) and its RESP server when the host starts; stops the server, then
/// closes the node or store, when it stops. Registered by <see cref="BitcaskServerServiceCollectionExtensions.AddBitcaskServer(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{BitcaskServerHostOptions}?)"/>;
/// the host calls it from one thread.</summary>
public sealed class BitcaskServerHostedService(IOptions<BitcaskServerHostOptions> options, ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    private BitcaskStore? _store;
    private ReplicatedStore? _node;
    private BitcaskServer? _server;

    /// <summary>The RESP server's address once started.</summary>
    public IPEndPoint? EndPoint => _server?.EndPoint;

    /// <summary>The cluster node, when <see cref="BitcaskServerHostOptions.Cluster"/> is set and the host started.</summary>
    public ReplicatedStore? Node => _node;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (string.IsNullOrEmpty(o.Directory)) throw new ArgumentException("BitcaskServer:Directory is required.");
        if (!IPAddress.TryParse(o.BindAddress, out var bind)) throw new ArgumentException($"BitcaskServer:BindAddress '{o.BindAddress}' is not an IP address.");
        var serverOptions = new BitcaskServerOptions { BindAddress = bind, Port = o.Port, Password = o.Password, AllowFlush = o.AllowFlush, ClusterId = o.Cluster?.ClusterId };
        var storeOptions = new BitcaskOptions { Durability = o.Durability, LoggerFactory = loggerFactory, InlineAsyncCompletions = o.Cluster is null }; // the server's connection loops never block after a write
        if (o.Cluster is not { } cluster)
        {
            _store = BitcaskStore.Open(o.Directory, storeOptions);
            _server = new BitcaskServer(_store, serverOptions, loggerFactory);
        }
        else
        {
            if (string.IsNullOrEmpty(cluster.ClusterId)) throw new ArgumentException("BitcaskServer:Cluster:ClusterId is required for a cluster node.");
            if (o.Port == 0) throw new ArgumentException("BitcaskServer:Port must be fixed (not 0) for a cluster node: it is published to the other members.");
            var node = BitcaskClusterNodeOptions.Parse(cluster.Node, "Node");
            var peers = cluster.Peers.Select(p => BitcaskClusterNodeOptions.Parse(p, "Peers")).Where(p => !p.Equals(node)).ToList();
            if (cluster.Join && peers.Count > 0) throw new ArgumentException("BitcaskServer:Cluster:Join starts a node with no membership; leave Peers empty.");
            var announce = bind.Equals(IPAddress.Any) || bind.Equals(IPAddress.IPv6Any) ? node.Address : bind;
            _node = await ReplicatedStore.StartAsync(new ReplicationOptions
            {
                NodeEndPoint = node,
                ListenEndPoint = cluster.NodeListen is null ? null : BitcaskClusterNodeOptions.Parse(cluster.NodeListen, "NodeListen"),
                Members = cluster.Join ? [] : [node, .. peers],
                StoreDirectory = Path.Combine(o.Directory, "store"),
                LogDirectory = Path.Combine(o.Directory, "raft"),
                StoreOptions = storeOptions,
                LowerElectionTimeout = cluster.LowerElectionTimeout,
                UpperElectionTimeout = cluster.UpperElectionTimeout,
                OperationTimeout = cluster.OperationTimeout,
                SnapshotInterval = cluster.SnapshotInterval,
                ClusterId = cluster.ClusterId,
                Metadata = new Dictionary<string, string> { [ReplicatedStore.ClientAddressMetadataKey] = new IPEndPoint(announce, o.Port).ToString() },
                LoggerFactory = loggerFactory,
            }, cancellationToken).ConfigureAwait(false);
            _server = new BitcaskServer(_node, serverOptions, loggerFactory);
        }
        await _server.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null) await _server.StopAsync().ConfigureAwait(false);
        await DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the server and closes the node or store (also when the host never called <see cref="StopAsync"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_server is { } server) { _server = null; await server.DisposeAsync().ConfigureAwait(false); }
        if (_node is { } node) { _node = null; await node.DisposeAsync().ConfigureAwait(false); }
        if (_store is { } store) { _store = null; store.Dispose(); }
    }
}
