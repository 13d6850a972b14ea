using System.Runtime.CompilerServices;
using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask;

// Watch (etcd semantics): changes under a prefix from a revision on, replayed from the log and then live, in revision
// order, with no gap and no duplicate at the switch.
public sealed partial class BitcaskStore
{
    private readonly WatchHub _watchers = new();

    /// <summary>How often a watch on a <see cref="BitcaskOptions.ReadOnly"/> store looks for what the writer appended.</summary>
    public static readonly TimeSpan ReadOnlyWatchPollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The changes to keys starting with <paramref name="prefix"/>: with <paramref name="fromRevision"/> = 0, live changes
    /// from now on; with N &gt; 0, every change with revision ≥ N, replayed from the log in revision order, then live, with
    /// no gap and no duplicate at the switch. A start below the oldest revision the log still holds (compaction removed
    /// it) throws <see cref="RevisionCompactedException"/> carrying that revision. TTL expiry shows up as an
    /// <see cref="WatchEventKind.Expire"/> event at the revision of the tombstone the engine writes for it. A slow watcher
    /// never blocks writers: it falls behind by at most <see cref="WatchHub.BufferedEvents"/> events in memory, then
    /// catches up from the log (or gets <see cref="RevisionCompactedException"/> if compaction removed what it missed).
    /// On a read-only store the watch reads what the writer appends, within <see cref="ReadOnlyWatchPollInterval"/>.
    /// </summary>
    public async IAsyncEnumerable<WatchEvent> Watch(ReadOnlyMemory<byte> prefix, long fromRevision = 0, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fromRevision);
        ThrowIfDisposed();
        var filter = prefix.ToArray();
        if (_writer is null)
        {
            await foreach (var e in WatchReadOnly(filter, (ulong)fromRevision, ct).ConfigureAwait(false)) yield return e;
            yield break;
        }
        ulong next = fromRevision > 0 ? (ulong)fromRevision : 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            ThrowIfDisposed();
            var subscriber = _watchers.Subscribe(filter, () => _writer.AppliedSequence, out var subscribedAt);
            try
            {
                if (next == 0) next = subscribedAt + 1;
                foreach (var e in ReplayFromLog(filter, next, subscribedAt)) yield return e;
                next = Math.Max(next, subscribedAt + 1);
                await foreach (var e in subscriber.Events.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    if ((ulong)e.Revision < next) continue; // already replayed
                    yield return e;
                    next = (ulong)e.Revision + 1;
                }
                ThrowIfDisposed();
                // The channel completed: this watcher fell behind (catch up from the log) or the store is closing.
            }
            finally
            {
                _watchers.Unsubscribe(subscriber);
            }
        }
    }

    /// <summary>The changes in [<paramref name="from"/>, <paramref name="through"/>] from this store's segments (none when
    /// <paramref name="from"/> is above <paramref name="through"/>); throws <see cref="RevisionCompactedException"/> when
    /// compaction removed some of them.</summary>
    private List<WatchEvent> ReplayFromLog(byte[] prefix, ulong from, ulong through)
    {
        if (from > through) return [];
        var horizon = LogReplay.Horizon(_segments);
        if (from < horizon) throw new RevisionCompactedException((long)from, (long)horizon);
        return LogReplay.Read(_segments, prefix, from, through);
    }

    /// <summary>A read-only store's watch: replays from its own segments, then polls the directory for what the writer
    /// appends to its write segments after them.</summary>
    private async IAsyncEnumerable<WatchEvent> WatchReadOnly(byte[] prefix, ulong from, [EnumeratorCancellation] CancellationToken ct)
    {
        var next = from == 0 ? _openedAtRevision + 1 : from;
        foreach (var e in ReplayFromLog(prefix, next, _openedAtRevision)) yield return e;
        next = Math.Max(next, _openedAtRevision + 1);
        var tail = new LogTail(_fs, Directory);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            ThrowIfDisposed();
            var events = tail.Poll(prefix, next, out var compactedBelow);
            // The writer compacted records this watch had not read yet: some changes may be gone from the log.
            if (compactedBelow > next) throw new RevisionCompactedException((long)next, (long)compactedBelow);
            foreach (var e in events)
            {
                yield return e;
                next = (ulong)e.Revision + 1;
            }
            await Task.Delay(ReadOnlyWatchPollInterval, ct).ConfigureAwait(false);
        }
    }
}
