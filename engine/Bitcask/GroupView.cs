using System.Runtime.CompilerServices;
using Bitcask.Format;

namespace Bitcask;

/// <summary>What the write path knows of a key's newest write at one point of a commit group.</summary>
internal struct KeyVersion
{
    /// <summary>Sequence of the key's newest record (its version); 0 when the key has no live value.</summary>
    public ulong Version;
    /// <summary>The revision that created the live value; 0 when absent.</summary>
    public ulong CreateRevision;
    public long ExpiresAt;
    public long LeaseId;

    public readonly bool Exists => Version != 0;
}

/// <summary>
/// The keys a commit group has written so far, with their new versions, so that a condition or a create revision later
/// in the same group sees the writes before it (the keydir is updated only after the group's I/O). A small open-addressing
/// table over the group's own request buffers, cleared per group; it allocates only to grow.
/// <para>Thread-safety: used by the group-commit leader only.</para>
/// </summary>
internal sealed class GroupView
{
    private struct Slot
    {
        public ulong Hash;
        public byte[]? Buffer; // the request buffer holding the key
        public int KeyStart;
        public int KeyLength;
        public KeyVersion State;
    }

    private Slot[] _slots = new Slot[64];
    private int[] _used = new int[32];
    private int _count;

    public void Clear()
    {
        for (var i = 0; i < _count; i++) _slots[_used[i]] = default;
        _count = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(ReadOnlySpan<byte> key, ulong hash)
    {
        var mask = _slots.Length - 1;
        for (var i = (int)hash & mask; ; i = (i + 1) & mask)
        {
            ref var slot = ref _slots[i];
            if (slot.Buffer is null) return ~i;
            if (slot.Hash == hash && slot.Buffer.AsSpan(slot.KeyStart, slot.KeyLength).SequenceEqual(key)) return i;
        }
    }

    /// <summary>The key's state after the group's earlier writes, when the group wrote it.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, ulong hash, out KeyVersion state)
    {
        if (_count == 0)
        {
            state = default;
            return false;
        }
        var i = Find(key, hash);
        state = i >= 0 ? _slots[i].State : default;
        return i >= 0;
    }

    /// <summary>Adds the keys this group has written so far whose newest write attached them to <paramref name="leaseId"/>.</summary>
    public void AddKeysWithLease(long leaseId, List<byte[]> into)
    {
        for (var i = 0; i < _count; i++)
        {
            ref var slot = ref _slots[_used[i]];
            if (slot.State.Exists && slot.State.LeaseId == leaseId) into.Add(slot.Buffer.AsSpan(slot.KeyStart, slot.KeyLength).ToArray());
        }
    }

    /// <summary>Records the key's state after a write of this group; the key bytes stay in <paramref name="buffer"/>.</summary>
    public void Set(byte[] buffer, int keyStart, int keyLength, ulong hash, in KeyVersion state)
    {
        if ((_count + 1) * 2 > _slots.Length) Grow();
        var i = Find(buffer.AsSpan(keyStart, keyLength), hash);
        if (i < 0)
        {
            i = ~i;
            if (_count == _used.Length) Array.Resize(ref _used, _used.Length * 2);
            _used[_count++] = i;
        }
        _slots[i] = new Slot { Hash = hash, Buffer = buffer, KeyStart = keyStart, KeyLength = keyLength, State = state };
    }

    private void Grow()
    {
        var old = _slots;
        var used = _used[.._count];
        _slots = new Slot[old.Length * 2];
        _count = 0;
        foreach (var i in used)
        {
            var s = old[i];
            Set(s.Buffer!, s.KeyStart, s.KeyLength, s.Hash, s.State);
        }
    }
}
