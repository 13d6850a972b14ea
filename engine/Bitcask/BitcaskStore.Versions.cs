using System.Buffers;
using System.Buffers.Text;
using Bitcask.Format;

namespace Bitcask;

/// <summary>What a read found in a record besides the value.</summary>
internal readonly record struct RecordMeta(ulong Sequence, ulong CreateRevision, long ExpiresAt, long LeaseId, int ValueLength)
{
    public EntryInfo ToInfo() => new((long)Sequence, (long)CreateRevision,
        ExpiresAt == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(ExpiresAt), LeaseId, ValueLength);
}

// Versions and conditional writes: every condition is checked by the group-commit leader against the newest state at the
// moment the record is appended (SegmentWriter.ConditionsHold), so each of these calls is linearizable with every other
// write to its key, and each is one record (or one batch) in the log: crash recovery needs nothing beyond the prefix rule.
public sealed partial class BitcaskStore
{
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_updateBuffer;

    /// <summary>The revision of the newest committed write (the highest sequence number the store has handed out and
    /// applied). Only grows, also across reopen and compaction. A read-only store reports the revision it opened at.</summary>
    public long Revision => (long)(_writer?.AppliedSequence ?? _openedAtRevision);

    /// <summary>The key's metadata (version, create revision, expiry, lease, value length) without reading the value; null
    /// when the key is absent or expired.</summary>
    public EntryInfo? GetInfo(ReadOnlySpan<byte> key)
    {
        byte[]? unused = null;
        return Read(key, ref unused, null, decode: false, out var meta) ? meta.ToInfo() : null;
    }

    /// <summary>Writes the value of <paramref name="key"/> into <paramref name="value"/> and returns true with its
    /// metadata, read from the same record; false when absent or expired.</summary>
    public bool TryGetEntry(ReadOnlySpan<byte> key, IBufferWriter<byte> value, out EntryInfo info)
    {
        ArgumentNullException.ThrowIfNull(value);
        byte[]? unused = null;
        var found = Read(key, ref unused, value, decode: true, out var meta);
        info = found ? meta.ToInfo() : default;
        return found;
    }

    /// <summary>Stores the value only when <paramref name="key"/> has no live value. Returns whether it was stored.</summary>
    public bool PutIfAbsent(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TimeSpan? timeToLive = null) =>
        CompareAndSet(key, 0, value, timeToLive);

    /// <summary>Stores the value only when the key's current version is <paramref name="expectedVersion"/> (0: the key must
    /// be absent). Returns whether it was stored.</summary>
    public bool CompareAndSet(ReadOnlySpan<byte> key, long expectedVersion, ReadOnlySpan<byte> value, TimeSpan? timeToLive = null) =>
        CompareAndSet(key, expectedVersion, value, new WriteOptions(TimeToLive: timeToLive));

