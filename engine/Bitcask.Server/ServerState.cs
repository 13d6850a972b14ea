using System.Collections.Concurrent;
using Bitcask.Replication;
using Bitcask.Server.Commands;
using Microsoft.Extensions.Logging;

namespace Bitcask.Server;

/// <summary>Counters shown by INFO stats. Updated without locks (approximate under concurrency, like Redis's).</summary>
internal sealed class ServerStats
{
    public long Commands;
    public long Connections;
    public long Rejected;
    public long ProtocolErrors;
    public long OutputLimitDisconnects;
    public long IdleDisconnects;
}

/// <summary>What every connection shares: the store, options, command table, pub/sub, clients and configuration.
/// <para>Thread-safety: all members are safe to call concurrently.</para></summary>
internal sealed class ServerState
{
    private readonly BitcaskStore? _store;

    /// <summary>A server over a replicated node: reads go to the node's store after a read barrier, writes become Raft
    /// log entries (README, "Cluster").</summary>
    public ServerState(ReplicatedStore node, BitcaskServerOptions options, ILogger logger) : this(node.LocalStore, options, logger)
    {
        _store = null;
        Node = node;
        Cluster = new ClusterView(node, logger);
    }

    public ServerState(BitcaskStore store, BitcaskServerOptions options, ILogger logger)
    {
        _store = store;
        Options = options;
        Logger = logger;
        var storeOptions = store.Options;
        MaxBulkBytes = options.MaxBulkBytes > 0 ? options.MaxBulkBytes : Math.Max(storeOptions.MaxValueBytes, storeOptions.MaxKeyBytes);
        MaxQueryBufferBytes = options.MaxQueryBufferBytes > 0 ? options.MaxQueryBufferBytes : Math.Clamp(storeOptions.MaxSegmentBytes, 1L << 20, 1L << 30);
        NotifyFlags = KeyspaceNotifications.Parse(options.NotifyKeyspaceEvents) ?? throw new ArgumentException(
            $"NotifyKeyspaceEvents '{options.NotifyKeyspaceEvents}' has a character that is not one of K E g $ l s h z x e t m n d A.", nameof(options));
        Commands = CommandTable.Create();
    }

    /// <summary>The store commands read (on a replicated node: its store as it is now, replaced by a snapshot install).</summary>
    public BitcaskStore Store => _store ?? Node!.LocalStore;

    /// <summary>The replicated node this server fronts; null for a standalone store.</summary>
    public ReplicatedStore? Node { get; }

    /// <summary>The number of clients' keys: the store's count, less the replication layer's own keys on a cluster node.</summary>
    public long KeyCount
    {
        get
        {
            var store = Store;
            return Node is null ? store.Count : store.Count - store.Keys("\0raft:"u8.ToArray()).Count();
        }
    }

    /// <summary>What the server knows of the other members (their RESP addresses); null when standalone.</summary>
    public ClusterView? Cluster { get; }

    /// <summary>The clock TTLs are chosen and shown by: the store's on a standalone server; the wall clock on a replicated
    /// node (its store judges expiry by the log's clock, which only moves with new entries).</summary>
    public long NowMs => Node is null ? Store.Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds() : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    public BitcaskServerOptions Options { get; }
    public ILogger Logger { get; }
    public CommandTable Commands { get; }
    public PubSub PubSub { get; } = new();
    public ServerStats Stats { get; } = new();
    public long MaxBulkBytes { get; }
    public long MaxQueryBufferBytes { get; }
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
    public int Port { get; set; }
    public ConcurrentDictionary<long, Connection> Clients { get; } = new();
    public Durability Durability => Store.Options.Durability;

    /// <summary>Keyspace notification classes (CONFIG SET notify-keyspace-events); 0 = off.</summary>
    public volatile NotifyFlags NotifyFlags;

    /// <summary>Set by the server: (re)starts or stops the watch that feeds keyspace notifications.</summary>
    public Action? NotifyFlagsChanged { get; set; }

    public Scripting.LuaScriptHost? Scripts { get; set; }

    /// <summary>Commits a command's batch: asynchronously in Synced mode (the thread is released during the group's
    /// fdatasync), synchronously otherwise (a write system call at most).</summary>
    public ValueTask<bool> CommitAsync(WriteBatch batch) =>
        Durability == Durability.Synced ? Store.TryWriteAsync(batch) : new ValueTask<bool>(Store.TryWrite(batch));

