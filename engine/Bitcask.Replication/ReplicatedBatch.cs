using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Bitcask.Replication;

/// <summary>
/// A group of puts and deletes, with optional conditions (etcd's Txn compare), proposed as ONE Raft log entry and
/// applied all-or-nothing on every node: when any condition fails on the state at that log position, nothing is
/// written and the write reports false. Build it on one thread, then pass it to <see cref="ReplicatedStore.WriteAsync"/>;
/// not thread-safe while being built.
/// </summary>
public sealed class ReplicatedBatch
{
    private readonly ArrayBufferWriter<byte> _conditions = new();
    private readonly ArrayBufferWriter<byte> _ops = new();

    /// <summary>Number of conditions.</summary>
    public int ConditionCount { get; private set; }

    /// <summary>Number of puts and deletes.</summary>
    public int Count { get; private set; }

    /// <summary>Requires <paramref name="key"/>'s newest version (<see cref="EntryInfo.Version"/>) to be
    /// <paramref name="version"/>; 0 means the key must be absent.</summary>
    public ReplicatedBatch RequireVersion(ReadOnlySpan<byte> key, long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        WriteCondition(Command.CondVersion, key);
        BinaryPrimitives.WriteInt64LittleEndian(_conditions.GetSpan(8), version);
        _conditions.Advance(8);
        return this;
    }

    /// <summary>Requires <paramref name="key"/> to be absent, or its newest version to be <paramref name="version"/>: for a
    /// reader that saw the key's value <paramref name="version"/> as expired by its own clock, which the log's clock
    /// may not have reached yet.</summary>
    public ReplicatedBatch RequireVersionOrAbsent(ReadOnlySpan<byte> key, long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        WriteCondition(Command.CondVersionOrAbsent, key);
        BinaryPrimitives.WriteInt64LittleEndian(_conditions.GetSpan(8), version);
        _conditions.Advance(8);
        return this;
    }

    /// <summary>Requires <paramref name="key"/> to be absent.</summary>
    public ReplicatedBatch RequireAbsent(ReadOnlySpan<byte> key) { WriteCondition(Command.CondAbsent, key); return this; }

    /// <summary>Requires <paramref name="key"/> to exist.</summary>
    public ReplicatedBatch RequireExists(ReadOnlySpan<byte> key) { WriteCondition(Command.CondExists, key); return this; }

    /// <summary>Adds a put of <paramref name="value"/> under <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">The key is empty, longer than 65535 bytes or reserved ("\0raft:", "\0bitcask:").</exception>
    public ReplicatedBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        WriteOp(Command.OpPut, key);
        BinaryPrimitives.WriteUInt32LittleEndian(_ops.GetSpan(4), (uint)value.Length);
        _ops.Advance(4);
        _ops.Write(value);
        return this;
    }

    /// <summary>Adds a put of <paramref name="value"/> that expires at <paramref name="expiresAt"/> (absolute, chosen by
    /// the proposer, judged by the log's clock on every node: an expiry the log's clock has passed when the entry is
    /// applied makes the put a delete).</summary>
    public ReplicatedBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, DateTimeOffset expiresAt)
    {
        WriteOp(Command.OpPutExpiring, key);
        BinaryPrimitives.WriteUInt32LittleEndian(_ops.GetSpan(4), (uint)value.Length);
        _ops.Advance(4);
        _ops.Write(value);
        BinaryPrimitives.WriteInt64LittleEndian(_ops.GetSpan(8), expiresAt.ToUnixTimeMilliseconds());
        _ops.Advance(8);
        return this;
    }

    /// <summary>Adds a put of <paramref name="value"/> attached to lease <paramref name="leaseId"/>
    /// (<see cref="ReplicatedStore.GrantLeaseAsync"/>): the key is deleted when the lease is revoked or expires, unless
    /// it is written again without the lease first. The whole entry fails (<see cref="ReplicatedCommandException"/>)
    /// when the lease is gone at its log position.</summary>
    public ReplicatedBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long leaseId)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(leaseId);
        WriteOp(Command.OpPutLease, key);
        BinaryPrimitives.WriteUInt32LittleEndian(_ops.GetSpan(4), (uint)value.Length);
        _ops.Advance(4);
        _ops.Write(value);
        BinaryPrimitives.WriteInt64LittleEndian(_ops.GetSpan(8), leaseId);
        _ops.Advance(8);
        return this;
    }

    /// <summary>Adds a put of UTF-8 strings.</summary>
    public ReplicatedBatch Put(string key, string value) => Put(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));

    /// <summary>Adds a delete of <paramref name="key"/> (no effect if it is absent).</summary>
    public ReplicatedBatch Delete(ReadOnlySpan<byte> key) { WriteOp(Command.OpDelete, key); return this; }

    /// <summary>Adds a delete of a UTF-8 key.</summary>
    public ReplicatedBatch Delete(string key) => Delete(Encoding.UTF8.GetBytes(key));

    private void WriteCondition(byte kind, ReadOnlySpan<byte> key)
    {
        CheckKey(key);
        WriteKey(_conditions, kind, key);
        ConditionCount++;
    }

    private void WriteOp(byte kind, ReadOnlySpan<byte> key)
    {
        CheckKey(key);
        WriteKey(_ops, kind, key);
        Count++;
    }

    private static void CheckKey(ReadOnlySpan<byte> key)
    {
        Command.CheckUserKey(key, nameof(key));
        if (key.StartsWith("\0bitcask:"u8))
            throw new ArgumentException("Keys starting with \"\\0bitcask:\" are reserved for the engine.", nameof(key));
    }

    private static void WriteKey(ArrayBufferWriter<byte> w, byte kind, ReadOnlySpan<byte> key)
    {
        var span = w.GetSpan(3 + key.Length);
        span[0] = kind;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], (ushort)key.Length);
        key.CopyTo(span[3..]);
        w.Advance(3 + key.Length);
    }

    /// <summary>The log entry payload: FORMAT.md, "Replication log entry".</summary>
    internal byte[] Encode()
    {
        var bytes = new byte[2 + 4 + _conditions.WrittenCount + 4 + _ops.WrittenCount];
        bytes[0] = Command.FormatVersion;
        bytes[1] = Command.KindBatch;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(2), (uint)ConditionCount);
        _conditions.WrittenSpan.CopyTo(bytes.AsSpan(6));
        var at = 6 + _conditions.WrittenCount;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)Count);
        _ops.WrittenSpan.CopyTo(bytes.AsSpan(at + 4));
        return bytes;
    }
}
