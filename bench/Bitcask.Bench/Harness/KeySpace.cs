using System.Buffers.Binary;

namespace Bitcask.Bench.Harness;

/// <summary>
/// The keys and values every store sees: 16-byte keys (8 scrambled bytes, then the index big-endian, so keys arrive in
/// random order for sorted stores), absent keys from a disjoint range, and incompressible values sliced from a random pool.
/// </summary>
public sealed class KeySpace
{
    public const int KeyLength = 16;
    private const long MissBit = 1L << 62;
    private readonly byte[] _pool;

    public KeySpace(int valueSize, int seed = 12345)
    {
        if (valueSize is < 1 or > 16 << 20) throw new ArgumentOutOfRangeException(nameof(valueSize), valueSize, "value size must be 1 byte to 16 MiB");
        ValueSize = valueSize;
        _pool = new byte[(1 << 20) + valueSize];
        new Random(seed).NextBytes(_pool);
    }

    public int ValueSize { get; }

    public static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>Key number <paramref name="index"/> (0 ≤ index &lt; 2^62).</summary>
    public static void Key(long index, Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Mix((ulong)index));
        BinaryPrimitives.WriteInt64BigEndian(destination[8..], index);
    }

    /// <summary>A key that no workload ever writes.</summary>
    public static void MissingKey(long index, Span<byte> destination) => Key(index | MissBit, destination);

    /// <summary>The value written for key <paramref name="index"/> in write round <paramref name="round"/>.</summary>
    public ReadOnlySpan<byte> Value(long index, int round = 0)
    {
        var offset = (int)(Mix((ulong)index * 31 + (ulong)round) % (ulong)(_pool.Length - ValueSize));
        return _pool.AsSpan(offset, ValueSize);
    }
}

/// <summary>A small, fast per-thread random number generator (xorshift64*).</summary>
public struct FastRandom(ulong seed)
{
    private ulong _state = seed == 0 ? 0x2545F4914F6CDD1DUL : seed;

    public ulong Next()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return _state * 0x2545F4914F6CDD1DUL;
    }

    /// <summary>Uniform in [0, bound).</summary>
    public long Next(long bound) => (long)((UInt128)Next() * (ulong)bound >> 64);
}