    /// <summary>Commits what a command staged in <paramref name="view"/> (plus the versions WATCH saw): one plain record
    /// for the common one-key cases, else one conditional batch. False when a condition failed (nothing written).</summary>
    public ValueTask<bool> CommitAsync(KeyspaceView view, IReadOnlyDictionary<byte[], long>? watched = null)
    {
        if (Node is not null)
            return view.HasWrites ? CommitReplicatedAsync(Node, view.BuildReplicatedBatch(watched)) : new ValueTask<bool>(view.ReadsStillHold(watched));
        if ((watched is null || watched.Count == 0) && view.SingleKeyWrite() is var (key, value, expected))
        {
            var synced = Durability == Durability.Synced;
            if (value is null)
                return synced ? Store.CompareAndDeleteAsync(key, expected) : new ValueTask<bool>(Store.CompareAndDelete(key, expected));
            if (expected < 0)
            {
                if (synced) return Completed(Store.PutAsync(key, value));
                Store.Put(key, value);
                return new ValueTask<bool>(true);
            }
            return synced ? Store.CompareAndSetAsync(key, expected, value) : new ValueTask<bool>(Store.CompareAndSet(key, expected, value));
        }
        return CommitAsync(view.BuildBatch(watched));

        static async ValueTask<bool> Completed(ValueTask put)
        {
            await put.ConfigureAwait(false);
            return true;
        }
    }

    /// <summary>Whether commands may read and write <see cref="Store"/> directly, as the hot path does (GET, plain SET and
    /// INCR in Connection.FastPath.cs): true for a standalone store. A server whose reads and writes must go elsewhere
    /// (a replicated node: read barrier, Raft log) must return false, and every command then takes the general path.</summary>
    public bool HotPathAllowed => Node is null;

    /// <summary>A one-key write outside Synced mode, done at once (the hot SET and INCR): a blind put when
    /// <paramref name="expectedVersion"/> is negative, else a put conditional on that version (0: absent). False when the
    /// condition failed (nothing written).</summary>
    public bool TryWriteNow(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expectedVersion)
    {
        if (expectedVersion >= 0) return Store.CompareAndSet(key, expectedVersion, value);
        Store.Put(key, value);
        return true;
    }

    /// <summary>One Raft log entry for the command's writes and conditions; false when a condition failed at its log
    /// position (the command runs again after a new read barrier).</summary>
    private static async ValueTask<bool> CommitReplicatedAsync(ReplicatedStore node, ReplicatedBatch batch)
    {
        try
        {
            return await node.WriteAsync(batch).ConfigureAwait(false);
        }
        catch (Exception e) when (ClusterError(e) is { } line)
        {
            throw new ReplyErrorException(line, e);
        }
        catch (Exception e) when (e is not (ArgumentException or IOException))
        {
            // Anything else from the Raft layer: the entry may have been appended, so the client must not assume either way.
            throw new ReplyErrorException($"TRYAGAIN outcome unknown: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>Waits until this node applied every write committed before the call (linearizable reads).</summary>
    public async ValueTask ReadBarrierAsync()
    {
        try
        {
            await Node!.ReadBarrierAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (ClusterError(e) is { } line)
        {
            throw new ReplyErrorException(line, e);
        }
        catch (Exception e)
        {
            throw new ReplyErrorException($"CLUSTERDOWN read barrier failed: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>The Redis error line for a replication failure (cluster contract): CLUSTERDOWN when nothing can have been
    /// applied, TRYAGAIN when the write may have been.</summary>
    public static string? ClusterError(Exception e) => e switch
    {
        TimeoutException => "CLUSTERDOWN " + e.Message,
        ReplicationOutcomeUnknownException => "TRYAGAIN outcome unknown: " + e.Message,
        ReplicatedCommandException => "ERR " + e.Message,
        ObjectDisposedException => "CLUSTERDOWN this node is stopping",
        _ => null,
    };

    /// <summary>An exception from the engine as a Redis error line.</summary>
    public static string ErrorText(Exception e)
    {
        if (e is ReplyErrorException) return e.Message;
        var message = e.Message;
        var parameter = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (parameter > 0) message = message[..parameter];
        return e is IOException ? $"ERR I/O error: {message}" : $"ERR {message}";
    }
}

/// <summary>A failure whose message is the whole Redis error line (e.g. "CLUSTERDOWN ..."). An
/// <see cref="InvalidOperationException"/>, so the command paths that answer engine errors answer it too.</summary>
internal sealed class ReplyErrorException(string line, Exception? inner = null) : InvalidOperationException(line, inner);