    /// <summary><see cref="CompareAndSet(ReadOnlySpan{byte}, long, ReadOnlySpan{byte}, TimeSpan?)"/> with per-call
    /// durability, time to live and lease.</summary>
    public bool CompareAndSet(ReadOnlySpan<byte> key, long expectedVersion, ReadOnlySpan<byte> value, WriteOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expectedVersion);
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        var leaseCondition = EncodeConditionalPut(request, key, value, options, expectedVersion);
        commit.Submit(request);
        var stored = Outcome(request, leaseCondition, options.LeaseId);
        Telemetry.Done(start, Directory, Telemetry.Cas, bytesWritten: stored ? request.Length : 0);
        return stored;
    }

    /// <summary>Asynchronous <see cref="CompareAndSet(ReadOnlySpan{byte}, long, ReadOnlySpan{byte}, WriteOptions)"/>: the
    /// caller's thread is released while a <see cref="Durability.Synced"/> group's fdatasync runs.</summary>
    public async ValueTask<bool> CompareAndSetAsync(ReadOnlyMemory<byte> key, long expectedVersion, ReadOnlyMemory<byte> value,
        WriteOptions options = default, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expectedVersion);
        ct.ThrowIfCancellationRequested();
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = new WriteRequest();
        var leaseCondition = EncodeConditionalPut(request, key.Span, value.Span, options, expectedVersion);
        await commit.SubmitAsync(request).ConfigureAwait(false);
        var stored = Outcome(request, leaseCondition, options.LeaseId);
        Telemetry.Done(start, Directory, Telemetry.Cas, bytesWritten: stored ? request.Length : 0);
        return stored;
    }

    /// <summary>Asynchronous <see cref="PutIfAbsent"/>.</summary>
    public ValueTask<bool> PutIfAbsentAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, WriteOptions options = default, CancellationToken ct = default) =>
        CompareAndSetAsync(key, 0, value, options, ct);

    /// <summary>Deletes the key only when its current version is <paramref name="expectedVersion"/> (&gt; 0). Returns whether
    /// it was deleted.</summary>
    public bool CompareAndDelete(ReadOnlySpan<byte> key, long expectedVersion)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expectedVersion);
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        EncodeConditionalDelete(request, key, expectedVersion, durability: null);
        commit.Submit(request);
        var deleted = Outcome(request, -1, 0);
        Telemetry.Done(start, Directory, Telemetry.CompareAndDelete, bytesWritten: deleted ? request.Length : 0);
        return deleted;
    }

    /// <summary>Asynchronous <see cref="CompareAndDelete"/>.</summary>
    public async ValueTask<bool> CompareAndDeleteAsync(ReadOnlyMemory<byte> key, long expectedVersion, Durability? durability = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expectedVersion);
        ct.ThrowIfCancellationRequested();
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = new WriteRequest();
        EncodeConditionalDelete(request, key.Span, expectedVersion, durability);
        await commit.SubmitAsync(request).ConfigureAwait(false);
        var deleted = Outcome(request, -1, 0);
        Telemetry.Done(start, Directory, Telemetry.CompareAndDelete, bytesWritten: deleted ? request.Length : 0);
        return deleted;
    }

    /// <summary>
    /// Applies the batch atomically when every one of its conditions holds at commit (see <see cref="WriteBatch.RequireVersion"/>);
    /// returns false, and writes nothing, when one does not. A batch without conditions always applies.
    /// </summary>
    public bool TryWrite(WriteBatch batch, Durability? durability = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var commit = WritableCommit();
        if (batch.Count == 0) return batch.ConditionCount == 0 || ConditionsHoldNow(batch);
        var start = Telemetry.Start();
        var request = t_request ??= new WriteRequest();
        var firstLease = EncodeConditionalBatch(batch, request, durability);
        commit.Submit(request);
        var applied = BatchOutcome(request, batch, firstLease);
        Telemetry.Done(start, Directory, Telemetry.Transaction, bytesWritten: applied ? request.Length : 0);
        return applied;
    }

    /// <summary>Asynchronous <see cref="TryWrite"/>.</summary>
    public async ValueTask<bool> TryWriteAsync(WriteBatch batch, Durability? durability = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ct.ThrowIfCancellationRequested();
        var commit = WritableCommit();
        if (batch.Count == 0) return batch.ConditionCount == 0 || ConditionsHoldNow(batch);
        var start = Telemetry.Start();
        var request = new WriteRequest();
        var firstLease = EncodeConditionalBatch(batch, request, durability);
        await commit.SubmitAsync(request).ConfigureAwait(false);
        var applied = BatchOutcome(request, batch, firstLease);
        Telemetry.Done(start, Directory, Telemetry.Transaction, bytesWritten: applied ? request.Length : 0);
        return applied;
    }

    /// <summary>Stores a value attached to lease <paramref name="leaseId"/> (<see cref="GrantLease"/>): it is deleted when the
    /// lease is revoked or expires. Throws <see cref="LeaseNotFoundException"/> when the lease is gone.</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long leaseId)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(leaseId);
        Put(key, value, new WriteOptions(LeaseId: leaseId));
    }

    /// <summary>Stores a value with per-call durability, time to live and lease (<see cref="WriteOptions"/>).</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, WriteOptions options)
    {
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        var leaseCondition = EncodeConditionalPut(request, key, value, options, expectedVersion: null);
        commit.Submit(request);
        Outcome(request, leaseCondition, options.LeaseId);
        Telemetry.Done(start, Directory, Telemetry.Put, bytesWritten: request.Length);
    }

    /// <summary>Asynchronous <see cref="Put(ReadOnlySpan{byte}, ReadOnlySpan{byte}, WriteOptions)"/>.</summary>
    public async ValueTask PutAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, WriteOptions options, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        var start = Telemetry.Start();
        var commit = WritableCommit();
        var request = new WriteRequest();
        var leaseCondition = EncodeConditionalPut(request, key.Span, value.Span, options, expectedVersion: null);
        await commit.SubmitAsync(request).ConfigureAwait(false);
        Outcome(request, leaseCondition, options.LeaseId);
        Telemetry.Done(start, Directory, Telemetry.Put, bytesWritten: request.Length);
    }

    /// <summary>
    /// Adds <paramref name="delta"/> to the 64-bit integer stored as ASCII decimal under <paramref name="key"/> and returns
    /// the new value (Redis INCRBY): a missing key counts as 0 and is created (with <paramref name="timeToLiveIfCreated"/>);
    /// an existing key keeps its expiry and lease. A value that is not a decimal integer, or a result that overflows,
    /// throws <see cref="InvalidOperationException"/> and changes nothing.
    /// </summary>
    public long Increment(ReadOnlySpan<byte> key, long delta = 1, TimeSpan? timeToLiveIfCreated = null)
    {
        if (timeToLiveIfCreated is { } ttl) ValidateTtl(ttl);
        var start = Telemetry.Start();
        Span<byte> digits = stackalloc byte[24];
        var buffer = t_updateBuffer ??= new ArrayBufferWriter<byte>(64);
        while (true)
        {
            buffer.ResetWrittenCount();
            var found = TryGetEntry(key, buffer, out var info);
            var next = Add(found ? buffer.WrittenSpan : default, delta, key);
            Utf8Formatter.TryFormat(next, digits, out var written);
            var commit = WritableCommit();
            var request = t_request ??= new WriteRequest();
            var leaseCondition = PrepareIncrement(request, key, digits[..written], found, info, timeToLiveIfCreated);
            commit.Submit(request);
            if (Outcome(request, leaseCondition, info.LeaseId))
            {
                Telemetry.Done(start, Directory, Telemetry.Increment, bytesWritten: request.Length);
                return next;
            }
        }
    }

    /// <summary>Asynchronous <see cref="Increment"/>: the thread is released while a Synced group's fdatasync runs.</summary>
    public async ValueTask<long> IncrementAsync(ReadOnlyMemory<byte> key, long delta = 1, TimeSpan? timeToLiveIfCreated = null, CancellationToken ct = default)
    {
        if (timeToLiveIfCreated is { } ttl) ValidateTtl(ttl);
        var start = Telemetry.Start();
        var buffer = new ArrayBufferWriter<byte>(64);
        var digits = new byte[24];
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            buffer.ResetWrittenCount();
            var found = TryGetEntry(key.Span, buffer, out var info);
            var next = Add(found ? buffer.WrittenSpan : default, delta, key.Span);
            Utf8Formatter.TryFormat(next, digits, out var written);
            var commit = WritableCommit();
            var request = new WriteRequest();
            var leaseCondition = PrepareIncrement(request, key.Span, digits.AsSpan(0, written), found, info, timeToLiveIfCreated);
            await commit.SubmitAsync(request).ConfigureAwait(false);
            if (Outcome(request, leaseCondition, info.LeaseId))
            {
                Telemetry.Done(start, Directory, Telemetry.Increment, bytesWritten: request.Length);
                return next;
            }
        }
    }

    /// <summary>The conditional put of one increment step: the key must still have the version read (or still be absent);
    /// an existing key keeps its absolute expiry and its lease.</summary>
    private int PrepareIncrement(WriteRequest request, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool found, EntryInfo info, TimeSpan? timeToLiveIfCreated)
    {
        var expiresAt = found ? info.ExpiresAt?.ToUnixTimeMilliseconds() ?? 0 : timeToLiveIfCreated is { } ttl ? ExpiryFor(ttl) : 0;
        return PreparePut(request, key, value, expiresAt, found ? info.LeaseId : 0, found ? info.Version : 0, durability: null);
    }

    private static long Add(ReadOnlySpan<byte> current, long delta, ReadOnlySpan<byte> key)
    {
        long value = 0;
        if (!current.IsEmpty && !(Utf8Parser.TryParse(current, out value, out var consumed) && consumed == current.Length && current[0] != (byte)'+'))
            throw new InvalidOperationException($"The value of key '{System.Text.Encoding.UTF8.GetString(key)}' is not a 64-bit decimal integer; nothing was changed.");
        try
        {
            return checked(value + delta);
        }
        catch (OverflowException)
        {
            throw new InvalidOperationException($"Adding {delta} to {value} overflows a 64-bit integer; nothing was changed.");
        }
    }

    /// <summary>
    /// Atomic read-modify-write of one key: <paramref name="update"/> sees the current value (or none) and its metadata,
    /// and decides keep, put or delete, and the result. When another write to the key wins the race, it runs again on the
    /// newer value, so it may run more than once and must be pure. Returns the result of the run that took effect.
    /// </summary>
    public TResult Update<TState, TResult>(ReadOnlySpan<byte> key, TState state, KeyUpdate<TState, TResult> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var start = Telemetry.Start();
        var buffer = new ArrayBufferWriter<byte>(64); // the callback may call Update itself: no shared buffer
        while (true)
        {
            buffer.ResetWrittenCount();
            var found = TryGetEntry(key, buffer, out var info);
            var result = update(buffer.WrittenSpan, found ? info : null, state, out var action);
            switch (action.Kind)
            {
                case KeyUpdateAction.ActionKind.Keep:
                    Telemetry.Done(start, Directory, Telemetry.Update);
                    return result; // a read: linearizable at the read above
                case KeyUpdateAction.ActionKind.Put:
                    if (CompareAndSet(key, found ? info.Version : 0, action.Value.Span,
                            new WriteOptions(TimeToLive: action.TimeToLive, LeaseId: found && action.TimeToLive is null ? info.LeaseId : 0)))
                    {
                        Telemetry.Done(start, Directory, Telemetry.Update);
                        return result;
                    }
                    break;
                default:
                    if (!found || CompareAndDelete(key, info.Version))
                    {
                        Telemetry.Done(start, Directory, Telemetry.Update);
                        return result;
                    }
                    break;
            }
        }
    }

    /// <summary>Asynchronous <see cref="Update"/>: the thread is released while a Synced group's fdatasync runs.</summary>
    public async ValueTask<TResult> UpdateAsync<TState, TResult>(ReadOnlyMemory<byte> key, TState state, KeyUpdate<TState, TResult> update, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        var start = Telemetry.Start();
        var buffer = new ArrayBufferWriter<byte>(64);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            buffer.ResetWrittenCount();
            var found = TryGetEntry(key.Span, buffer, out var info);
            var result = update(buffer.WrittenSpan, found ? info : null, state, out var action);
            switch (action.Kind)
            {
                case KeyUpdateAction.ActionKind.Keep:
                    Telemetry.Done(start, Directory, Telemetry.Update);
                    return result;
                case KeyUpdateAction.ActionKind.Put:
                    if (await CompareAndSetAsync(key, found ? info.Version : 0, action.Value,
                            new WriteOptions(TimeToLive: action.TimeToLive, LeaseId: found && action.TimeToLive is null ? info.LeaseId : 0), ct).ConfigureAwait(false))
                    {
                        Telemetry.Done(start, Directory, Telemetry.Update);
                        return result;
                    }
                    break;
                default:
                    if (!found || await CompareAndDeleteAsync(key, info.Version, null, ct).ConfigureAwait(false))
                    {
                        Telemetry.Done(start, Directory, Telemetry.Update);
                        return result;
                    }
                    break;
            }
        }
    }

    // ------------------------------------------------------------------ encoding and outcomes

    /// <summary>Encodes a put with its conditions (version, when given; lease exists, when attached) and per-call options.
    /// Returns the index of the lease condition, or -1.</summary>
    private int EncodeConditionalPut(WriteRequest request, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, WriteOptions options, long? expectedVersion)
    {
        if (options.LeaseId < 0) throw new ArgumentOutOfRangeException(nameof(options), options.LeaseId, "A lease id is positive (0 = no lease).");
        if (options.Durability is { } d && !Enum.IsDefined(d)) throw new ArgumentOutOfRangeException(nameof(options), d, "Durability must be Buffered, Flushed or Synced.");
        var expiresAt = options.TimeToLive is { } ttl ? ExpiryFor(ttl) : 0;
        return PreparePut(request, key, value, expiresAt, options.LeaseId, expectedVersion, options.Durability);
    }

    /// <summary>Encodes a put (expiry absolute, 0 = never) with a lease condition first (when attached), then the version
    /// condition. Returns the index of the lease condition, or -1.</summary>
    private int PreparePut(WriteRequest request, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt, long leaseId, long? expectedVersion, Durability? durability)
    {
        EncodePut(request, key, value, expiresAt, leaseId);
        request.DurabilityOverride = durability;
        if (expectedVersion is { } v) request.AddCondition(key, v);
        return leaseId != 0 ? 0 : -1;
    }

    private void EncodeConditionalDelete(WriteRequest request, ReadOnlySpan<byte> key, long expectedVersion, Durability? durability)
    {
        Leases.ThrowIfReserved(key, nameof(key));
        request.Reset(WriteRequestKind.Record);
        var span = request.Reserve(RecordCodec.HeaderSize + key.Length + RecordCodec.TrailerFieldSize);
        request.Length = RecordCodec.Encode(span, RecordKind.Tombstone, key, default, 0, 0, RecordFlags.PreviousVersion, 0);
        request.DurabilityOverride = durability;
        request.AddCondition(key, expectedVersion);
    }

    /// <summary>Encodes a batch with its conditions, and a lease condition for every lease its puts name. Returns the index
    /// of the first lease condition (or -1).</summary>
    private int EncodeConditionalBatch(WriteBatch batch, WriteRequest request, Durability? durability)
    {
        request.Reset(WriteRequestKind.Record);
        EncodeBatch(batch, request);
        request.DurabilityOverride = durability;
        // Indexed loops: a foreach over the IReadOnlyList views boxes an enumerator (80 bytes per batch).
        var conditions = batch.Conditions;
        for (var i = 0; i < conditions.Count; i++) request.AddCondition(batch.Bytes(conditions[i].KeyStart, conditions[i].KeyLength), conditions[i].Expected);
        var firstLease = request.ConditionCount;
        Span<byte> leaseKey = stackalloc byte[Leases.KeyLength];
        var ops = batch.Ops;
        for (var i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            if (op.LeaseId != 0) request.AddCondition(Leases.KeyOf(op.LeaseId, leaseKey), WriteCondition.Exists);
            // The leader reads each key's newest record for the version trailers: start loading them all now, so their
            // cache and TLB misses overlap each other instead of following one another inside the group commit.
            PrefetchNewest(batch.Bytes(op.KeyStart, op.KeyLength));
        }
        return firstLease == request.ConditionCount ? -1 : firstLease;
    }

    /// <summary>True when the request was written; false when a version condition failed. Throws for a lease that is gone
    /// or a damaged record met while checking.</summary>
    private static bool Outcome(WriteRequest request, int leaseCondition, long leaseId)
    {
        if (request.RequestError is CorruptionException error) throw new CorruptionException(error.Path, error.Offset, error.Problem);
        if (request.RequestError is { } other) throw new IOException(other.Message, other);
        if (request.FailedCondition < 0) return true;
        if (leaseCondition >= 0 && request.FailedCondition == leaseCondition) throw new LeaseNotFoundException(leaseId);
        return false;
    }

    private static bool BatchOutcome(WriteRequest request, WriteBatch batch, int firstLease)
    {
        if (firstLease >= 0 && request.FailedCondition >= firstLease)
        {
            var leases = batch.Ops.Where(op => op.LeaseId != 0).Select(op => op.LeaseId).ToList();
            throw new LeaseNotFoundException(leases[request.FailedCondition - firstLease]);
        }
        return Outcome(request, -1, 0);
    }

    /// <summary>A batch with conditions and no operations: checks them with a read of each key (no record is written).</summary>
    private bool ConditionsHoldNow(WriteBatch batch)
    {
        foreach (var c in batch.Conditions)
        {
            var info = GetInfo(batch.Bytes(c.KeyStart, c.KeyLength));
            var holds = c.Expected switch
            {
                WriteCondition.Absent => info is null,
                WriteCondition.Exists => info is not null,
                _ => info is { } i && i.Version == c.Expected,
            };
            if (!holds) return false;
        }
        return true;
    }
}
