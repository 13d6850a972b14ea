namespace Bitcask;

/// <summary>
/// Puts and deletes applied by <see cref="BitcaskStore.Write"/> all together or not at all, also across a crash.
/// Operations apply in the order they were added (a later put of the same key wins). Conditions
/// (<see cref="RequireVersion"/>, <see cref="RequireAbsent"/>, <see cref="RequireExists"/>) make it a transaction for
/// <see cref="BitcaskStore.TryWrite"/>: every condition is checked against the newest state at the moment the batch is
/// committed, and the batch is written only when all hold (etcd's Txn compare). The batch copies keys and values, so the
/// caller's buffers may be reused at once. Not thread-safe; reusable after <see cref="Clear"/>.
/// </summary>
public sealed class WriteBatch
{
    internal enum OpKind : byte { Put, PutWithTtl, PutWithExpiry, Delete }

    internal readonly record struct Op(OpKind Kind, int KeyStart, int KeyLength, int ValueStart, int ValueLength, TimeSpan TimeToLive, long ExpiresAt = 0, long LeaseId = 0);

    internal readonly record struct Condition(int KeyStart, int KeyLength, long Expected);

    private readonly List<Condition> _conditions = [];

    /// <summary>Conditions the batch needs (empty for an unconditional batch).</summary>
    internal IReadOnlyList<Condition> Conditions => _conditions;

    /// <summary>Number of conditions.</summary>
    public int ConditionCount => _conditions.Count;

    /// <summary>The batch applies only if <paramref name="key"/>'s current version (<see cref="EntryInfo.Version"/>) is
    /// <paramref name="version"/>; 0 means the key must be absent.</summary>
    public WriteBatch RequireVersion(ReadOnlySpan<byte> key, long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        _conditions.Add(new Condition(Append(key), key.Length, version));
        return this;
    }

    /// <summary>The batch applies only if <paramref name="key"/> has no live value.</summary>
    public WriteBatch RequireAbsent(ReadOnlySpan<byte> key) => RequireVersion(key, 0);

    /// <summary>The batch applies only if <paramref name="key"/> has a live value.</summary>
    public WriteBatch RequireExists(ReadOnlySpan<byte> key)
    {
        _conditions.Add(new Condition(Append(key), key.Length, WriteCondition.Exists));
        return this;
    }

    /// <summary>Adds a put attached to lease <paramref name="leaseId"/> (<see cref="BitcaskStore.GrantLease"/>): the key is
    /// deleted when the lease is revoked or expires. The batch fails with <see cref="LeaseNotFoundException"/> when the lease
    /// is gone at commit.</summary>
    public WriteBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long leaseId)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(leaseId);
        var k = Append(key);
        var v = Append(value);
        _ops.Add(new Op(OpKind.Put, k, key.Length, v, value.Length, TimeSpan.Zero, 0, leaseId));
        return this;
    }

    private byte[] _bytes = new byte[256];
    private int _used;
    private readonly List<Op> _ops = [];

    /// <summary>Number of operations in the batch.</summary>
    public int Count => _ops.Count;

    /// <summary>Bytes of keys and values held (what the batch costs before encoding).</summary>
    public long PayloadBytes => _used;

    /// <summary>Adds a put of <paramref name="value"/> under <paramref name="key"/>.</summary>
    public WriteBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var k = Append(key);
        var v = Append(value);
        _ops.Add(new Op(OpKind.Put, k, key.Length, v, value.Length, TimeSpan.Zero));
        return this;
    }

    /// <summary>Adds a put that expires <paramref name="timeToLive"/> after the batch is written (an expiry landing exactly on
    /// the Unix epoch is kept 1 ms earlier, as in <see cref="BitcaskStore.Put(ReadOnlySpan{byte}, ReadOnlySpan{byte}, TimeSpan)"/>).</summary>
    public WriteBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TimeSpan timeToLive)
    {
        BitcaskStore.ValidateTtl(timeToLive);
        var k = Append(key);
        var v = Append(value);
        _ops.Add(new Op(OpKind.PutWithTtl, k, key.Length, v, value.Length, timeToLive));
        return this;
    }

    /// <summary>Adds a put that expires at <paramref name="expiresAt"/> (absolute; exactly the Unix epoch is kept 1 ms earlier, as in
    /// <see cref="BitcaskStore.Put(ReadOnlySpan{byte}, ReadOnlySpan{byte}, DateTimeOffset)"/>); it must be in the future when the batch is written.</summary>
    public WriteBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, DateTimeOffset expiresAt)
    {
        var k = Append(key);
        var v = Append(value);
        _ops.Add(new Op(OpKind.PutWithExpiry, k, key.Length, v, value.Length, TimeSpan.Zero, expiresAt.ToUnixTimeMilliseconds()));
        return this;
    }

    /// <summary>Adds a delete of <paramref name="key"/>.</summary>
    public WriteBatch Delete(ReadOnlySpan<byte> key)
    {
        var k = Append(key);
        _ops.Add(new Op(OpKind.Delete, k, key.Length, 0, 0, TimeSpan.Zero));
        return this;
    }

    /// <summary>UTF-8 convenience for <see cref="Put(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>.</summary>
    public WriteBatch Put(string key, string value) =>
        Put(System.Text.Encoding.UTF8.GetBytes(key), System.Text.Encoding.UTF8.GetBytes(value));

    /// <summary>UTF-8 convenience for <see cref="Delete(ReadOnlySpan{byte})"/>.</summary>
    public WriteBatch Delete(string key) => Delete(System.Text.Encoding.UTF8.GetBytes(key));

    /// <summary>Removes every operation and condition.</summary>
    public void Clear()
    {
        _ops.Clear();
        _conditions.Clear();
        _used = 0;
    }

    internal IReadOnlyList<Op> Ops => _ops;
    internal ReadOnlySpan<byte> Bytes(int start, int length) => _bytes.AsSpan(start, length);

    private int Append(ReadOnlySpan<byte> data)
    {
        if ((long)_used + data.Length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(data), $"A WriteBatch holds at most {Array.MaxLength} bytes of keys and values.");
        if (_used + data.Length > _bytes.Length)
            Array.Resize(ref _bytes, (int)Math.Min(Array.MaxLength, Math.Max(_bytes.Length * 2L, _used + (long)data.Length)));
        var start = _used;
        data.CopyTo(_bytes.AsSpan(start));
        _used += data.Length;
        return start;
    }
}
