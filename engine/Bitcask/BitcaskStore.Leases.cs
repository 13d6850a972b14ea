using System.Buffers.Binary;
using Bitcask.Format;

namespace Bitcask;

// Leases (etcd semantics): a lease is granted with a time to live, kept alive by its holder, and revoked, or expires when
// not kept alive in time; revoking or expiring deletes every key attached to it in one atomic batch. Grants are records;
// a reopen gives every live lease its full time to live again.
public sealed partial class BitcaskStore
{
    private readonly LeaseTable _leases = new();
    private ExpirySweeper? _sweeper;

    /// <summary>Grants a lease that expires unless kept alive (<see cref="KeepAlive"/>) within <paramref name="timeToLive"/>
    /// (at least 1 ms, rounded up to whole milliseconds). Returns its id (&gt; 0, never reused).</summary>
    public long GrantLease(TimeSpan timeToLive)
    {
        ValidateTtl(timeToLive);
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        while (true)
        {
            var id = EncodeGrant(request, timeToLive);
            commit.Submit(request);
            if (Outcome(request, -1, 0)) return id;
        }
    }

    /// <summary>Asynchronous <see cref="GrantLease"/>.</summary>
    public async ValueTask<long> GrantLeaseAsync(TimeSpan timeToLive, CancellationToken ct = default)
    {
        ValidateTtl(timeToLive);
        var commit = WritableCommit();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var request = new WriteRequest();
            var id = EncodeGrant(request, timeToLive);
            await commit.SubmitAsync(request).ConfigureAwait(false);
            if (Outcome(request, -1, 0)) return id;
        }
    }

    private long EncodeGrant(WriteRequest request, TimeSpan timeToLive)
    {
        var id = _leases.NextId(Revision);
        Span<byte> key = stackalloc byte[Leases.KeyLength];
        Leases.KeyOf(id, key);
        Span<byte> ttl = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(ttl, (ulong)Math.Max(1, (long)Math.Ceiling(timeToLive.TotalMilliseconds)));
        request.Reset(WriteRequestKind.Record);
        var span = request.Reserve(RecordCodec.MaxEncodedSize(key.Length, ttl.Length, 0));
        request.Length = RecordCodec.Encode(span, RecordKind.Put, key, ttl, 0, 0, RecordFlags.CreateRevision | RecordFlags.PreviousVersion, 0);
        request.AddCondition(key, WriteCondition.Absent);
        return id;
    }

    /// <summary>Extends the lease to a full time to live from now. False when the lease is gone (revoked or expired).</summary>
    public bool KeepAlive(long leaseId)
    {
        WritableCommit();
        return _leases.KeepAlive(leaseId, Now);
    }

    /// <summary>Revokes the lease: every key attached to it, and the lease, are deleted in one atomic batch. False when the
    /// lease was already gone.</summary>
    public bool RevokeLease(long leaseId)
    {
        var commit = WritableCommit();
        var request = t_request ??= new WriteRequest();
        request.Reset(WriteRequestKind.RevokeLease);
        request.LeaseId = leaseId;
        commit.Submit(request);
        return request.FailedCondition < 0;
    }

    /// <summary>Asynchronous <see cref="RevokeLease"/>.</summary>
    public async ValueTask<bool> RevokeLeaseAsync(long leaseId, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        var commit = WritableCommit();
        var request = new WriteRequest();
        request.Reset(WriteRequestKind.RevokeLease);
        request.LeaseId = leaseId;
        await commit.SubmitAsync(request).ConfigureAwait(false);
        return request.FailedCondition < 0;
    }

    /// <summary>The live leases' ids and whether <paramref name="leaseId"/> is one of them.</summary>
    internal bool LeaseExists(long leaseId) => _leases.Exists(leaseId);

    /// <summary>Fills the lease table after open: every grant record found, with a full time to live from now, and (only
    /// when there are leases) every live key's attachment, read from its record.</summary>
    private void LoadLeases()
    {
        var now = Now;
        var entries = new List<KeyDirEntry>();
        for (var stripe = 0; stripe < KeyDir.StripeTotal; stripe++) _keyDir.SnapshotStripe(stripe, Leases.Prefix, entries);
        foreach (var entry in entries)
            if (Leases.TryParseLeaseKey(entry.Key, out var id) && Get(entry.Key) is { Length: 8 } ttl)
                _leases.Granted(id, (long)BinaryPrimitives.ReadUInt64LittleEndian(ttl), now);
        if (_leases.Count == 0) return;
        for (var stripe = 0; stripe < KeyDir.StripeTotal; stripe++)
        {
            entries.Clear();
            _keyDir.SnapshotStripe(stripe, default, entries);
            foreach (var entry in entries)
                if (!Leases.IsReserved(entry.Key) && GetInfo(entry.Key) is { LeaseId: not 0 } info) _leases.Attach(info.LeaseId, entry.Key);
        }
    }

    /// <summary>One expiry sweep: revokes the leases whose deadline passed, then writes an expired-flagged tombstone for
    /// every key whose time to live ran out (each conditional on the key still being expired).</summary>
    private void SweepExpired()
    {
        var commit = WritableCommit();
        var now = Now;
        foreach (var id in _leases.Expired(now))
        {
            var revoke = new WriteRequest();
            revoke.Reset(WriteRequestKind.RevokeLease);
            revoke.LeaseId = id;
            commit.Submit(revoke);
        }
        if (!_keyDir.HasExpiringEntries) return;
        var expired = new List<byte[]>();
        _keyDir.CollectExpired(now, expired, max: 10_000);
        var request = new WriteRequest();
        foreach (var key in expired)
        {
            request.Reset(WriteRequestKind.Record);
            var span = request.Reserve(RecordCodec.HeaderSize + key.Length + RecordCodec.TrailerFieldSize);
            request.Length = RecordCodec.Encode(span, RecordKind.Tombstone, key, default, 0, 0, RecordFlags.Expired | RecordFlags.PreviousVersion, 0);
            request.AddCondition(key, WriteCondition.Expired);
            commit.Submit(request);
        }
    }

    /// <summary>Up to <paramref name="max"/> live keys whose expiry is at or before <paramref name="nowMs"/> (Unix ms):
    /// what a replicated store's leader proposes to delete (<see cref="BitcaskOptions.ExpireInBackground"/> off).</summary>
    internal List<byte[]> CollectExpiredKeys(long nowMs, int max)
    {
        var expired = new List<byte[]>();
        if (_keyDir.HasExpiringEntries) _keyDir.CollectExpired(nowMs, expired, max);
        return expired;
    }

    /// <summary>Test seam: runs one expiry sweep now.</summary>
    internal void SweepExpiredForTests() => _sweeper?.Run();
}
