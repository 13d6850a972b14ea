using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bitcask.Cluster.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in the test process in front of every node's Raft listener: node i's identity (<c>--node</c>) is
/// 127.0.0.1:<see cref="ProxyPort"/>(i), and the proxy forwards what arrives there to its <c>--node-listen</c> port.
/// It can blackhole single directed links (from, to): it tells which node opened an inbound loopback connection by
/// finding the connection's source port in /proc/net/tcp(6), and that socket's inode among /proc/PID/fd of the node
/// processes. A blackholed link's open connections are closed and new ones are accepted and held without forwarding a
/// byte (the peer sees silence, as behind a dropped route) until <see cref="HealAll"/>, which closes them so the nodes
/// reconnect. Without a blackhole a new connection is forwarded at once, unidentified; a blackhole cuts every open
/// unidentified link into a node it names (the callers reconnect and are identified). A new connection whose opener
/// cannot be identified (e.g. one its caller already gave up on) is held only when all links into its target are cut.
/// Thread-safe.
/// </summary>
internal sealed class LinkProxy : IDisposable
{
    private sealed class Link(int to, Socket inbound)
    {
        /// <summary>The node that opened the link (null: not known, or not yet).</summary>
        public int? From { get; set; }
        public int To { get; } = to;
        public Socket Inbound { get; } = inbound;
        public Socket? Outbound { get; set; }

        public void Close()
        {
            try { Inbound.Dispose(); } catch (ObjectDisposedException) { }
            try { Outbound?.Dispose(); } catch (ObjectDisposedException) { }
        }
    }

    private readonly TcpListener[] _listeners;
    private readonly Func<int, int> _targetPort;
    private readonly Func<int, int?> _pidOf;
    private readonly object _gate = new();
    private readonly HashSet<(int From, int To)> _blocked = [];
    private readonly List<Link> _links = [];
    private readonly CancellationTokenSource _stop = new();
    private int _unidentified;
    private int _held;

    /// <param name="nodes">How many nodes.</param>
    /// <param name="targetPort">Node i's --node-listen port.</param>
    /// <param name="pidOf">Node i's process id while it runs (null: down).</param>
    public LinkProxy(int nodes, Func<int, int> targetPort, Func<int, int?> pidOf)
    {
        _targetPort = targetPort;
        _pidOf = pidOf;
        _listeners = new TcpListener[nodes];
        for (var i = 0; i < nodes; i++)
        {
            _listeners[i] = new TcpListener(IPAddress.Loopback, 0);
            _listeners[i].Start(128);
            var to = i;
            _ = Task.Run(() => AcceptLoop(to));
        }
    }

    public int ProxyPort(int node) => ((IPEndPoint)_listeners[node].LocalEndpoint).Port;

    /// <summary>Connections made while a blackhole was in place whose opener could not be identified (each was treated
    /// as from "unknown"), and connections held by a blackhole, so far. (Outside a partition a caller often closes its
    /// connection before it is identified; that only makes the next blackhole cut that link too.)</summary>
    public (int Unidentified, int Held) Counters => (Volatile.Read(ref _unidentified), Volatile.Read(ref _held));

    /// <summary>Cuts the directed link: connections <paramref name="from"/> opened to <paramref name="to"/>.</summary>
    public void Blackhole(int from, int to)
    {
        List<Link> cut;
        lock (_gate)
        {
            _blocked.Add((from, to));
            cut = [.. _links.Where(l => MightBeBlocked(l.From, l.To) && l.Outbound is not null)];
        }
        foreach (var link in cut) link.Close();
    }

    /// <summary>A full partition of <paramref name="node"/>: every link into and out of it.</summary>
    public void Isolate(int node)
    {
        for (var other = 0; other < _listeners.Length; other++)
        {
            if (other == node) continue;
            Blackhole(node, other);
            Blackhole(other, node);
        }
    }

    /// <summary>Removes every blackhole and closes the held connections (the nodes reconnect).</summary>
    public void HealAll()
    {
        List<Link> held;
        lock (_gate)
        {
            _blocked.Clear();
            held = [.. _links.Where(l => l.Outbound is null)];
        }
        foreach (var link in held) link.Close();
    }

