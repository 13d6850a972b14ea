namespace Bitcask;

/// <summary>
/// Puts and deletes applied by <see cref="BitcaskStore.Write"/> all together or not at all, also across a crash.
/// Operations apply in the order they were added (a later put of the same key wins). The batch copies keys and values,
/// so the caller's buffers may be reused at once. Not thread-safe; reusable after <see cref="Clear"/>.
/// </summary>
public sealed class WriteBatch
{
    internal enum OpKind : byte { Put, PutWithTtl, PutWithExpiry, Delete }

    internal readonly record struct Op(OpKind Kind, int KeyStart, int KeyLength, int ValueStart, int ValueLength, TimeSpan TimeToLive, long ExpiresAt = 0);

    private byte[] _bytes = new byte[256];
    private int _used;
    private readonly List<Op> _ops = [];

    /// <summary>Number of operations in the batch.</summary>
    public int Count => _ops.Count;

    /// <summary>Bytes of keys and values held (what the batch costs before encoding).</summary>
    public long PayloadBytes => _used;

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

    public WriteBatch Delete(ReadOnlySpan<byte> key)
    {
        var k = Append(key);
        _ops.Add(new Op(OpKind.Delete, k, key.Length, 0, 0, TimeSpan.Zero));
        return this;
    }

    public WriteBatch Put(string key, string value) =>
        Put(System.Text.Encoding.UTF8.GetBytes(key), System.Text.Encoding.UTF8.GetBytes(value));

    public WriteBatch Delete(string key) => Delete(System.Text.Encoding.UTF8.GetBytes(key));

    public void Clear()
    {
        _ops.Clear();
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
