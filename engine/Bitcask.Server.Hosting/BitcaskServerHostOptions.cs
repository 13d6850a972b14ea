using System.Net;

namespace Bitcask.Server.Hosting;

/// <summary>
/// What <c>bitcask serve</c> takes, as options bound from configuration (section <c>BitcaskServer</c>): the directory,
/// the RESP listener and, under <see cref="Cluster"/>, the Raft node. Set at startup; not thread-safe while being set.
/// </summary>
public sealed class BitcaskServerHostOptions
{
    /// <summary>The directory: the store itself, or for a cluster node <c>store/</c> and <c>raft/</c> inside it. Required.</summary>
    public string? Directory { get; set; }

    /// <summary>The RESP port. Default 6380. A cluster node needs a fixed port (it is published to the other members).</summary>
    public int Port { get; set; } = 6380;

    /// <summary>The address to listen on. Default 127.0.0.1; anything else needs <see cref="Password"/>.</summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>The store's durability. Default <see cref="Bitcask.Durability.Synced"/>.</summary>
    public Durability Durability { get; set; } = Durability.Synced;

    /// <summary>The password clients AUTH with; null = none (loopback only). Keep it in a secret store, not in a file
    /// checked in.</summary>
    public string? Password { get; set; }

    /// <summary>Let FLUSHDB/FLUSHALL delete every key. Default false.</summary>
    public bool AllowFlush { get; set; }

    /// <summary>Run as one node of a Raft cluster; null (the default) = a standalone server.</summary>
    public BitcaskClusterNodeOptions? Cluster { get; set; }
}

/// <summary>The Raft node of a <see cref="BitcaskServerHostOptions"/>: the flags <c>--cluster-id --node --peers
/// --node-listen --election-timeout --operation-timeout --snapshot-interval --join</c> of <c>bitcask serve</c>.</summary>
public sealed class BitcaskClusterNodeOptions
{
    /// <summary>The cluster's name, recorded in the node's directory and checked at every start. Required.</summary>
    public string? ClusterId { get; set; }

    /// <summary>This node's Raft address "ip:port" (its identity; where the others connect). Required.</summary>
    public string? Node { get; set; }

    /// <summary>The other members of the initial configuration ("ip:port" each). Empty with <see cref="Join"/>.</summary>
    public List<string> Peers { get; set; } = [];

    /// <summary>Where the Raft listener binds; default <see cref="Node"/>.</summary>
    public string? NodeListen { get; set; }

    /// <summary>Lower bound of the election timeout in ms. Default 300.</summary>
    public int LowerElectionTimeout { get; set; } = 300;

    /// <summary>Upper bound of the election timeout in ms. Default 600.</summary>
    public int UpperElectionTimeout { get; set; } = 600;

    /// <summary>How long a write or a read barrier waits for a leader and a majority. Default 5 s.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Take a snapshot every this many applied entries. Default 10,000.</summary>
    public long SnapshotInterval { get; set; } = 10_000;

    /// <summary>Start with no membership, waiting to be added (<c>bitcask cluster add</c>).</summary>
    public bool Join { get; set; }

    internal static IPEndPoint Parse(string? text, string name) =>
        text is not null && IPEndPoint.TryParse(text, out var ep) && ep.Port != 0 ? ep
            : throw new ArgumentException($"BitcaskServer:Cluster:{name} '{text}' is not an ip:port address (example: 127.0.0.1:7001).");
}
