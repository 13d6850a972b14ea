using System.Buffers;
using Bitcask;

namespace Bitcask.Cli;

/// <summary>Reads one key's value and expiry (Unix ms, 0 = never) from the same record, for scan and export.</summary>
public static class Entries
{
    /// <summary>The value and expiry of a live key; false when absent or expired.</summary>
    public static bool TryGet(BitcaskStore store, ReadOnlySpan<byte> key, out byte[] value, out long expiresAt)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var found = store.TryGet(key, buffer, out var expiry); // value and expiry from the same record
        value = found ? buffer.WrittenSpan.ToArray() : [];
        expiresAt = expiry?.ToUnixTimeMilliseconds() ?? 0;
        return found;
    }
}
