using System.Net;
using Microsoft.Extensions.Logging;

namespace Bitcask.Replication;

/// <summary>
/// How one node of a replicated store starts: its address, the cluster's members, where its store and Raft log live.
/// Set once before <see cref="ReplicatedStore.StartAsync"/>; not thread-safe while being set.
/// </summary>
public sealed class ReplicationOptions
{
    /// <summary>This node's Raft address (TCP). Required.</summary>
    public required IPEndPoint NodeEndPoint { get; init; }

    /// <summary>Where this node's Raft listener binds. Default: <see cref="NodeEndPoint"/>. <see cref="NodeEndPoint"/>
    /// stays the node's identity in the membership and the address the other nodes connect to (DotNext's public end
    /// point), so a proxy or NAT may sit between the two.</summary>
    public IPEndPoint? ListenEndPoint { get; init; }

    /// <summary>The cluster's name. When set, it is recorded in <see cref="LogDirectory"/> (file <c>cluster-id</c>) the
    /// first time the node starts, and a later start with a different id fails with
    /// <see cref="ClusterIdMismatchException"/> (a node's log must never join another cluster). Default: null (no check).</summary>
    public string? ClusterId { get; init; }

    /// <summary>Extra Raft member metadata this node publishes to the others (e.g. its client-facing address). Keys
    /// starting with "bitcask." are reserved for this library, except those it documents for callers
    /// (<see cref="ReplicatedStore.ClientAddressMetadataKey"/>).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Every member of the initial static configuration, this node included (e.g. three nodes). Empty for a
    /// node that will be added later through <see cref="ReplicatedStore.AddMemberAsync"/> on the leader. Used only by a
    /// node that has never run: from its first start on, the membership is the one recorded in
    /// <see cref="LogDirectory"/> (file <c>members</c>), which configuration changes keep up to date.</summary>
    public IReadOnlyList<IPEndPoint> Members { get; init; } = [];

    /// <summary>The node's own store directory (one per node). Required.</summary>
    public required string StoreDirectory { get; init; }

    /// <summary>The node's Raft directory: the write-ahead log in <c>wal/</c> and the snapshots in <c>snapshots/</c>.
    /// Required; must not be inside <see cref="StoreDirectory"/>.</summary>
    public required string LogDirectory { get; init; }

    /// <summary>Options for the node's <see cref="BitcaskStore"/>. Default: the engine's defaults.</summary>
    public BitcaskOptions? StoreOptions { get; init; }

    /// <summary>Where this node accepts writes forwarded by followers when it leads. Default: the Raft address's IP
    /// with an ephemeral port (published to the other nodes through Raft member metadata).</summary>
    public IPEndPoint? ForwardEndPoint { get; init; }

    /// <summary>Take a snapshot (an engine backup) after this many applied entries since the last one; the Raft log
    /// is truncated below it. Default 10,000; at least 2.</summary>
    public long SnapshotInterval { get; init; } = 10_000;

    /// <summary>Also take a snapshot once the commands applied since the last one add up to this many payload bytes.
    /// Default 256 MiB; at least 4096.</summary>
    public long SnapshotIntervalBytes { get; init; } = 256L << 20;

    /// <summary>Lower bound of the randomized election timeout, in ms. Default 300.</summary>
    public int LowerElectionTimeout { get; init; } = 300;

    /// <summary>Upper bound of the randomized election timeout, in ms. Default 600.</summary>
    public int UpperElectionTimeout { get; init; } = 600;

    /// <summary>Size of one memory-mapped chunk of the Raft log (DotNext's default is 4 KiB, which makes many small
    /// files under write load). Default 1 MiB.</summary>
    public int LogChunkSize { get; init; } = 1 << 20;

    /// <summary>Serve linearizable reads on the leader from its lease (no round trip) while the lease holds.
    /// Default true; reads fall back to a full read barrier otherwise.</summary>
    public bool LeaderLease { get; init; } = true;

