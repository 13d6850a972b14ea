using System.Buffers.Binary;
using System.Text;

namespace Bitcask.Replication;

/// <summary>One replicated write: the payload of one Raft log entry (FORMAT.md, "Replication log entry").
/// Encoding and applying are pure functions of the bytes and the store's state, so every node that applies the same
/// entries in the same order ends with the same content and the same results.</summary>
internal static class Command
{
    /// <summary>What a proposer encodes (and a follower forwards): no time stamp.</summary>
    internal const byte FormatVersion = 1;
    /// <summary>What the leader appends to the log: version 1's bytes with the leader's clock after the kind byte.</summary>
    internal const byte StampedVersion = 2;
    internal const byte KindBatch = 1;
    internal const byte KindIncrement = 2;
    internal const byte KindExpire = 3;
    internal const byte KindLeaseGrant = 4;
    internal const byte KindLeaseKeepAlive = 5;
    internal const byte KindLeaseRevoke = 6;
    /// <summary>Several proposers' commands in one entry (proposal batching on the leader; never forwarded).</summary>
    internal const byte KindMulti = 7;

    /// <summary>Most commands the leader puts in one multi entry.</summary>
    internal const int MaxMultiCommands = 256;
    /// <summary>Most command bytes the leader puts in one multi entry (a bigger command goes alone).</summary>
    internal const int MaxMultiBytes = 256 << 10;

    internal const byte CondVersion = 1;
    internal const byte CondAbsent = 2;
    internal const byte CondExists = 3;
    internal const byte CondVersionOrAbsent = 4;

    internal const byte OpPut = 1;
    internal const byte OpDelete = 2;
    internal const byte OpPutExpiring = 3;
    internal const byte OpPutLease = 4;

    /// <summary>Most keys in one expire entry.</summary>
    internal const int MaxExpireKeys = 1000;

    /// <summary>"\0raft:applied": the index of the newest log entry applied to this store (8 bytes, little-endian),
    /// written in the same batch as the entry's own writes.</summary>
    internal static ReadOnlySpan<byte> AppliedKey => "\0raft:applied"u8;

    /// <summary>Every key the replication layer keeps for itself starts with this.</summary>
    internal static ReadOnlySpan<byte> ReservedPrefix => "\0raft:"u8;

    /// <summary>"\0raft:lease:" + id (i64 LE): a live lease; value ttl_ms:i64 renewed_ms:i64 (log clock of its grant or
    /// newest keep-alive).</summary>
    internal static ReadOnlySpan<byte> LeasePrefix => "\0raft:lease:"u8;

    /// <summary>"\0raft:lk:" + id + key: key is attached to lease id (empty value).</summary>
    internal static ReadOnlySpan<byte> AttachPrefix => "\0raft:lk:"u8;

    /// <summary>"\0raft:kl:" + key: the lease key is attached to (value id:i64).</summary>
    internal static ReadOnlySpan<byte> KeyLeasePrefix => "\0raft:kl:"u8;

    internal static byte[] LeaseKey(long id) => Concat(LeasePrefix, id, default);
    internal static byte[] AttachKey(long id, ReadOnlySpan<byte> key) => Concat(AttachPrefix, id, key);
    internal static byte[] AttachPrefixOf(long id) => Concat(AttachPrefix, id, default);
    internal static byte[] KeyLeaseKey(ReadOnlySpan<byte> key)
    {
        var bytes = new byte[KeyLeasePrefix.Length + key.Length];
        KeyLeasePrefix.CopyTo(bytes);
        key.CopyTo(bytes.AsSpan(KeyLeasePrefix.Length));
        return bytes;
    }

