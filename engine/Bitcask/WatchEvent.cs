namespace Bitcask;

/// <summary>What happened to a key in a <see cref="WatchEvent"/>.</summary>
public enum WatchEventKind
{
    /// <summary>A put: <see cref="WatchEvent.Value"/> holds the new value.</summary>
    Put,
    /// <summary>A delete (also of a key whose lease was revoked or expired).</summary>
    Delete,
    /// <summary>The key's time to live ran out; the engine wrote its tombstone at <see cref="WatchEvent.Revision"/>.</summary>
    Expire,
}

/// <summary>
/// One change seen by <see cref="BitcaskStore.Watch"/>: the key, its new value (puts only), the revision that made the
/// change and the key's version just before it (0 when the key was absent). The arrays belong to the event; do not
/// change them (every watcher of the change gets the same ones).
/// </summary>
public readonly record struct WatchEvent(WatchEventKind Kind, byte[] Key, byte[]? Value, long Revision, long PreviousVersion);

/// <summary>
/// A watch asked for changes from a revision that compaction has already removed from the log. Reload the current
/// state (reads, or a scan) and watch again from <see cref="CompactedRevision"/> or later.
/// </summary>
public sealed class RevisionCompactedException(long requestedRevision, long compactedRevision)
    : InvalidOperationException($"Revision {requestedRevision} has been compacted: the oldest revision the log still holds in full is {compactedRevision}. Reload the state and watch from there.")
{
    /// <summary>The revision the watch asked to start from.</summary>
    public long RequestedRevision { get; } = requestedRevision;
    /// <summary>The oldest revision a watch can start from now.</summary>
    public long CompactedRevision { get; } = compactedRevision;
}
