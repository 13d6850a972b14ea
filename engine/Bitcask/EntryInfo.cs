namespace Bitcask;

/// <summary>
/// What the store knows about a key's live value, read from the same record as the value (etcd's key metadata).
/// </summary>
/// <param name="Version">The revision of the key's newest write (etcd <c>mod_revision</c>): the sequence number of its
/// record. Only grows, also across reopen and compaction. <see cref="BitcaskStore.CompareAndSet(ReadOnlySpan{byte}, long, ReadOnlySpan{byte}, WriteOptions)"/> takes it.</param>
/// <param name="CreateRevision">The revision of the put that created the live value: after a delete (or expiry) the next
/// put creates the key again. For records written before format version 2 it is the record's own revision.</param>
/// <param name="ExpiresAt">When the value expires (null: never).</param>
/// <param name="LeaseId">The lease the value is attached to (0: none).</param>
/// <param name="ValueLength">Length of the value as a reader gets it (after decompression).</param>
public readonly record struct EntryInfo(long Version, long CreateRevision, DateTimeOffset? ExpiresAt, long LeaseId, int ValueLength);

/// <summary>
/// Per-call write options: they override the store's <see cref="BitcaskOptions.Durability"/> for one write (a
/// <see cref="Durability.Flushed"/> store can make one write <see cref="Durability.Synced"/>, and the reverse), give it
/// a time to live, or attach it to a lease.
/// </summary>
public readonly record struct WriteOptions(Durability? Durability = null, TimeSpan? TimeToLive = null, long LeaseId = 0);

/// <summary>What <see cref="KeyUpdate{TState, TResult}"/> decides for the key.</summary>
public readonly struct KeyUpdateAction
{
    internal enum ActionKind : byte { Keep, Put, Delete }

    internal ActionKind Kind { get; }
    internal ReadOnlyMemory<byte> Value { get; }
    internal TimeSpan? TimeToLive { get; }

    private KeyUpdateAction(ActionKind kind, ReadOnlyMemory<byte> value, TimeSpan? timeToLive)
    {
        Kind = kind;
        Value = value;
        TimeToLive = timeToLive;
    }

    /// <summary>Leave the key as it is (the update is then only a read).</summary>
    public static KeyUpdateAction Keep => default;

    /// <summary>Store <paramref name="value"/>, with a time to live or none.</summary>
    public static KeyUpdateAction Put(ReadOnlyMemory<byte> value, TimeSpan? timeToLive = null)
    {
        if (timeToLive is { } ttl) BitcaskStore.ValidateTtl(ttl);
        return new(ActionKind.Put, value, timeToLive);
    }

    /// <summary>Delete the key.</summary>
    public static KeyUpdateAction Delete => new(ActionKind.Delete, default, null);
}

/// <summary>
/// An atomic read-modify-write of one key for <see cref="BitcaskStore.Update"/>: given the current value (empty and
/// <paramref name="current"/> null when the key is absent), decide what to do and return a result. It may run more than
/// once (when another write to the key wins the race, it runs again on the newer value) and must be pure.
/// </summary>
public delegate TResult KeyUpdate<TState, TResult>(ReadOnlySpan<byte> value, EntryInfo? current, TState state, out KeyUpdateAction action);

/// <summary>A write named a lease that does not exist (never granted, revoked, or expired).</summary>
public sealed class LeaseNotFoundException(long leaseId)
    : InvalidOperationException($"Lease {leaseId} does not exist: it was never granted, or it was revoked or expired.")
{
    /// <summary>The lease the write named.</summary>
    public long LeaseId { get; } = leaseId;
}