    /// <summary>Whether a new connection from <paramref name="from"/> is held. One whose caller could not be identified
    /// is held only when every other node's link into <paramref name="to"/> is cut (an isolated node's inbound side):
    /// holding it elsewhere could cut a link of the majority and stall its election, which no partition asked for.</summary>
    private bool Blocked(int? from, int to) => from is { } f
        ? _blocked.Contains((f, to))
        : Enumerable.Range(0, _listeners.Length).Where(n => n != to).All(n => _blocked.Contains((n, to)));

    /// <summary>Whether an open link may be one a new blackhole cuts (an unidentified one: if any link into its target
    /// is cut; its caller reconnects and is identified then).</summary>
    private bool MightBeBlocked(int? from, int to) => from is { } f ? _blocked.Contains((f, to)) : _blocked.Any(b => b.To == to);

    private async Task AcceptLoop(int to)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket inbound;
            try
            {
                inbound = await _listeners[to].AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            _ = Task.Run(() => Handle(inbound, to));
        }
    }

    private async Task Handle(Socket inbound, int to)
    {
        inbound.NoDelay = true;
        var sourcePort = ((IPEndPoint)inbound.RemoteEndPoint!).Port;
        var link = new Link(to, inbound);
        bool partitioned;
        lock (_gate)
        {
            _links.Add(link);
            partitioned = _blocked.Count > 0;
        }
        try
        {
            if (partitioned)
            {
                // While a blackhole is in place, find out who is calling before forwarding a byte. (Without one, a link
                // is forwarded at once and never identified: identifying every connection the nodes open costs the
                // test process enough /proc reads to delay Raft's vote requests past their timeouts. A blackhole cuts
                // every unidentified link into a node it names; those callers reconnect and are identified then.)
                link.From = await IdentifyAsync(sourcePort, to);
                bool hold;
                lock (_gate) hold = Blocked(link.From, to);
                if (hold)
                {
                    Interlocked.Increment(ref _held);
                    // Hold: read nothing, answer nothing, until a heal closes it or the peer gives up.
                    var buffer = new byte[1];
                    while (await inbound.ReceiveAsync(buffer, SocketFlags.Peek, _stop.Token) > 0) await Task.Delay(100, _stop.Token);
                    return;
                }
            }
            var outbound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            lock (_gate) link.Outbound = outbound;
            await outbound.ConnectAsync(IPAddress.Loopback, _targetPort(to), _stop.Token);
            using var upstream = new NetworkStream(outbound, ownsSocket: false);
            using var downstream = new NetworkStream(inbound, ownsSocket: false);
            var a = upstream.CopyToAsync(downstream, _stop.Token);
            var b = downstream.CopyToAsync(upstream, _stop.Token);
            await Task.WhenAny(a, b);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // a closed or reset side, or a blackhole: the link ends
        }
        finally
        {
            lock (_gate) _links.Remove(link);
            link.Close();
        }
    }

    /// <summary><see cref="Identify"/>, retried briefly (the caller's socket can be a moment away from its fd table).</summary>
    private async Task<int?> IdentifyAsync(int sourcePort, int to)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (Identify(sourcePort, ProxyPort(to)) is { } from) return from;
            await Task.Delay(5);
        }
        Interlocked.Increment(ref _unidentified);
        return null;
    }

    /// <summary>Which node process has the client end of the loopback connection from <paramref name="sourcePort"/> to
    /// <paramref name="proxyPort"/> (null: none found).</summary>
    private int? Identify(int sourcePort, int proxyPort)
    {
        var inode = FindInode(sourcePort, proxyPort);
        if (inode is null) return null;
        var target = $"socket:[{inode}]";
        for (var node = 0; node < _listeners.Length; node++)
        {
            if (_pidOf(node) is not { } pid) continue;
            try
            {
                foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
                {
                    try
                    {
                        if (new FileInfo(fd).LinkTarget == target) return node;
                    }
                    catch (IOException) { }
                    catch (UnauthorizedAccessException) { }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return null;
    }

    private static string? FindInode(int localPort, int remotePort)
    {
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            string[] lines;
            try { lines = File.ReadAllLines(table); } catch (IOException) { continue; }
            foreach (var line in lines.Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10) continue;
                if (PortOf(fields[1]) == localPort && PortOf(fields[2]) == remotePort && fields[9] != "0") return fields[9];
            }
        }
        return null;
    }

    private static int PortOf(string hexAddress) =>
        int.Parse(hexAddress[(hexAddress.LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var listener in _listeners) listener.Stop();
        List<Link> links;
        lock (_gate) links = [.. _links];
        foreach (var link in links) link.Close();
    }
}
