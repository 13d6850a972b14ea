using System.Buffers.Binary;

namespace Bitcask;

/// <summary>
/// How leases live in the store: each live lease is one record under a reserved key (<see cref="Prefix"/> + the lease id,
/// big-endian) whose value is its time to live in milliseconds, so grants survive restarts and compaction like any key;
/// a put attached to a lease carries the lease id in its record (FORMAT.md §2.2). Keys under the reserved prefix are
/// the engine's: user writes to them are refused, and enumerations and counts leave them out.
/// </summary>
internal static partial class Leases
{
    /// <summary>"\0bitcask:lease:": a NUL first byte keeps it apart from every text key.</summary>
    public static ReadOnlySpan<byte> Prefix => "\0bitcask:lease:"u8;

    /// <summary>Every reserved key starts with this ("\0bitcask:").</summary>
    public static ReadOnlySpan<byte> ReservedPrefix => "\0bitcask:"u8;

    public const int KeyLength = 15 + 8;

    /// <summary>The reserved key of lease <paramref name="leaseId"/>, written into <paramref name="destination"/>.</summary>
    public static ReadOnlySpan<byte> KeyOf(long leaseId, Span<byte> destination)
    {
        Prefix.CopyTo(destination);
        BinaryPrimitives.WriteInt64BigEndian(destination[Prefix.Length..], leaseId);
        return destination[..KeyLength];
    }

    public static bool IsReserved(ReadOnlySpan<byte> key) => key.StartsWith(ReservedPrefix);

    public static bool TryParseLeaseKey(ReadOnlySpan<byte> key, out long leaseId)
    {
        leaseId = 0;
        if (key.Length != KeyLength || !key.StartsWith(Prefix)) return false;
        leaseId = BinaryPrimitives.ReadInt64BigEndian(key[Prefix.Length..]);
        return leaseId > 0;
    }

    public static void ThrowIfReserved(ReadOnlySpan<byte> key, string parameter)
    {
        if (IsReserved(key))
            throw new ArgumentException("Keys starting with \"\\0bitcask:\" are reserved for the engine (leases).", parameter);
    }
}
