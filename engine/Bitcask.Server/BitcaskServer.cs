using System.Net;
using System.Net.Sockets;
using Bitcask.Replication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bitcask.Server;

/// <summary>
/// Serves a <see cref="BitcaskStore"/> over the Redis protocol (RESP2 and RESP3) so that stock Redis clients work against
/// it: strings, counters, TTLs, hashes, transactions, pub/sub and keyspace notifications (README, "Server"). Every write
/// is acknowledged once the store acknowledged it, so in <see cref="Durability.Synced"/> mode a reply means the write is
/// on disk (writes from all clients share one fdatasync per group).
/// <para>The caller owns the store: the server never disposes it. Thread-safety: all members are safe to call
/// concurrently; <see cref="StartAsync"/> once.</para>
/// </summary>
public sealed class BitcaskServer : IAsyncDisposable
{
    private readonly ServerState _state;
    private readonly BitcaskServerOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connectionTasks = [];
    private readonly Lock _lock = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private Task? _idleLoop;
    private CancellationTokenSource? _notifications;
    private Task? _notificationLoop;
    private long _nextId;
    private int _stopped;

    /// <summary>Creates a server for <paramref name="store"/> (not started). Throws <see cref="ArgumentException"/> when
    /// the options are unsafe or invalid: a non-loopback <see cref="BitcaskServerOptions.BindAddress"/> without a password,
    /// a port outside 0–65535, a non-positive client limit.</summary>
    public BitcaskServer(BitcaskStore store, BitcaskServerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _options = Validated(options);
        if (store.Options.ReadOnly)
            throw new ArgumentException("The store is open read-only; the server needs a writable store.", nameof(store));
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Bitcask.Server");
        _state = new ServerState(store, _options, logger);
        _state.NotifyFlagsChanged = UpdateNotifications;
    }

    /// <summary>Creates a server for one node of a replicated store (not started): every mutating command becomes one Raft
    /// log entry (forwarded to the leader from a follower), reads are linearizable after a read barrier unless the client
    /// sent READONLY, and INFO/ROLE show the node as master (leader) or slave (README, "Cluster"). The node should publish
    /// this server's address as <see cref="ReplicatedStore.ClientAddressMetadataKey"/> in its member metadata, so that
    /// the other nodes can name it as master. The caller owns the node: the server never disposes it. Throws
    /// <see cref="ArgumentException"/> as the other constructor does.</summary>
    public BitcaskServer(ReplicatedStore node, BitcaskServerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        _options = Validated(options);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Bitcask.Server");
        _state = new ServerState(node, _options, logger);
        _state.NotifyFlagsChanged = UpdateNotifications;
    }