    private static byte[] Concat(ReadOnlySpan<byte> prefix, long id, ReadOnlySpan<byte> key)
    {
        var bytes = new byte[prefix.Length + 8 + key.Length];
        prefix.CopyTo(bytes);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(prefix.Length), id);
        key.CopyTo(bytes.AsSpan(prefix.Length + 8));
        return bytes;
    }

    /// <summary>A lease command: grant (arg = ttl ms), keep-alive (arg = id) or revoke (arg = id; <paramref name="seenRenewedMs"/>
    /// = the renewal the proposer saw, -1 = revoke whatever it is).</summary>
    internal static byte[] EncodeLease(byte kind, long arg, long seenRenewedMs = -1)
    {
        var bytes = new byte[kind == KindLeaseRevoke ? 18 : 10];
        bytes[0] = FormatVersion;
        bytes[1] = kind;
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(2), arg);
        if (kind == KindLeaseRevoke) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(10), seenRenewedMs);
        return bytes;
    }

    /// <summary>A live lease's record: its ttl and the log clock of its grant or newest keep-alive.</summary>
    internal static (long TtlMs, long RenewedMs)? ReadLease(BitcaskStore store, long id) =>
        store.Get(LeaseKey(id)) is { Length: 16 } v
            ? (BinaryPrimitives.ReadInt64LittleEndian(v), BinaryPrimitives.ReadInt64LittleEndian(v.AsSpan(8)))
            : null;

    private static byte[] LeaseValue(long ttlMs, long renewedMs)
    {
        var v = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(v, ttlMs);
        BinaryPrimitives.WriteInt64LittleEndian(v.AsSpan(8), renewedMs);
        return v;
    }

    /// <summary>A write of <paramref name="key"/> that is not attached to <paramref name="keepLease"/> ends the key's
    /// attachment to the lease it had (etcd: a put without the lease detaches the key).</summary>
    private static void Detach(BitcaskStore store, ReadOnlySpan<byte> key, WriteBatch batch, long keepLease = 0)
    {
        var link = KeyLeaseKey(key);
        if (store.Get(link) is not { Length: 8 } old) return;
        var oldLease = BinaryPrimitives.ReadInt64LittleEndian(old);
        if (oldLease == keepLease) return;
        batch.Delete(AttachKey(oldLease, key));
        if (keepLease == 0) batch.Delete(link);
    }

    internal static void CheckUserKey(ReadOnlySpan<byte> key, string parameter)
    {
        if (key.IsEmpty)
            throw new ArgumentException("A key must not be empty.", parameter);
        if (key.Length > ushort.MaxValue)
            throw new ArgumentException($"A key is at most {ushort.MaxValue} bytes (got {key.Length}).", parameter);
        if (key.StartsWith(ReservedPrefix))
            throw new ArgumentException("Keys starting with \"\\0raft:\" are reserved for replication.", parameter);
    }

    internal static byte[] EncodeIncrement(ReadOnlySpan<byte> key, long delta)
    {
        CheckUserKey(key, nameof(key));
        var bytes = new byte[2 + 2 + key.Length + 8];
        bytes[0] = FormatVersion;
        bytes[1] = KindIncrement;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)key.Length);
        key.CopyTo(bytes.AsSpan(4));
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(4 + key.Length), delta);
        return bytes;
    }

    /// <summary>An expire entry: the leader's proposal to delete keys whose time to live ran out (each only if it is
    /// still expired, or gone, at the entry's log position).</summary>
    internal static byte[] EncodeExpire(IReadOnlyList<byte[]> keys) => EncodeList(KindExpire, keys, lengthBytes: 2);

    /// <summary>version:u8 kind:u8 count:u32, then each item as its length (u16 or u32, <paramref name="lengthBytes"/>)
    /// and its bytes: the layout of expire and multi entries.</summary>
    private static byte[] EncodeList(byte kind, IReadOnlyList<byte[]> items, int lengthBytes)
    {
        var size = 2 + 4;
        foreach (var item in items) size += lengthBytes + item.Length;
        var bytes = new byte[size];
        bytes[0] = FormatVersion;
        bytes[1] = kind;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(2), (uint)items.Count);
        var at = 6;
        foreach (var item in items)
        {
            if (lengthBytes == 2) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(at), (ushort)item.Length);
            else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)item.Length);
            item.CopyTo(bytes, at + lengthBytes);
            at += lengthBytes + item.Length;
        }
        return bytes;
    }

    /// <summary>True for the commands the leader may combine into one multi entry: batches and increments, whose effect
    /// does not depend on the entry's index (a lease grant's id is its entry's index, so grants, keep-alives, revokes and
    /// the leader's expiry entries each stay one entry).</summary>
    internal static bool IsBatchable(ReadOnlySpan<byte> payload) =>
        payload.Length >= 2 && payload[0] == FormatVersion && payload[1] is KindBatch or KindIncrement;

    /// <summary>A multi entry (format 1, kind 7): <paramref name="commands"/> (format-1 commands, each checked by the
    /// caller) in the order they are to be applied.</summary>
    internal static byte[] EncodeMulti(IReadOnlyList<byte[]> commands) => EncodeList(KindMulti, commands, lengthBytes: 4);

    /// <summary>True when <paramref name="payload"/> (as appended to the log, format 1 or 2) is a multi entry.</summary>
    internal static bool IsMulti(ReadOnlySpan<byte> payload) => payload.Length >= 2 && payload[1] == KindMulti
        && (payload[0] == FormatVersion || (payload[0] == StampedVersion && payload.Length >= 10));

    /// <summary>The commands of a multi entry (format-1 commands, in order). A malformed multi entry (which only a
    /// broken leader could append) yields one command that fails on every node with the problem.</summary>
    internal static List<ReadOnlyMemory<byte>> SplitMulti(ReadOnlyMemory<byte> payload)
    {
        var body = payload[(payload.Span[0] == StampedVersion ? 10 : 2)..];
        var commands = new List<ReadOnlyMemory<byte>>();
        var span = body.Span;
        if (span.Length < 4) return [new byte[] { 0 }];
        var count = BinaryPrimitives.ReadUInt32LittleEndian(span);
        var at = 4;
        for (var i = 0u; i < count; i++)
        {
            if (span.Length - at < 4) return [new byte[] { 0 }];
            var length = BinaryPrimitives.ReadUInt32LittleEndian(span[at..]);
            if (length > (uint)(span.Length - at - 4)) return [new byte[] { 0 }];
            commands.Add(body.Slice(at + 4, (int)length));
            at += 4 + (int)length;
        }
        return at == span.Length && commands.Count > 0 ? commands : [new byte[] { 0 }];
    }

    /// <summary>The leader's form of a proposer's command: format 2, with <paramref name="stampMs"/> (the leader's clock,
    /// Unix ms) after the kind byte. An already stamped payload is returned as is.</summary>
    internal static byte[] Stamp(byte[] payload, long stampMs)
    {
        if (payload.Length < 2 || payload[0] != FormatVersion) return payload;
        var bytes = new byte[payload.Length + 8];
        bytes[0] = StampedVersion;
        bytes[1] = payload[1];
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(2), stampMs);
        payload.AsSpan(2).CopyTo(bytes.AsSpan(10));
        return bytes;
    }

    /// <summary>The leader's stamp of a format-2 entry (Unix ms), or 0 for a format-1 entry (written before stamps).</summary>
    internal static long StampOf(ReadOnlySpan<byte> payload) =>
        payload.Length >= 10 && payload[0] == StampedVersion ? BinaryPrimitives.ReadInt64LittleEndian(payload[2..]) : 0;

    /// <summary>The value of <see cref="AppliedKey"/>: the entry's index and the log clock after it (Unix ms).</summary>
    internal static byte[] AppliedValue(long index, long clockMs, long done = 0)
    {
        var applied = new byte[done > 0 ? 24 : 16];
        BinaryPrimitives.WriteInt64LittleEndian(applied, index);
        BinaryPrimitives.WriteInt64LittleEndian(applied.AsSpan(8), clockMs);
        if (done > 0) BinaryPrimitives.WriteInt64LittleEndian(applied.AsSpan(16), done);
        return applied;
    }

    /// <summary>Applies one entry's command to <paramref name="store"/> and records <paramref name="index"/> (and the
    /// log clock <paramref name="clockMs"/>, which already includes this entry's stamp) in the same batch. Only the
    /// applier calls this (never concurrently), so the checks below see the state every other node sees at the same
    /// log position; the store's clock is the log clock, so expiry is judged the same way too.
    /// <paramref name="done"/> &gt; 0: the command is one of a multi entry's and not its last; the applied record then
    /// says that the first <paramref name="done"/> commands of entry <paramref name="index"/> are in the store (24-byte
    /// form), so a restart resumes the entry after them.</summary>
    internal static CommandResult Apply(BitcaskStore store, ReadOnlySpan<byte> payload, long index, long clockMs, long done = 0)
    {
        var batch = new WriteBatch();
        CommandResult result;
        try
        {
            var body = payload.Length >= 2 && payload[0] == FormatVersion ? payload[2..]
                : payload.Length >= 10 && payload[0] == StampedVersion ? payload[10..]
                : default;
            result = payload.Length < 2 || payload[0] is not (FormatVersion or StampedVersion) || (payload[0] == StampedVersion && payload.Length < 10)
                ? CommandResult.Error($"unknown replication command (format byte {(payload.Length > 0 ? payload[0] : -1)})")
                : payload[1] switch
                {
                    KindBatch => ApplyBatch(store, body, batch, clockMs),
                    KindIncrement => ApplyIncrement(store, body, batch),
                    KindExpire => ApplyExpire(store, body, batch),
                    KindLeaseGrant or KindLeaseKeepAlive or KindLeaseRevoke => ApplyLease(store, payload[1], body, batch, index, clockMs),
                    KindMulti => CommandResult.Error("a multi entry inside a multi entry"),
                    _ => CommandResult.Error($"unknown replication command kind {payload[1]}"),
                };
        }
        catch (FormatException e)
        {
            result = CommandResult.Error("malformed replication command: " + e.Message);
        }
        if (!result.Succeeded)
            batch.Clear();
        var applied = AppliedValue(index, clockMs, done);
        batch.Put(AppliedKey, applied);
        try
        {
            // Flushed, never an fsync per entry: the Raft log (DotNext flushes it right after each commit) is the durable record.
            // A store that loses its unsynced tail in a power loss replays it from the log, or restores the snapshot
            // when the log was truncated past it (StoreStateMachine's constructor).
            store.TryWrite(batch, Durability.Flushed);
        }
        catch (ArgumentException e) when (batch.Count > 1)
        {
            // The store refuses the writes (a value over its MaxValueBytes, a batch over its segment size): the entry
            // is committed all the same, so it becomes a failed command on every node (all nodes must use the same
            // store limits) and only the applied index is recorded.
            batch.Clear();
            batch.Put(AppliedKey, applied);
            store.TryWrite(batch, Durability.Flushed);
            return CommandResult.Error(e.Message);
        }
        return result;
    }

    /// <summary>Checks that <paramref name="payload"/> is a well-formed command without applying it (a forwarded
    /// frame is checked before it is proposed, so garbage never reaches the log). Returns the problem, or null.</summary>
    internal static string? Validate(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 2 || payload[0] != FormatVersion)
            return $"unknown replication command format (first byte {(payload.Length > 0 ? payload[0] : -1)}, expected {FormatVersion})";
        try
        {
            var r = new Reader(payload[2..]);
            switch (payload[1])
            {
                case KindBatch:
                    for (uint i = 0, n = r.U32(); i < n; i++)
                    {
                        var kind = r.U8();
                        CheckWireKey(r.Key());
                        if (kind is CondVersion or CondVersionOrAbsent) r.I64();
                        else if (kind is not (CondAbsent or CondExists)) throw new FormatException($"condition kind {kind}");
                    }
                    for (uint i = 0, n = r.U32(); i < n; i++)
                    {
                        var kind = r.U8();
                        CheckWireKey(r.Key());
                        if (kind == OpPut) r.Bytes(checked((int)r.U32()));
                        else if (kind is OpPutExpiring or OpPutLease) { r.Bytes(checked((int)r.U32())); r.I64(); }
                        else if (kind != OpDelete) throw new FormatException($"operation kind {kind}");
                    }
                    break;
                case KindIncrement:
                    CheckWireKey(r.Key());
                    r.I64();
                    break;
                case KindLeaseGrant or KindLeaseKeepAlive:
                    if (r.I64() <= 0) throw new FormatException("a lease ttl or id must be positive");
                    break;
                case KindLeaseRevoke:
                    if (r.I64() <= 0) throw new FormatException("a lease id must be positive");
                    r.I64();
                    break;
                case KindMulti:
                    return "a multi entry is built by the leader only, never forwarded";
                case KindExpire:
                    var count = r.U32();
                    if (count > MaxExpireKeys) throw new FormatException($"{count} keys (at most {MaxExpireKeys})");
                    for (var i = 0u; i < count; i++) CheckWireKey(r.Key());
                    break;
                default:
                    return $"unknown replication command kind {payload[1]}";
            }
            r.End();
            return null;
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return "malformed replication command: " + e.Message;
        }
    }

    private static void CheckWireKey(ReadOnlySpan<byte> key)
    {
        if (key.IsEmpty || key.StartsWith(ReservedPrefix) || key.StartsWith("\0bitcask:"u8))
            throw new FormatException("empty or reserved key");
    }

    private static CommandResult ApplyBatch(BitcaskStore store, ReadOnlySpan<byte> p, WriteBatch batch, long clockMs)
    {
        var r = new Reader(p);
        var conditions = r.U32();
        var holds = true;
        for (var i = 0u; i < conditions; i++)
        {
            var kind = r.U8();
            var key = r.Key();
            var info = store.GetInfo(key);
            switch (kind)
            {
                case CondVersion:
                    var version = r.I64();
                    holds &= version == 0 ? info is null : info is { } v && v.Version == version;
                    break;
                case CondVersionOrAbsent:
                    var seen = r.I64();
                    holds &= info is null || info.Value.Version == seen;
                    break;
                case CondAbsent: holds &= info is null; break;
                case CondExists: holds &= info is not null; break;
                default: throw new FormatException($"condition kind {kind}");
            }
        }
        var ops = r.U32();
        long existed = 0;
        for (var i = 0u; i < ops; i++)
        {
            var kind = r.U8();
            var key = r.Key();
            switch (kind)
            {
                case OpPut:
                    var value = r.Bytes(checked((int)r.U32()));
                    Detach(store, key, batch);
                    batch.Put(key, value);
                    break;
                case OpPutExpiring:
                    var expiring = r.Bytes(checked((int)r.U32()));
                    var expiresAt = r.I64();
                    Detach(store, key, batch);
                    // An expiry already past by the log clock is a delete, decided the same way on every node.
                    if (expiresAt <= clockMs) batch.Delete(key);
                    else batch.Put(key, expiring, DateTimeOffset.FromUnixTimeMilliseconds(expiresAt));
                    break;
                case OpPutLease:
                    var leased = r.Bytes(checked((int)r.U32()));
                    var lease = r.I64();
                    if (ReadLease(store, lease) is null)
                        return CommandResult.Error($"lease {lease} not found (revoked or expired)");
                    Detach(store, key, batch, keepLease: lease);
                    batch.Put(key, leased);
                    batch.Put(AttachKey(lease, key), default);
                    var id = new byte[8];
                    BinaryPrimitives.WriteInt64LittleEndian(id, lease);
                    batch.Put(KeyLeaseKey(key), id);
                    break;
                case OpDelete:
                    if (holds && store.ContainsKey(key)) existed++;
                    Detach(store, key, batch);
                    batch.Delete(key);
                    break;
                default: throw new FormatException($"operation kind {kind}");
            }
        }
        r.End();
        return holds ? CommandResult.Ok(existed) : CommandResult.ConditionFailed;
    }

    /// <summary>Deletes each key the store no longer shows (expired by the log clock, or already gone) but still holds
    /// an expiring record of; a key written again since the leader saw it expired is live and is left alone.</summary>
    private static CommandResult ApplyExpire(BitcaskStore store, ReadOnlySpan<byte> p, WriteBatch batch)
    {
        var r = new Reader(p);
        var count = r.U32();
        long deleted = 0;
        for (var i = 0u; i < count; i++)
        {
            var key = r.Key();
            if (store.GetInfo(key) is not null) continue;
            Detach(store, key, batch);
            batch.Delete(key);
            deleted++;
        }
        r.End();
        return CommandResult.Ok(deleted);
    }

    private static CommandResult ApplyIncrement(BitcaskStore store, ReadOnlySpan<byte> p, WriteBatch batch)
    {
        var r = new Reader(p);
        var key = r.Key();
        var delta = r.I64();
        r.End();
        long current = 0;
        if (store.Get(key) is { } bytes && !TryParseInt64(bytes, out current))
            return CommandResult.Error("value is not an integer or out of range");
        long next;
        try { next = checked(current + delta); }
        catch (OverflowException) { return CommandResult.Error("increment or decrement would overflow"); }
        Detach(store, key, batch);
        batch.Put(key, Encoding.ASCII.GetBytes(next.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return CommandResult.Ok(next);
    }

    /// <summary>Grant: the lease's id is the entry's index (unique, the same on every node). Keep-alive: the lease's
    /// renewal becomes the log clock. Revoke: the lease and every key attached to it are deleted in this entry's batch
    /// (a revoke proposed for expiry carries the renewal the leader saw: a keep-alive applied since wins).</summary>
    private static CommandResult ApplyLease(BitcaskStore store, byte kind, ReadOnlySpan<byte> p, WriteBatch batch, long index, long clockMs)
    {
        var r = new Reader(p);
        var arg = r.I64();
        var seen = kind == KindLeaseRevoke ? r.I64() : -1;
        r.End();
        if (kind == KindLeaseGrant)
        {
            batch.Put(LeaseKey(index), LeaseValue(arg, clockMs));
            return CommandResult.Ok(index);
        }
        if (ReadLease(store, arg) is not { } lease) return CommandResult.Ok(0);
        if (kind == KindLeaseKeepAlive)
        {
            batch.Put(LeaseKey(arg), LeaseValue(lease.TtlMs, clockMs));
            return CommandResult.Ok(1);
        }
        if (seen >= 0 && seen != lease.RenewedMs) return CommandResult.Ok(0);
        var prefix = AttachPrefixOf(arg);
        foreach (var attach in store.Keys(prefix))
        {
            var key = attach.AsSpan(prefix.Length);
            batch.Delete(key);
            batch.Delete(KeyLeaseKey(key));
            batch.Delete(attach);
        }
        batch.Delete(LeaseKey(arg));
        return CommandResult.Ok(1);
    }

    /// <summary>Redis INCRBY's rule: optional '-', then 1–19 ASCII digits, no spaces or '+', no leading zeros.</summary>
    private static bool TryParseInt64(ReadOnlySpan<byte> s, out long value)
    {
        value = 0;
        if (s.IsEmpty || s.Length > 20) return false;
        var neg = s[0] == (byte)'-';
        var digits = neg ? s[1..] : s;
        if (digits.IsEmpty || (digits[0] == (byte)'0' && (digits.Length > 1 || neg))) return false;
        foreach (var c in digits)
            if (c is < (byte)'0' or > (byte)'9') return false;
        return long.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out value);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

        public byte U8() { Need(1); var v = _rest[0]; _rest = _rest[1..]; return v; }
        public uint U32() { Need(4); var v = BinaryPrimitives.ReadUInt32LittleEndian(_rest); _rest = _rest[4..]; return v; }
        public long I64() { Need(8); var v = BinaryPrimitives.ReadInt64LittleEndian(_rest); _rest = _rest[8..]; return v; }
        public ReadOnlySpan<byte> Key()
        {
            Need(2);
            var n = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
            _rest = _rest[2..];
            return Bytes(n);
        }
        public ReadOnlySpan<byte> Bytes(int n) { Need(n); var v = _rest[..n]; _rest = _rest[n..]; return v; }
        public readonly void End() { if (!_rest.IsEmpty) throw new FormatException($"{_rest.Length} trailing bytes"); }
        private readonly void Need(int n) { if (n < 0 || _rest.Length < n) throw new FormatException("truncated"); }
    }
}

/// <summary>What applying one command produced, handed back to the node that proposed it.</summary>
internal readonly record struct CommandResult(bool Succeeded, long Value, string? ErrorMessage)
{
    internal static CommandResult Ok(long value) => new(true, value, null);
    internal static CommandResult ConditionFailed => new(false, 0, null);
    internal static CommandResult Error(string message) => new(false, 0, message);
}
