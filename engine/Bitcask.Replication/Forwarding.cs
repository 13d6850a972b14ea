using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Bitcask.Replication;

/// <summary>Status of a forwarded write (FORMAT.md, "Write forwarding").</summary>
internal enum ForwardStatus : byte
{
    Applied = 0,
    NotLeader = 1,      // nothing was appended: safe to retry elsewhere
    CommandFailed = 2,  // applied, and the command failed (message)
    Unknown = 3,        // appended, outcome unknown (message)
}

internal readonly record struct ForwardReply(ForwardStatus Status, bool Succeeded, long Value, long Index, string? Message);

/// <summary>The leader's side of write forwarding: a small TCP server; each frame is one command payload, each reply
/// one result. Connections are handled concurrently, frames on one connection in order.</summary>
internal sealed class ForwardServer : IAsyncDisposable
{
    internal const int MaxFrame = 64 << 20;
    private readonly TcpListener _listener;
    private readonly Func<byte[], CancellationToken, Task<ForwardReply>> _handle;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<TcpClient, Task> _connections = new();
    private readonly Task _accept;

    internal ForwardServer(IPEndPoint endPoint, Func<byte[], CancellationToken, Task<ForwardReply>> handle, ILogger log)
    {
        _handle = handle;
        _log = log;
        _listener = new TcpListener(endPoint);
        _listener.Start(64);
        _accept = AcceptAsync();
    }

    internal IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException e) { _log.LogDebug(e, "forward accept failed"); continue; }
            client.NoDelay = true;
            _connections[client] = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        try
        {
            var stream = client.GetStream();
            var len = new byte[4];
            while (!_stop.IsCancellationRequested)
            {
                try { await stream.ReadExactlyAsync(len, _stop.Token).ConfigureAwait(false); }
                catch (EndOfStreamException) { return; }
                var n = BinaryPrimitives.ReadInt32LittleEndian(len);
                if (n is <= 0 or > MaxFrame) return; // not our protocol
                var payload = new byte[n];
                await stream.ReadExactlyAsync(payload, _stop.Token).ConfigureAwait(false);
                var reply = await _handle(payload, _stop.Token).ConfigureAwait(false);
                await stream.WriteAsync(Encode(reply), _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the peer went away or we are stopping
        }
        finally
        {
            client.Dispose();
            _connections.TryRemove(client, out _);
        }
    }

    private static byte[] Encode(ForwardReply r)
    {
        var msg = r.Message is null ? [] : Encoding.UTF8.GetBytes(r.Message.Length > 1000 ? r.Message[..1000] : r.Message);
        var bytes = new byte[1 + 1 + 8 + 8 + 2 + msg.Length];
        bytes[0] = (byte)r.Status;
        bytes[1] = r.Succeeded ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(2), r.Value);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(10), r.Index);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(18), (ushort)msg.Length);
        msg.CopyTo(bytes.AsSpan(20));
        return bytes;
    }

    internal static async Task<ForwardReply> ReadReplyAsync(Stream stream, CancellationToken token)
    {
        var head = new byte[20];
        await stream.ReadExactlyAsync(head, token).ConfigureAwait(false);
        var msgLen = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(18));
        string? message = null;
        if (msgLen > 0)
        {
            var msg = new byte[msgLen];
            await stream.ReadExactlyAsync(msg, token).ConfigureAwait(false);
            message = Encoding.UTF8.GetString(msg);
        }
        return new((ForwardStatus)head[0], head[1] != 0, BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(2)),
            BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(10)), message);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        foreach (var c in _connections.Keys) c.Dispose();
        try { await _accept.ConfigureAwait(false); } catch (Exception) { /* stopping */ }
        await Task.WhenAll(_connections.Values).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }
}

/// <summary>The follower's side: pooled connections to the leader's forward address. Thread-safe.</summary>
internal sealed class ForwardClient : IDisposable
{
    private readonly ConcurrentDictionary<string, ConcurrentBag<TcpClient>> _pool = new();
    private volatile bool _disposed;

    /// <summary>Sends one command. <see cref="ForwardStatus.NotLeader"/> is also returned when the connection could
    /// not be made (nothing was sent); an I/O error after sending becomes <see cref="ForwardStatus.Unknown"/>.</summary>
    internal async Task<ForwardReply> SendAsync(IPEndPoint target, byte[] payload, CancellationToken token)
    {
        var key = target.ToString();
        var bag = _pool.GetOrAdd(key, _ => []);
        if (!bag.TryTake(out var client))
        {
            client = new TcpClient(target.AddressFamily) { NoDelay = true };
            try { await client.ConnectAsync(target, token).ConfigureAwait(false); }
            catch (SocketException e)
            {
                client.Dispose();
                return new(ForwardStatus.NotLeader, false, 0, 0, e.Message);
            }
        }
        var frame = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32LittleEndian(frame, payload.Length);
        payload.CopyTo(frame.AsSpan(4));
        var stream = client.GetStream();
        try
        {
            try { await stream.WriteAsync(frame, token).ConfigureAwait(false); }
            catch (IOException e)
            {
                // A pooled connection the leader closed (it restarted): nothing was read by anyone.
                client.Dispose();
                return new(ForwardStatus.NotLeader, false, 0, 0, e.Message);
            }
            var reply = await ForwardServer.ReadReplyAsync(stream, token).ConfigureAwait(false);
            if (_disposed) client.Dispose(); else bag.Add(client);
            return reply;
        }
        catch (Exception e) when (e is IOException or SocketException or EndOfStreamException)
        {
            client.Dispose();
            return new(ForwardStatus.Unknown, false, 0, 0, "connection to the leader lost after sending: " + e.Message);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var bag in _pool.Values)
            while (bag.TryTake(out var c)) c.Dispose();
    }
}
