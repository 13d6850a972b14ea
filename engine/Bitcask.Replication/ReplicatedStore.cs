using System.Net;
using System.Text;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.Membership;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;

namespace Bitcask.Replication;

/// <summary>
/// One node of a replicated Bitcask store: its own <see cref="BitcaskStore"/> as the state machine of a Raft cluster
/// (DotNext.Net.Cluster over TCP). Every write is proposed as one Raft log entry, committed by a majority and applied
/// to every node's store in log order; it returns after commit and after this node applied it. Writes on a follower
/// are forwarded to the leader. <see cref="GetAsync"/> is linearizable (leader lease or read barrier);
/// <see cref="GetStale"/> reads this node's store as it is.
/// Thread-safe: any number of threads may call any member at once. Dispose it to stop the node.
/// </summary>
public sealed class ReplicatedStore : IAsyncDisposable
{
    private const string ForwardMetadataKey = "bitcask.forward";

    /// <summary>The member metadata key under which a node publishes the address its clients use (the RESP server's
    /// "ip:port"); give it in <see cref="ReplicationOptions.Metadata"/>.</summary>
    public const string ClientAddressMetadataKey = "bitcask.resp";

    /// <summary>The file in <see cref="ReplicationOptions.LogDirectory"/> that records the cluster id.</summary>
    internal const string ClusterIdFile = "cluster-id";
    private readonly CancellationTokenSource _stopping = new();
    private Task? _expiryLoop;
    private long _lastStamp;
    private readonly ReplicationOptions _options;
    private readonly StoreStateMachine _machine;
    private readonly WriteAheadLog _wal;
    private readonly RaftCluster _cluster;
    private readonly Membership _membership;
    private readonly ForwardServer _forwardServer;
    private readonly ForwardClient _forwardClient = new();
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private int _disposed;
    private readonly IReadOnlyDictionary<string, string> _localMetadata = new Dictionary<string, string>();

    private ReplicatedStore(ReplicationOptions options, ILoggerFactory loggers)
    {
        _options = options;
        _loggers = loggers;
        _log = loggers.CreateLogger<ReplicatedStore>();
        Directory.CreateDirectory(options.LogDirectory);
        CheckClusterId(options);
        _machine = new StoreStateMachine(options.StoreDirectory, Path.Combine(options.LogDirectory, "snapshots"),
            options.StoreOptions, options.SnapshotInterval, options.SnapshotIntervalBytes, _log);
        try
        {
            // The membership comes from the log directory once the node has run (changed by cluster add/remove);
            // Members only seed a node that has none recorded yet.
            var membershipFile = Path.Combine(options.LogDirectory, Membership.FileName);
            if (!File.Exists(membershipFile) && options.Members.Count > 0)
                Membership.SeedAsync(membershipFile, options.Members, CancellationToken.None).GetAwaiter().GetResult();
            _membership = new Membership(membershipFile);
            _wal = new WriteAheadLog(new WriteAheadLog.Options
            {
                Location = Path.Combine(options.LogDirectory, "wal"),
                ChunkSize = options.LogChunkSize,
            }, _machine);
            _forwardServer = new ForwardServer(options.ForwardEndPoint ?? new IPEndPoint(options.NodeEndPoint.Address, 0), HandleForwardedAsync, _log);
            var config = new RaftCluster.TcpConfiguration(options.ListenEndPoint ?? options.NodeEndPoint)
            {
                PublicEndPoint = options.NodeEndPoint,
                LowerElectionTimeout = options.LowerElectionTimeout,
                UpperElectionTimeout = options.UpperElectionTimeout,
                // Static membership: every node starts knowing the whole configuration; a cold start would make each
                // node a one-member cluster of its own.
                ColdStart = false,
                ConfigurationStorage = _membership,
                IsLeaderLeaseEnabled = options.LeaderLease,
                LoggerFactory = loggers,
            };
            if (options.Metadata is not null)
                foreach (var (key, value) in options.Metadata)
                    config.Metadata[key] = value;
            config.Metadata[ForwardMetadataKey] = _forwardServer.EndPoint.ToString();
            _localMetadata = new Dictionary<string, string>(config.Metadata);
            _cluster = new RaftCluster(config) { AuditTrail = _wal };
        }
        catch
        {
            _machine.Dispose();
            throw;
        }
    }

