using System.Runtime.InteropServices;

namespace Bitcask;

/// <summary>
/// A count of active readers striped over cache lines by thread id, so that threads reading the same segment do not
/// bounce one cache line between cores. Enter and Exit on the same thread use the same slot; the total is exact.
/// Thread-safety: all members are safe to call concurrently.
/// </summary>
internal sealed class ReaderCount
{
    private const int Slots = 16; // power of two
    private readonly PaddedInt[] _slots = new PaddedInt[Slots];

    /// <summary>Counts the calling thread in and returns its slot key (pass it to <see cref="Exit"/>).</summary>
    public int Enter()
    {
        var id = Environment.CurrentManagedThreadId;
        Interlocked.Increment(ref _slots[id & (Slots - 1)].Value);
        return id;
    }

    public void Exit(int slotKey) => Interlocked.Decrement(ref _slots[slotKey & (Slots - 1)].Value);

    public bool IsZero()
    {
        for (var i = 0; i < Slots; i++)
            if (Volatile.Read(ref _slots[i].Value) != 0) return false;
        return true;
    }

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct PaddedInt
    {
        [FieldOffset(0)] public int Value;
    }
}
