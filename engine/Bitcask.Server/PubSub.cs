using Bitcask.Server.Protocol;

namespace Bitcask.Server;

/// <summary>
/// Channels and patterns and their subscribers. PUBLISH writes the message into each subscriber's output at once (a
/// subscriber that falls too far behind is disconnected by its own output limit, never slowing the publisher).
/// <para>Thread-safety: all members are safe to call concurrently.</para>
/// </summary>
internal sealed class PubSub
{
    private readonly Lock _lock = new();
    private readonly Dictionary<byte[], HashSet<Connection>> _channels = new(BytesComparer.Instance);
    private readonly Dictionary<byte[], HashSet<Connection>> _patterns = new(BytesComparer.Instance);

    public int ChannelCount { get { lock (_lock) return _channels.Count; } }
    public int PatternCount { get { lock (_lock) return _patterns.Count; } }

    public bool Subscribe(Connection client, byte[] channel, bool pattern)
    {
        lock (_lock)
        {
            var map = pattern ? _patterns : _channels;
            if (!map.TryGetValue(channel, out var set)) map[channel] = set = [];
            return set.Add(client);
        }
    }

    public bool Unsubscribe(Connection client, byte[] channel, bool pattern)
    {
        lock (_lock)
        {
            var map = pattern ? _patterns : _channels;
            if (!map.TryGetValue(channel, out var set) || !set.Remove(client)) return false;
            if (set.Count == 0) map.Remove(channel);
            return true;
        }
    }

    /// <summary>Drops every subscription of a client (it disconnected or ran RESET).</summary>
    public void UnsubscribeAll(Connection client)
    {
        foreach (var channel in client.Channels) Unsubscribe(client, channel, pattern: false);
        foreach (var pattern in client.Patterns) Unsubscribe(client, pattern, pattern: true);
        client.Channels.Clear();
        client.Patterns.Clear();
    }

    public List<byte[]> Channels(byte[]? pattern)
    {
        lock (_lock) return [.. _channels.Keys.Where(c => pattern is null || Glob.Match(pattern, c))];
    }

    public int SubscriberCount(byte[] channel)
    {
        lock (_lock) return _channels.TryGetValue(channel, out var set) ? set.Count : 0;
    }

    /// <summary>How many subscriptions (channel and pattern) a message to <paramref name="channel"/> would reach now.</summary>
    public int CountReceivers(byte[] channel)
    {
        lock (_lock)
        {
            var count = _channels.TryGetValue(channel, out var set) ? set.Count : 0;
            foreach (var (pattern, clients) in _patterns)
                if (Glob.Match(pattern, channel)) count += clients.Count;
            return count;
        }
    }

    /// <summary>Delivers to subscribers of the channel and of every matching pattern; returns how many received it.</summary>
    public int Publish(byte[] channel, byte[] message)
    {
        List<Connection> direct;
        List<(byte[] Pattern, Connection Client)> byPattern = [];
        lock (_lock)
        {
            direct = _channels.TryGetValue(channel, out var set) ? [.. set] : [];
            foreach (var (pattern, clients) in _patterns)
                if (Glob.Match(pattern, channel))
                    foreach (var c in clients) byPattern.Add((pattern, c));
        }
        foreach (var client in direct)
            client.Push(w =>
            {
                w.Push(3);
                w.Bulk("message"u8);
                w.Bulk(channel);
                w.Bulk(message);
            });
        foreach (var (pattern, client) in byPattern)
            client.Push(w =>
            {
                w.Push(4);
                w.Bulk("pmessage"u8);
                w.Bulk(pattern);
                w.Bulk(channel);
                w.Bulk(message);
            });
        return direct.Count + byPattern.Count;
    }
}