    private static void CheckClusterId(ReplicationOptions options)
    {
        if (options.ClusterId is not { } id) return;
        var file = Path.Combine(options.LogDirectory, ClusterIdFile);
        if (File.Exists(file))
        {
            var recorded = File.ReadAllText(file).Trim();
            if (recorded != id) throw new ClusterIdMismatchException(recorded, id, Path.GetFullPath(options.LogDirectory));
            return;
        }
        DurableFile.Write(file, Encoding.UTF8.GetBytes(id + "\n"));
    }

    /// <summary>The node's store as it is now (for the RESP server, after a read barrier). Replaced by a snapshot
    /// install: never keep it across commands, never write to it.</summary>
    internal BitcaskStore LocalStore => _machine.Read(s => s);

    /// <summary>The log's clock (the newest leader stamp applied), by which the store judges expiry.</summary>
    internal DateTimeOffset LogTime => DateTimeOffset.FromUnixTimeMilliseconds(_machine.ClockMs);

    /// <summary>Test hook into the state machine (slow or stuck applier).</summary>
    internal StoreStateMachine Machine => _machine;

    /// <summary>Opens the node's store and log, starts its Raft member and forward listener, and returns once the
    /// log's committed entries are applied locally (the cluster may still be electing a leader).</summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    public static async Task<ReplicatedStore> StartAsync(ReplicationOptions options, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var node = new ReplicatedStore(options, RepeatFilterLoggerFactory.Wrap(options.LoggerFactory, options.RepeatedLogInterval));
        try
        {
            await node._cluster.StartAsync(token).ConfigureAwait(false);
            node._expiryLoop = Task.Run(node.ExpiryLoop, CancellationToken.None);
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return node;
    }

    /// <summary>This node's Raft address.</summary>
    public EndPoint NodeEndPoint => _options.NodeEndPoint;

    /// <summary>Where this node accepts forwarded writes.</summary>
    public EndPoint ForwardEndPoint => _forwardServer.EndPoint;

    /// <summary>True while this node is the leader.</summary>
    public bool IsLeader => !_cluster.LeadershipToken.IsCancellationRequested;

    /// <summary>This node's view: term, leader, commit and applied index, role.</summary>
    public ReplicationStatus Status
    {
        get
        {
            var leader = _cluster.Leader;
            var role = IsLeader ? ReplicaRole.Leader : leader is null ? ReplicaRole.Candidate : ReplicaRole.Follower;
            return new ReplicationStatus(_options.NodeEndPoint, role, _cluster.Term, leader?.EndPoint,
                _wal.LastCommittedEntryIndex, _machine.AppliedIndex, _wal.LastEntryIndex, _machine.SnapshotIndex,
                _cluster.Members.Select(m => m.EndPoint).ToArray());
        }
    }

    /// <summary>Waits until some node (maybe this one) is known to lead.</summary>
    /// <exception cref="TimeoutException">No leader within <see cref="ReplicationOptions.OperationTimeout"/>.</exception>
    public async Task WaitForLeaderAsync(CancellationToken token = default)
    {
        using var cts = Deadline(token);
        try
        {
            while (_cluster.Leader is null)
                await Task.Delay(20, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            throw new TimeoutException($"No Raft leader known to {_options.NodeEndPoint} within {_options.OperationTimeout}.");
        }
    }

    // ---- writes ----

    /// <summary>Replicates a put; returns after commit and local apply.</summary>
    public Task PutAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, CancellationToken token = default) =>
        ProposeAsync(new ReplicatedBatch().Put(key.Span, value.Span).Encode(), token);

    /// <summary>Replicates a put of UTF-8 strings.</summary>
    public Task PutAsync(string key, string value, CancellationToken token = default) =>
        ProposeAsync(new ReplicatedBatch().Put(key, value).Encode(), token);

    /// <summary>Replicates a delete; true when the key existed (at the delete's log position).</summary>
    public async Task<bool> DeleteAsync(ReadOnlyMemory<byte> key, CancellationToken token = default) =>
        (await ProposeAsync(new ReplicatedBatch().Delete(key.Span).Encode(), token).ConfigureAwait(false)).Value > 0;

    /// <summary>Replicates a delete of a UTF-8 key.</summary>
    public Task<bool> DeleteAsync(string key, CancellationToken token = default) => DeleteAsync(Encoding.UTF8.GetBytes(key), token);

    /// <summary>Replicates a batch as one log entry; false (nothing written) when one of its conditions did not hold
    /// at its log position.</summary>
    public async Task<bool> WriteAsync(ReplicatedBatch batch, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return (await ProposeAsync(batch.Encode(), token).ConfigureAwait(false)).Succeeded;
    }