    /// <summary>How long a write or a linearizable read waits for a leader and a commit before it throws
    /// <see cref="TimeoutException"/>. Default 10 s.</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Logger factory for this node and for DotNext's Raft. Repeated messages (a peer that is down is
    /// reported on every heartbeat) are passed on at most once per <see cref="RepeatedLogInterval"/>.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Minimum interval between two copies of the same log message. Default 10 s.</summary>
    public TimeSpan RepeatedLogInterval { get; init; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(NodeEndPoint);
        ArgumentException.ThrowIfNullOrEmpty(StoreDirectory);
        ArgumentException.ThrowIfNullOrEmpty(LogDirectory);
        if (SnapshotInterval < 2)
            throw new ArgumentOutOfRangeException(nameof(SnapshotInterval), SnapshotInterval, "SnapshotInterval must be at least 2 entries.");
        if (SnapshotIntervalBytes < 4096)
            throw new ArgumentOutOfRangeException(nameof(SnapshotIntervalBytes), SnapshotIntervalBytes, "SnapshotIntervalBytes must be at least 4096 bytes.");
        if (LowerElectionTimeout < 10 || UpperElectionTimeout <= LowerElectionTimeout)
            throw new ArgumentOutOfRangeException(nameof(LowerElectionTimeout), "Election timeouts must satisfy 10 <= LowerElectionTimeout < UpperElectionTimeout (ms).");
        if (ClusterId is not null && (ClusterId.Length is 0 or > 128 || ClusterId.Any(ch => ch is < '!' or > '~')))
            throw new ArgumentException($"ClusterId \"{ClusterId}\" must be 1-128 printable ASCII characters without spaces.", nameof(ClusterId));
        if (LogChunkSize < 4096)
            throw new ArgumentOutOfRangeException(nameof(LogChunkSize), LogChunkSize, "LogChunkSize must be at least 4096 bytes.");
        var store = Path.GetFullPath(StoreDirectory).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        var log = Path.GetFullPath(LogDirectory).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        if (log.StartsWith(store, StringComparison.Ordinal) || store.StartsWith(log, StringComparison.Ordinal))
            throw new ArgumentException("StoreDirectory and LogDirectory must be separate directories (neither inside the other).", nameof(LogDirectory));
    }
}

/// <summary>A node's role as this node sees it.</summary>
public enum ReplicaRole
{
    /// <summary>No leader is known (an election is running, or this node cannot reach a majority).</summary>
    Candidate,
    /// <summary>Another node leads; this one replicates.</summary>
    Follower,
    /// <summary>This node leads: it orders and commits writes.</summary>
    Leader,
}

/// <summary>One node's view of the cluster, for <c>bitcask cluster status</c>. Immutable.</summary>
/// <param name="Node">This node's Raft address.</param>
/// <param name="Role">This node's role.</param>
/// <param name="Term">The current Raft term.</param>
/// <param name="Leader">The leader's Raft address, if one is known.</param>
/// <param name="CommitIndex">Index of the newest committed log entry this node knows of.</param>
/// <param name="AppliedIndex">Index of the newest entry applied to this node's store.</param>
/// <param name="LastLogIndex">Index of the newest entry in this node's log.</param>
/// <param name="SnapshotIndex">Index of this node's newest snapshot (0 when none).</param>
/// <param name="Members">The Raft addresses of the current configuration.</param>
public sealed record ReplicationStatus(EndPoint Node, ReplicaRole Role, long Term, EndPoint? Leader, long CommitIndex,
    long AppliedIndex, long LastLogIndex, long SnapshotIndex, IReadOnlyList<EndPoint> Members);

/// <summary>A replicated write failed in a way the caller must know about.</summary>
public class ReplicationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ReplicationException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The node's Raft directory belongs to another cluster than the one it was started for.</summary>
public sealed class ClusterIdMismatchException : ReplicationException
{
    /// <summary>Creates the exception.</summary>
    public ClusterIdMismatchException(string recordedId, string givenId, string directory)
        : base($"The Raft directory {directory} belongs to cluster \"{recordedId}\", not \"{givenId}\" (start with --cluster-id {recordedId}, or give an empty directory).")
    {
        RecordedId = recordedId;
        GivenId = givenId;
    }

    /// <summary>The id recorded in the directory.</summary>
    public string RecordedId { get; }

    /// <summary>The id the node was started with.</summary>
    public string GivenId { get; }
}

/// <summary>The write was proposed but leadership changed before this node learned whether it committed: it may or
/// may not be applied (check before retrying a non-idempotent write such as an increment).</summary>
public sealed class ReplicationOutcomeUnknownException : ReplicationException
{
    /// <summary>Creates the exception.</summary>
    public ReplicationOutcomeUnknownException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The command was applied (in log order, on every node) and failed there: e.g. an increment of a value
/// that is not an integer. Nothing was written.</summary>
public sealed class ReplicatedCommandException : ReplicationException
{
    /// <summary>Creates the exception.</summary>
    public ReplicatedCommandException(string message) : base(message) { }
}

/// <summary>A proposal's result slot, carried as the log entry's context to the leader's apply: one result per
/// command of the entry (one for a single command, several for a multi entry), in order.</summary>
internal sealed class Proposal
{
    private readonly TaskCompletionSource<(CommandResult[] Results, long Index)> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    internal void Complete(CommandResult[] results, long index) => _done.TrySetResult((results, index));
    internal Task<(CommandResult[] Results, long Index)> Task => _done.Task;
}