    private static BitcaskServerOptions Validated(BitcaskServerOptions? given)
    {
        var options = given ?? new BitcaskServerOptions();
        if (options.Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(options), options.Port, "Port must be between 0 and 65535.");
        if (options.MaxClients < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxClients, "MaxClients must be at least 1.");
        if (options.MaxOutputBufferBytes < 1024)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxOutputBufferBytes, "MaxOutputBufferBytes must be at least 1024.");
        if (options.Password is { Length: 0 })
            throw new ArgumentException("The password is empty; give a non-empty one, or null for no authentication.", nameof(options));
        if (!IPAddress.IsLoopback(options.BindAddress) && options.Password is null)
            throw new ArgumentException(
                $"Refusing to listen on {options.BindAddress} without a password: anyone who can reach the address could read and write the store. " +
                "Set a password (requirepass) or bind a loopback address.", nameof(options));
        return options;
    }

    /// <summary>The address and port the server listens on (the real port when <see cref="BitcaskServerOptions.Port"/> is
    /// 0); null before <see cref="StartAsync"/>.</summary>
    public IPEndPoint? EndPoint => _listener?.LocalEndPoint as IPEndPoint;

    /// <summary>The number of connected clients.</summary>
    public int ClientCount => _state.Clients.Count;

    /// <summary>Binds and starts accepting clients; returns once the socket listens.</summary>
    public Task StartAsync(CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        lock (_lock)
        {
            if (_listener is not null) throw new InvalidOperationException("The server is already started.");
            var listener = new Socket(_options.BindAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                listener.Bind(new IPEndPoint(_options.BindAddress, _options.Port));
                listener.Listen(512);
            }
            catch
            {
                listener.Dispose();
                throw;
            }
            _listener = listener;
            _state.Port = EndPoint!.Port;
            _acceptLoop = Task.Run(AcceptLoop);
            if (_options.IdleTimeout > TimeSpan.Zero) _idleLoop = Task.Run(IdleLoop);
            _state.Cluster?.Start();
            UpdateNotifications();
        }
        _state.Logger.LogInformation("Serving {Directory} on {EndPoint} ({Durability})", _state.Store.Directory, EndPoint, _state.Durability);
        return Task.CompletedTask;
    }

    private async Task AcceptLoop()
    {
        var listener = _listener!;
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            socket.NoDelay = true;
            if (_state.Clients.Count >= _options.MaxClients)
            {
                Interlocked.Increment(ref _state.Stats.Rejected);
                _ = RejectAsync(socket);
                continue;
            }
            Interlocked.Increment(ref _state.Stats.Connections);
            var connection = new Connection(socket, _state, Interlocked.Increment(ref _nextId));
            _state.Clients[connection.Id] = connection;
            var task = Task.Run(async () =>
            {
                try
                {
                    await connection.RunAsync().ConfigureAwait(false);
                }
                finally
                {
                    _state.Clients.TryRemove(connection.Id, out _);
                }
            });
            lock (_lock)
            {
                _connectionTasks.RemoveAll(t => t.IsCompleted);
                _connectionTasks.Add(task);
            }
        }
    }

    private static async Task RejectAsync(Socket socket)
    {
        try
        {
            await socket.SendAsync("-ERR max number of clients reached\r\n"u8.ToArray(), SocketFlags.None).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    private async Task IdleLoop()
    {
        var limit = (long)_options.IdleTimeout.TotalMilliseconds;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(limit / 4, 10, 1000));
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(period, _stop.Token).ConfigureAwait(false);
                var now = Environment.TickCount64;
                foreach (var client in _state.Clients.Values)
                    if (!client.Subscribed && now - client.LastActivity > limit)
                    {
                        Interlocked.Increment(ref _state.Stats.IdleDisconnects);
                        client.Abort();
                    }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void UpdateNotifications()
    {
        lock (_lock)
        {
            var on = _state.NotifyFlags != NotifyFlags.None && _listener is not null && !_stop.IsCancellationRequested;
            if (on && _notifications is null)
            {
                _notifications = new CancellationTokenSource();
                var token = _notifications.Token;
                var from = _state.Store.Revision + 1; // every write acknowledged after CONFIG SET is reported
                _notificationLoop = Task.Run(() => KeyspaceNotifications.Run(_state, from, token));
            }
            else if (!on && _notifications is not null)
            {
                _notifications.Cancel();
                _notifications = null;
            }
        }
    }

    /// <summary>
    /// Graceful shutdown: stops accepting, lets every client finish the command it is running and receive its replies
    /// (for at most <paramref name="timeout"/>, default 10 s, then closes the rest), and syncs the store so every
    /// acknowledged write is on disk.
    /// </summary>
    public async Task StopAsync(TimeSpan? timeout = null)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        foreach (var client in _state.Clients.Values) client.RequestStop();
        Task[] running;
        lock (_lock) running = [.. _connectionTasks];
        var all = Task.WhenAll(running);
        if (await Task.WhenAny(all, Task.Delay(timeout ?? TimeSpan.FromSeconds(10))).ConfigureAwait(false) != all)
        {
            foreach (var client in _state.Clients.Values) client.Abort();
            await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        }
        UpdateNotifications();
        if (_notificationLoop is not null) await _notificationLoop.ConfigureAwait(false);
        if (_idleLoop is not null) await _idleLoop.ConfigureAwait(false);
        if (_state.Cluster is not null) await _state.Cluster.StopAsync().ConfigureAwait(false);
        try
        {
            _state.Store.Sync();
        }
        catch (ObjectDisposedException)
        {
            // the owner closed the store first (its Dispose synced)
        }
        _state.Scripts?.Dispose();
        _state.Logger.LogInformation("Server stopped");
    }

    /// <summary>Same as <see cref="StopAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