    /// <summary>Redis INCRBY semantics (ASCII decimal, 64-bit, missing = 0), decided at the entry's log position, so
    /// concurrent increments from any nodes sum exactly. Returns the new value.</summary>
    /// <exception cref="ReplicatedCommandException">The value is not an integer, or the result overflows.</exception>
    public async Task<long> IncrementAsync(ReadOnlyMemory<byte> key, long delta = 1, CancellationToken token = default) =>
        (await ProposeAsync(Command.EncodeIncrement(key.Span, delta), token).ConfigureAwait(false)).Value;

    /// <summary>Increments a UTF-8 key.</summary>
    public Task<long> IncrementAsync(string key, long delta = 1, CancellationToken token = default) =>
        IncrementAsync(Encoding.UTF8.GetBytes(key), delta, token);

    /// <summary>Puts <paramref name="value"/> if the key's version is <paramref name="expectedVersion"/> (0 = absent).
    /// Versions are the same on every node (each applies the same writes in the same order).</summary>
    public Task<bool> CompareAndSetAsync(ReadOnlyMemory<byte> key, long expectedVersion, ReadOnlyMemory<byte> value, CancellationToken token = default) =>
        WriteAsync(new ReplicatedBatch().RequireVersion(key.Span, expectedVersion).Put(key.Span, value.Span), token);

