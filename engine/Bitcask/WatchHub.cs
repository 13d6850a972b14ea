using System.Threading.Channels;
using Bitcask.Format;

namespace Bitcask;

/// <summary>
/// Live watch subscriptions. The group-commit leader publishes every applied put and tombstone (after the keydir shows
/// it) to each subscriber whose prefix matches, through a bounded channel: a slow watcher never blocks writers. A
/// subscriber whose channel is full is marked lagging and its channel completed; the watch then catches up from the log
/// (<see cref="LogReplay"/>) from the last revision it delivered, and subscribes again.
/// <para>Thread-safety: every member is safe to call from any thread; publishing and subscribing share one lock, which
/// is what makes the switch from replay to live events exact.</para>
/// </summary>
internal sealed class WatchHub
{
    /// <summary>Events a watcher may fall behind by before it catches up from the log.</summary>
    public const int BufferedEvents = 4096;

    internal sealed class Subscriber(byte[] prefix)
    {
        public readonly byte[] Prefix = prefix;
        public readonly Channel<WatchEvent> Events = Channel.CreateBounded<WatchEvent>(
            new BoundedChannelOptions(BufferedEvents) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        public volatile bool Lagged;
    }

    private readonly Lock _lock = new();
    private Subscriber[] _subscribers = [];

    public bool HasSubscribers => Volatile.Read(ref _subscribers).Length > 0;

    /// <summary>Subscribes; <paramref name="appliedRevision"/> is read under the publish lock, so every change above the
    /// revision returned in <paramref name="subscribedAt"/> reaches the subscriber and none at or below it does later.</summary>
    public Subscriber Subscribe(byte[] prefix, Func<ulong> appliedRevision, out ulong subscribedAt)
    {
        var subscriber = new Subscriber(prefix);
        lock (_lock)
        {
            subscribedAt = appliedRevision();
            _subscribers = [.. _subscribers, subscriber];
        }
        return subscriber;
    }

    /// <summary>Publishes the applied revision under the subscription lock (leader only), so that
    /// <see cref="Subscribe"/> and the leader's check for subscribers cannot both miss each other.</summary>
    public void SetApplied(ref ulong applied, ulong revision)
    {
        lock (_lock) Volatile.Write(ref applied, revision);
    }

    public void Unsubscribe(Subscriber subscriber)
    {
        lock (_lock) _subscribers = _subscribers.Where(s => !ReferenceEquals(s, subscriber)).ToArray();
        subscriber.Events.Writer.TryComplete();
    }

    /// <summary>Ends every subscription (the store is closing): each watch then throws <see cref="ObjectDisposedException"/>.</summary>
    public void CompleteAll()
    {
        lock (_lock)
        {
            foreach (var s in _subscribers) s.Events.Writer.TryComplete();
            _subscribers = [];
        }
    }

    /// <summary>Publishes the puts and tombstones of one applied record (leader only).</summary>
    public void Publish(ReadOnlySpan<byte> record)
    {
        lock (_lock)
        {
            var subscribers = _subscribers;
            if (subscribers.Length == 0) return;
            var entries = new RecordEntries(record, 0);
            while (entries.Next(out _, out var entry))
            {
                var key = RecordCodec.Key(entry);
                if (Leases.IsReserved(key)) continue; // the engine's own keys
                WatchEvent? built = null;
                foreach (var s in subscribers)
                {
                    if (s.Lagged || !key.StartsWith(s.Prefix)) continue;
                    built ??= LogReplay.ToEvent(entry);
                    if (!s.Events.Writer.TryWrite(built.Value))
                    {
                        s.Lagged = true; // it catches up from the log once it has read what it holds
                        s.Events.Writer.TryComplete();
                    }
                }
            }
        }
    }
}
