using System.Text;

namespace Bitcask.Server;

/// <summary>Redis's notify-keyspace-events classes.</summary>
[Flags]
internal enum NotifyFlags
{
    None = 0,
    Keyspace = 1 << 0,   // K
    Keyevent = 1 << 1,   // E
    Generic = 1 << 2,    // g
    String = 1 << 3,     // $
    List = 1 << 4,       // l
    Set = 1 << 5,        // s
    Hash = 1 << 6,       // h
    ZSet = 1 << 7,       // z
    Expired = 1 << 8,    // x
    Evicted = 1 << 9,    // e
    Stream = 1 << 10,    // t
    KeyMiss = 1 << 11,   // m
    New = 1 << 12,       // n
    Module = 1 << 13,    // d
    All = Generic | String | List | Set | Hash | ZSet | Expired | Evicted | Stream | Module,
}

/// <summary>
/// Keyspace notifications (<c>__keyspace@0__:key</c> → event, <c>__keyevent@0__:event</c> → key) fed from the store's
/// <see cref="BitcaskStore.Watch"/>: every committed change, including TTL expiry, whoever wrote it (this server or not).
/// The event names follow the value written: <c>set</c> for a string, <c>hset</c> for a hash, <c>del</c> for a delete,
/// <c>expired</c> for an expiry.
/// <para>Thread-safety: <see cref="Run"/> is one background loop per server.</para>
/// </summary>
internal static class KeyspaceNotifications
{
    private const string Order = "g$lshzxetd";

    public static NotifyFlags? Parse(string text)
    {
        var flags = NotifyFlags.None;
        foreach (var c in text)
            flags |= c switch
            {
                'A' => NotifyFlags.All,
                'g' => NotifyFlags.Generic,
                '$' => NotifyFlags.String,
                'l' => NotifyFlags.List,
                's' => NotifyFlags.Set,
                'h' => NotifyFlags.Hash,
                'z' => NotifyFlags.ZSet,
                'x' => NotifyFlags.Expired,
                'e' => NotifyFlags.Evicted,
                't' => NotifyFlags.Stream,
                'd' => NotifyFlags.Module,
                'K' => NotifyFlags.Keyspace,
                'E' => NotifyFlags.Keyevent,
                'm' => NotifyFlags.KeyMiss,
                'n' => NotifyFlags.New,
                _ => (NotifyFlags)(-1),
            };
        return flags < 0 ? null : flags;
    }

    /// <summary>Redis's canonical form (keyspaceEventsFlagsToString).</summary>
    public static string Format(NotifyFlags flags)
    {
        var text = new StringBuilder();
        if ((flags & NotifyFlags.All) == NotifyFlags.All) text.Append('A');
        else
            for (var i = 0; i < Order.Length; i++)
                if ((flags & Parse(Order[i].ToString())!.Value) != 0) text.Append(Order[i]);
        if ((flags & NotifyFlags.Keyspace) != 0) text.Append('K');
        if ((flags & NotifyFlags.Keyevent) != 0) text.Append('E');
        if ((flags & NotifyFlags.KeyMiss) != 0) text.Append('m');
        if ((flags & NotifyFlags.New) != 0) text.Append('n');
        return text.ToString();
    }

    /// <summary>Publishes notifications for every change from <paramref name="fromRevision"/> (the store's next revision when
    /// notifications were switched on, so no write acknowledged after that is missed) until <paramref name="ct"/> is
    /// cancelled.</summary>
    public static async Task Run(ServerState server, long fromRevision, CancellationToken ct)
    {
        try
        {
            await foreach (var change in server.Store.Watch(ReadOnlyMemory<byte>.Empty, fromRevision, ct).ConfigureAwait(false))
            {
                if (StoredValue.IsEngineKey(change.Key)) continue;
                var (name, type) = change.Kind switch
                {
                    WatchEventKind.Put when change.Value is not null && StoredValue.TypeOf(change.Value) == ValueType.Hash => ("hset", NotifyFlags.Hash),
                    WatchEventKind.Put => ("set", NotifyFlags.String),
                    WatchEventKind.Delete => ("del", NotifyFlags.Generic),
                    _ => ("expired", NotifyFlags.Expired),
                };
                Notify(server, change.Key, name, type);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static void Notify(ServerState server, byte[] key, string name, NotifyFlags type)
    {
        var flags = server.NotifyFlags;
        if ((flags & type) == 0) return;
        var eventBytes = Encoding.ASCII.GetBytes(name);
        if ((flags & NotifyFlags.Keyspace) != 0)
            server.PubSub.Publish([.. "__keyspace@0__:"u8, .. key], eventBytes);
        if ((flags & NotifyFlags.Keyevent) != 0)
            server.PubSub.Publish([.. "__keyevent@0__:"u8, .. eventBytes], key);
    }
}