    /// <summary>Puts <paramref name="value"/> only if the key is absent.</summary>
    public Task<bool> PutIfAbsentAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, CancellationToken token = default) =>
        WriteAsync(new ReplicatedBatch().RequireAbsent(key.Span).Put(key.Span, value.Span), token);

    /// <summary>Deletes the key if its version is <paramref name="expectedVersion"/>.</summary>
    public Task<bool> CompareAndDeleteAsync(ReadOnlyMemory<byte> key, long expectedVersion, CancellationToken token = default) =>
        WriteAsync(new ReplicatedBatch().RequireVersion(key.Span, expectedVersion).Delete(key.Span), token);

    /// <summary>Read-modify-write: reads the key linearizably, runs <paramref name="update"/> on its value (null when
    /// absent; return null to delete), and commits the result with a compare-and-set on the version read, running the
    /// callback again when another write won the race. Returns the value written (null for a delete).</summary>
    public async Task<byte[]?> UpdateAsync(ReadOnlyMemory<byte> key, Func<byte[]?, byte[]?> update, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        while (true)
        {
            await ReadBarrierAsync(token).ConfigureAwait(false);
            var (value, version) = _machine.Read(s =>
            {
                var info = s.GetInfo(key.Span);
                return (info is null ? null : s.Get(key.Span), info?.Version ?? 0);
            });
            var next = update(value);
            var batch = new ReplicatedBatch().RequireVersion(key.Span, version);
            if (next is null) batch.Delete(key.Span); else batch.Put(key.Span, next);
            if (await WriteAsync(batch, token).ConfigureAwait(false))
                return next;
        }
    }

    // ---- leases ----

    /// <summary>Grants a lease (etcd semantics, replicated): keys put with it (<see cref="ReplicatedBatch.Put(ReadOnlySpan{byte}, ReadOnlySpan{byte}, long)"/>)
    /// are deleted, on every node at the same log position, when it is revoked or when the leader sees it not kept
    /// alive (<see cref="KeepAliveAsync"/>) within <paramref name="timeToLive"/>. A newly elected leader first gives
    /// every lease a full time to live from its election. Returns the lease id (the grant's log index).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is under 1 ms.</exception>
    public async Task<long> GrantLeaseAsync(TimeSpan timeToLive, CancellationToken token = default)
    {
        var ms = (long)Math.Ceiling(timeToLive.TotalMilliseconds);
        ArgumentOutOfRangeException.ThrowIfLessThan(ms, 1, nameof(timeToLive));
        return (await ProposeAsync(Command.EncodeLease(Command.KindLeaseGrant, ms), token).ConfigureAwait(false)).Value;
    }

    /// <summary>Renews the lease to a full time to live from now (a log entry). False when it is gone.</summary>
    public async Task<bool> KeepAliveAsync(long leaseId, CancellationToken token = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(leaseId);
        return (await ProposeAsync(Command.EncodeLease(Command.KindLeaseKeepAlive, leaseId), token).ConfigureAwait(false)).Value == 1;
    }

    /// <summary>Revokes the lease: it and every key attached to it are deleted in one log entry. False when it was gone.</summary>
    public async Task<bool> RevokeLeaseAsync(long leaseId, CancellationToken token = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(leaseId);
        return (await ProposeAsync(Command.EncodeLease(Command.KindLeaseRevoke, leaseId), token).ConfigureAwait(false)).Value == 1;
    }

    /// <summary>Whether the lease is live in this node's store as it is.</summary>
    public bool LeaseExists(long leaseId) => _machine.Read(s => Command.ReadLease(s, leaseId) is not null);

    // ---- reads ----

    /// <summary>Linearizable read: sees every write that completed (anywhere) before the call.</summary>
    public async Task<byte[]?> GetAsync(ReadOnlyMemory<byte> key, CancellationToken token = default)
    {
        await ReadBarrierAsync(token).ConfigureAwait(false);
        return GetStale(key.Span);
    }

    /// <summary>Linearizable read of a UTF-8 key as a UTF-8 string.</summary>
    public async Task<string?> GetStringAsync(string key, CancellationToken token = default) =>
        await GetAsync(Encoding.UTF8.GetBytes(key), token).ConfigureAwait(false) is { } v ? Encoding.UTF8.GetString(v) : null;

    /// <summary>Linearizable read of a key's <see cref="EntryInfo"/> (version, create revision); null when absent.</summary>
    public async Task<EntryInfo?> GetInfoAsync(ReadOnlyMemory<byte> key, CancellationToken token = default)
    {
        await ReadBarrierAsync(token).ConfigureAwait(false);
        return _machine.Read(s => s.GetInfo(key.Span));
    }

    /// <summary>Reads this node's store as it is, without contacting the leader (a follower may lag).</summary>
    public byte[]? GetStale(ReadOnlySpan<byte> key)
    {
        var copy = key.ToArray();
        return _machine.Read(s => s.Get(copy));
    }

    /// <summary>Reads a UTF-8 key from this node's store as it is.</summary>
    public string? GetStaleString(string key) => GetStale(Encoding.UTF8.GetBytes(key)) is { } v ? Encoding.UTF8.GetString(v) : null;

    /// <summary>Runs <paramref name="read"/> on this node's store as it is (e.g. to compare content across nodes).
    /// The store must not be written through it nor kept after the callback.</summary>
    public T ReadLocal<T>(Func<BitcaskStore, T> read) => _machine.Read(read);

    /// <summary>Waits until every write committed before the call is applied to this node's store. On the leader with
    /// a valid lease this is local; otherwise a round of heartbeats confirms leadership (DotNext's read barrier).</summary>
    public async Task ReadBarrierAsync(CancellationToken token = default)
    {
        using var cts = Deadline(token);
        try
        {
            while (true)
            {
                var type = _options.LeaderLease && _cluster.TryGetLeaseToken(out var lease) && !lease.IsCancellationRequested
                    ? ReadBarrierType.Weak
                    : ReadBarrierType.Strong;
                try
                {
                    await _cluster.ApplyReadBarrierAsync(type, cts.Token).ConfigureAwait(false);
                    return;
                }
                catch (Exception e) when (e is QuorumUnreachableException or DotNext.Net.Cluster.MemberUnavailableException)
                {
                    // no leader known yet (an election, or this node just started), or it cannot be reached: wait for one
                    await Task.Delay(25, cts.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            throw new TimeoutException($"Read barrier not reached within {_options.OperationTimeout} (no reachable leader or majority).");
        }
    }

    /// <summary>A hash of this node's user keyspace (every key not reserved by the engine or this layer, with its
    /// value and expiry, in key order) at <see cref="ReplicationStatus.AppliedIndex"/>: nodes at the same applied index
    /// have the same digest. Blocks applies while it reads (it reads every key).</summary>
    public (long AppliedIndex, string Digest) ComputeDigest() => _machine.ReadExclusive(store =>
    {
        var keys = store.Keys().Where(k => !k.AsSpan().StartsWith(Command.ReservedPrefix)).ToList();
        keys.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
        var hash = new System.IO.Hashing.XxHash128();
        Span<byte> number = stackalloc byte[8];
        foreach (var key in keys)
        {
            if (store.GetInfo(key) is not { } info || store.Get(key) is not { } value) continue;
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(number, key.Length);
            hash.Append(number);
            hash.Append(key);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(number, value.Length);
            hash.Append(number);
            hash.Append(value);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(number, info.ExpiresAt?.ToUnixTimeMilliseconds() ?? 0);
            hash.Append(number);
        }
        return (_machine.AppliedIndex, Convert.ToHexStringLower(hash.GetCurrentHash()));
    });

    /// <summary>The Raft member metadata a member publishes (its <see cref="ClientAddressMetadataKey"/>, ...); null when
    /// <paramref name="member"/> is not a member or cannot be reached. <paramref name="refresh"/> asks the member again
    /// instead of using the copy DotNext keeps (a restarted member may publish new addresses).</summary>
    public async Task<IReadOnlyDictionary<string, string>?> GetMemberMetadataAsync(EndPoint member, bool refresh = false, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(member);
        var found = _cluster.Members.FirstOrDefault(m => member.Equals(m.EndPoint));
        if (found is null) return null;
        if (!found.IsRemote) return _localMetadata;
        using var cts = Deadline(token);
        try { return await found.GetMetadataAsync(refresh, cts.Token).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
        {
            _log.LogDebug(e, "Metadata of {Member}", member);
            return null;
        }
    }

    // ---- expiry ----

    /// <summary>Rounds of <see cref="ExpiryLoop"/> (250 ms each) without a new applied entry before an idle leader
    /// snapshots the entries applied since its newest snapshot (only once a snapshot exists: the log was truncated).</summary>
    private const int IdleSnapshotRounds = 8;

    /// <summary>On the leader: every 250 ms, proposes the revokes of the leases not kept alive in time and the deletes
    /// of the keys its clock says expired (one entry of up to <see cref="Command.MaxExpireKeys"/> keys at a time).
    /// Followers never expire anything themselves. A lease's deadline is its time to live after its newest renewal or
    /// after this node became leader, whichever is later: a new leader never expires a lease a client may have kept
    /// alive through the old one, before a full time to live under its own leadership.</summary>
    private async Task ExpiryLoop()
    {
        var token = _stopping.Token;
        long leaderSince = 0;
        long lastApplied = -1;
        var idleRounds = 0;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(250, token).ConfigureAwait(false);
                if (!IsLeader)
                {
                    leaderSince = 0;
                    continue;
                }
                // Idle for IdleSnapshotRounds: snapshot what was applied since the last snapshot, so a follower whose
                // install of the previous one timed out on this side catches up (StoreStateMachine.SnapshotNow).
                var applied = _machine.AppliedIndex;
                if (applied != lastApplied) (lastApplied, idleRounds) = (applied, 0);
                else if (++idleRounds == IdleSnapshotRounds && applied > _machine.SnapshotIndex && _machine.SnapshotIndex > 0)
                    _machine.SnapshotNow();
                if (leaderSince == 0) leaderSince = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                var wall = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                var since = leaderSince;
                var due = !_machine.LeasesMayExist ? [] : _machine.Read(s =>
                {
                    var list = new List<(long Id, long Renewed)>();
                    var prefix = Command.LeasePrefix.ToArray();
                    foreach (var key in s.Keys(prefix))
                    {
                        if (key.Length != prefix.Length + 8) continue;
                        var id = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(key.AsSpan(prefix.Length));
                        if (Command.ReadLease(s, id) is { } lease && Math.Max(lease.RenewedMs, since) + lease.TtlMs <= wall)
                            list.Add((id, lease.RenewedMs));
                    }
                    return list;
                });
                foreach (var (id, renewed) in due)
                    if (IsLeader) await ProposeAsync(Command.EncodeLease(Command.KindLeaseRevoke, id, renewed), token).ConfigureAwait(false);
                while (IsLeader && !token.IsCancellationRequested)
                {
                    var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    var keys = _machine.Read(s => s.CollectExpiredKeys(now, Command.MaxExpireKeys));
                    keys.RemoveAll(k => k.AsSpan().StartsWith(Command.ReservedPrefix) || k.AsSpan().StartsWith("\0bitcask:"u8));
                    if (keys.Count == 0) break;
                    await ProposeAsync(Command.EncodeExpire(keys), token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _log.LogDebug(e, "Proposing expiry deletes failed; retrying");
            }
        }
    }

    // ---- membership ----

    /// <summary>Adds a node (started with empty <see cref="ReplicationOptions.Members"/>) through a Raft
    /// configuration change; the new node first catches up (snapshot, then log). Must run on the leader.</summary>
    /// <exception cref="InvalidOperationException">This node is not the leader (the message names the leader).</exception>
    /// <returns>True once the node is a member (also when it already was); false when it could not catch up within
    /// <see cref="ReplicationOptions.OperationTimeout"/> (DotNext gives a new node a few replication rounds to catch
    /// up per attempt; a node still starting or installing a snapshot needs more than one attempt).</returns>
    public async Task<bool> AddMemberAsync(IPEndPoint node, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        using var cts = Deadline(token);
        try
        {
            while (true)
            {
                ThrowIfNotLeader();
                if (_cluster.Members.Any(m => node.Equals(m.EndPoint)))
                    return true;
                if (await _cluster.AddMemberAsync(node, cts.Token).ConfigureAwait(false))
                    return true;
                await Task.Delay(100, cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Removes a node through a Raft configuration change. Must run on the leader.</summary>
    /// <exception cref="InvalidOperationException">This node is not the leader (the message names the leader).</exception>
    public async Task<bool> RemoveMemberAsync(IPEndPoint node, CancellationToken token = default)
    {
        ThrowIfNotLeader();
        return await _cluster.RemoveMemberAsync(node, token).ConfigureAwait(false);
    }

    private void ThrowIfNotLeader()
    {
        if (!IsLeader)
            throw new InvalidOperationException($"Membership changes run on the leader; this node ({_options.NodeEndPoint}) is not it (leader: {_cluster.Leader?.EndPoint?.ToString() ?? "unknown"}).");
    }

    // ---- proposing ----

    private CancellationTokenSource Deadline(CancellationToken token)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        cts.CancelAfter(_options.OperationTimeout);
        return cts;
    }

    /// <summary>Proposes one command: locally when leading, else forwarded to the leader; retries only while nothing
    /// can have been appended (no leader yet, leader moved before appending).</summary>
    private async Task<CommandResult> ProposeAsync(byte[] payload, CancellationToken token)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        using var cts = Deadline(token);
        string? lastReason = null;
        var inFlight = false; // an attempt may have reached a leader's log: a timeout then cannot say "not applied"
        try
        {
            while (true)
            {
                inFlight = true;
                var reply = IsLeader
                    ? await ReplicateLocalAsync(payload, cts.Token).ConfigureAwait(false)
                    : await ForwardAsync(payload, cts.Token).ConfigureAwait(false);
                switch (reply.Status)
                {
                    case ForwardStatus.Applied:
                        if (reply.Index > _machine.AppliedIndex)
                            await WaitAppliedAsync(reply.Index, cts.Token).ConfigureAwait(false);
                        return new CommandResult(reply.Succeeded, reply.Value, null);
                    case ForwardStatus.CommandFailed:
                        if (reply.Index > _machine.AppliedIndex)
                            await WaitAppliedAsync(reply.Index, cts.Token).ConfigureAwait(false);
                        throw new ReplicatedCommandException(reply.Message ?? "command failed");
                    case ForwardStatus.Unknown:
                        throw new ReplicationOutcomeUnknownException(reply.Message ?? "outcome unknown");
                    default:
                        inFlight = false; // not the leader: nothing was appended
                        lastReason = reply.Message;
                        await Task.Delay(25, cts.Token).ConfigureAwait(false);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested && inFlight)
        {
            throw new ReplicationOutcomeUnknownException($"no answer within {_options.OperationTimeout} after the write reached a leader (it may still commit).");
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            throw new TimeoutException($"Write not committed within {_options.OperationTimeout}: no reachable leader or majority ({lastReason ?? "no leader"}).");
        }
    }

    /// <summary>Proposes a format-1 command on this node (the leader). Batches and increments go through the proposal
    /// queue: while one entry is being replicated, the commands proposed meanwhile (here or forwarded) wait, and the
    /// next entry carries all of them (a multi entry, FORMAT.md §8), each applied at its own position with its own
    /// result. Other commands are one entry each.</summary>
    private Task<ForwardReply> ReplicateLocalAsync(byte[] payload, CancellationToken token)
    {
        if (!Command.IsBatchable(payload) || payload.Length > Command.MaxMultiBytes)
            return ReplicateSingleAsync(payload, token);
        var pending = new PendingCommand(payload);
        bool send;
        lock (_queue)
        {
            _queue.Enqueue(pending);
            send = !_sending;
            _sending = true;
        }
        if (send) _ = SendQueuedAsync();
        return pending.WaitAsync(this, token);
    }

    private async Task<ForwardReply> ReplicateSingleAsync(byte[] payload, CancellationToken token) =>
        (await ReplicateEntryAsync(payload, 1, token).ConfigureAwait(false))[0];

    /// <summary>Commands waiting for the entry being replicated to finish; <see cref="_sending"/> is true while a sender
    /// loop runs. Both under the queue's lock.</summary>
    private readonly Queue<PendingCommand> _queue = new();
    private bool _sending;

    /// <summary>Commands waiting in the proposal queue (tests).</summary>
    internal int QueuedProposals { get { lock (_queue) return _queue.Count; } }

    /// <summary>Number of entries the proposal queue appended, and of commands they carried (tests, diagnostics).</summary>
    internal (long Entries, long Commands) ProposalBatches => (Volatile.Read(ref _batchEntries), Volatile.Read(ref _batchCommands));
    private long _batchEntries, _batchCommands;

    /// <summary>The sender loop: one entry at a time, each carrying every command queued when it starts (up to
    /// <see cref="Command.MaxMultiCommands"/> commands and <see cref="Command.MaxMultiBytes"/> bytes).</summary>
    private async Task SendQueuedAsync()
    {
        var group = new List<PendingCommand>();
        var payloads = new List<byte[]>();
        while (true)
        {
            group.Clear();
            payloads.Clear();
            lock (_queue)
            {
                var bytes = 0;
                while (_queue.TryPeek(out var next) && group.Count < Command.MaxMultiCommands
                       && (group.Count == 0 || bytes + next.Payload.Length <= Command.MaxMultiBytes))
                {
                    _queue.Dequeue();
                    if (next.Abandoned) continue; // its caller gave up before it was sent: never appended
                    next.Sent = true;
                    group.Add(next);
                    bytes += next.Payload.Length + 4;
                }
                if (group.Count == 0)
                {
                    _sending = false;
                    return;
                }
            }
            foreach (var command in group) payloads.Add(command.Payload);
            ForwardReply[] replies;
            try
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                cts.CancelAfter(_options.OperationTimeout);
                var entry = group.Count == 1 ? payloads[0] : Command.EncodeMulti(payloads);
                Interlocked.Increment(ref _batchEntries);
                Interlocked.Add(ref _batchCommands, group.Count);
                replies = await ReplicateEntryAsync(entry, group.Count, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                replies = Fill(group.Count, new(ForwardStatus.Unknown, false, 0, 0, "no commit within the operation timeout on the leader (it may still commit)"));
            }
            catch (Exception e)
            {
                replies = Fill(group.Count, new(ForwardStatus.Unknown, false, 0, 0, e.GetType().Name + ": " + e.Message));
            }
            for (var i = 0; i < group.Count; i++) group[i].Complete(replies[i]);
        }
    }

    private static ForwardReply[] Fill(int count, ForwardReply reply)
    {
        var replies = new ForwardReply[count];
        Array.Fill(replies, reply);
        return replies;
    }

    /// <summary>Appends one entry (a single command or a multi entry of <paramref name="commands"/> commands) and waits
    /// for its commit and local apply; one reply per command.</summary>
    private async Task<ForwardReply[]> ReplicateEntryAsync(byte[] payload, int commands, CancellationToken token)
    {
        var proposal = new Proposal();
        try
        {
            if (!IsLeader) return Fill(commands, new(ForwardStatus.NotLeader, false, 0, 0, "not the leader"));
            await _cluster.ReplicateAsync(Command.Stamp(payload, NextStamp()), proposal, token).ConfigureAwait(false);
        }
        catch (NotLeaderException e) when (e.InnerException is null && !proposal.Task.IsCompleted)
        {
            // DotNext checks leadership before appending and throws without an inner exception: nothing was appended.
            return Fill(commands, new(ForwardStatus.NotLeader, false, 0, 0, "not the leader"));
        }
        catch (NotLeaderException e)
        {
            return proposal.Task.IsCompleted ? ToReplies(proposal.Task.Result, commands)
                : Fill(commands, new(ForwardStatus.Unknown, false, 0, 0, "leadership lost while the write was being replicated: " + e.Message));
        }
        if (!proposal.Task.IsCompleted)
            return Fill(commands, new(ForwardStatus.Unknown, false, 0, 0, "the write committed but its result was not seen by the proposer"));
        return ToReplies(proposal.Task.Result, commands);
    }

    private static ForwardReply[] ToReplies((CommandResult[] Results, long Index) r, int commands)
    {
        var replies = new ForwardReply[commands];
        for (var i = 0; i < commands; i++)
            replies[i] = i >= r.Results.Length
                ? new(ForwardStatus.Unknown, false, 0, r.Index, "the entry was applied without a result for this command")
                : r.Results[i].ErrorMessage is { } msg
                    ? new(ForwardStatus.CommandFailed, false, 0, r.Index, msg)
                    : new(ForwardStatus.Applied, r.Results[i].Succeeded, r.Results[i].Value, r.Index, null);
        return replies;
    }

    /// <summary>One command in the proposal queue and the reply its caller waits for.</summary>
    private sealed class PendingCommand(byte[] payload)
    {
        private readonly TaskCompletionSource<ForwardReply> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);
        internal byte[] Payload => payload;
        /// <summary>Taken by the sender (under the queue's lock): from then on the command may be in the log.</summary>
        internal bool Sent;
        /// <summary>Its caller gave up while it was still queued (under the queue's lock): it is never sent.</summary>
        internal bool Abandoned;
        internal void Complete(ForwardReply reply) => _reply.TrySetResult(reply);

        internal async Task<ForwardReply> WaitAsync(ReplicatedStore owner, CancellationToken token)
        {
            try
            {
                return await _reply.Task.WaitAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                lock (owner._queue)
                {
                    // still queued: it will never be appended, so the caller may treat it as not applied
                    if (!Sent)
                    {
                        Abandoned = true;
                        return new(ForwardStatus.NotLeader, false, 0, 0, "gave up while waiting for the entry before it");
                    }
                }
                throw;
            }
        }
    }

    /// <summary>The leader's clock for a new entry: wall time, never below a stamp this node gave before nor below the
    /// log's clock (a new leader whose clock is behind never moves the log's time backwards).</summary>
    private long NextStamp()
    {
        var now = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _machine.ClockMs);
        while (true)
        {
            var last = Volatile.Read(ref _lastStamp);
            var next = Math.Max(now, last);
            if (Interlocked.CompareExchange(ref _lastStamp, next, last) == last) return next;
        }
    }

    private async Task<ForwardReply> ForwardAsync(byte[] payload, CancellationToken token)
    {
        if (_cluster.Leader is not { IsRemote: true } leader)
            return new(ForwardStatus.NotLeader, false, 0, 0, "no leader known");
        IReadOnlyDictionary<string, string> metadata;
        // DotNext caches a member's metadata; a leader that restarted publishes a new forward port, so after a failed
        // connection the next attempt asks the leader again.
        var refresh = Interlocked.Exchange(ref _refreshLeaderMetadata, 0) != 0;
        try { metadata = await leader.GetMetadataAsync(refresh, token).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
        {
            Volatile.Write(ref _refreshLeaderMetadata, 1);
            return new(ForwardStatus.NotLeader, false, 0, 0, "leader metadata unavailable: " + e.Message);
        }
        if (!metadata.TryGetValue(ForwardMetadataKey, out var address) || !IPEndPoint.TryParse(address, out var target))
            return new(ForwardStatus.NotLeader, false, 0, 0, "leader publishes no forward address");
        var reply = await _forwardClient.SendAsync(target, payload, token).ConfigureAwait(false);
        if (reply.Status == ForwardStatus.NotLeader) Volatile.Write(ref _refreshLeaderMetadata, 1);
        return reply;
    }

    private int _refreshLeaderMetadata;

    private async Task<ForwardReply> HandleForwardedAsync(byte[] payload, CancellationToken token)
    {
        if (Command.Validate(payload) is { } problem)
            return new(ForwardStatus.CommandFailed, false, 0, 0, problem);
        using var cts = Deadline(token);
        try
        {
            return await ReplicateLocalAsync(payload, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return new(ForwardStatus.Unknown, false, 0, 0, "timed out on the leader");
        }
        catch (Exception e)
        {
            return new(ForwardStatus.Unknown, false, 0, 0, e.GetType().Name + ": " + e.Message);
        }
    }

    private async Task WaitAppliedAsync(long index, CancellationToken token)
    {
        if (_machine.AppliedIndex < index)
            await _wal.WaitForApplyAsync(index, token).ConfigureAwait(false);
    }

    /// <summary>Stops the node: Raft member, forward listener, log, store (in that order).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_expiryLoop is not null) await _expiryLoop.ConfigureAwait(false);
        try { await _cluster.StopAsync(CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) { _log.LogDebug(e, "Raft stop"); }
        await _forwardServer.DisposeAsync().ConfigureAwait(false);
        _forwardClient.Dispose();
        _cluster.Dispose();
        await _wal.DisposeAsync().ConfigureAwait(false);
        _membership.Dispose();
        _machine.Dispose();
        _stopping.Dispose();
    }
}
