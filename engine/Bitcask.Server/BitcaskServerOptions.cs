using System.Net;

namespace Bitcask.Server;

/// <summary>
/// Settings of a <see cref="BitcaskServer"/>. Limits that are 0 (or null) take a default derived from the store's own
/// limits (<see cref="BitcaskOptions"/>). Immutable (a record with init-only properties): safe to share between threads.
/// </summary>
public sealed record BitcaskServerOptions
{
    /// <summary>The address to listen on. Default 127.0.0.1 (loopback). A non-loopback address needs <see cref="Password"/>.</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Loopback;

    /// <summary>The TCP port; 0 picks a free one (read it from <see cref="BitcaskServer.EndPoint"/>). Default 6380.</summary>
    public int Port { get; init; } = 6380;

    /// <summary>The password clients give with <c>AUTH</c> (or <c>HELLO … AUTH default pw</c>); null = no authentication,
    /// which is allowed only on a loopback address.</summary>
    public string? Password { get; init; }

    /// <summary>At most this many connected clients (Redis <c>maxclients</c>); one more gets
    /// <c>-ERR max number of clients reached</c> and is closed. Default 10,000.</summary>
    public int MaxClients { get; init; } = 10_000;

    /// <summary>A client idle this long (no command; subscribers excepted) is closed (Redis <c>timeout</c>). Zero = never.
    /// Default 0.</summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>The largest bulk string a client may send (Redis <c>proto-max-bulk-len</c>); larger gets
    /// <c>-ERR Protocol error: invalid bulk length</c>. 0 = the store's largest value or key, whichever is larger.</summary>
    public long MaxBulkBytes { get; init; }

    /// <summary>The most bytes one unparsed command may take in a client's query buffer (Redis
    /// <c>client-query-buffer-limit</c>); a client over it is closed. 0 = the store's segment size (a command's batch must fit
    /// one segment anyway), at least 1 MiB and at most 1 GiB.</summary>
    public long MaxQueryBufferBytes { get; init; }

    /// <summary>Replies and pushes a client has not read yet (Redis <c>client-output-buffer-limit</c>): at this many bytes
    /// the server stops reading that client's commands until it catches up, and a subscriber that falls this far behind is
    /// disconnected. Default 32 MiB.</summary>
    public long MaxOutputBufferBytes { get; init; } = 32L << 20;

    /// <summary>Whether <c>FLUSHDB</c>/<c>FLUSHALL</c> may delete every key. Default false: they answer an error.</summary>
    public bool AllowFlush { get; init; }

    /// <summary>The cluster's name, shown by INFO replication (<c>cluster_id:</c>) and BITCASK.RAFT STATUS on a server
    /// over a replicated node. Default null.</summary>
    public string? ClusterId { get; init; }

    /// <summary>Keyspace notifications at start (Redis <c>notify-keyspace-events</c>, e.g. "KEA"); empty = off. Clients may
    /// change it with <c>CONFIG SET notify-keyspace-events</c>.</summary>
    public string NotifyKeyspaceEvents { get; init; } = "";
}
