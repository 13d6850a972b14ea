using System.Buffers.Binary;

namespace Bitcask.Server;

internal enum ValueType { None, String, Hash }

/// <summary>
/// How Redis values map onto the store's values (FORMAT.md, "Server values"). A string is stored as its bytes, so the
/// embedded API and <c>bitcask get</c> read it as is; a hash is one value: the 4-byte tag <c>00 FF 42 4B</c> ("\0\xFFBK"),
/// the type byte 'H', then for each field in insertion order a u32 LE field length, the field, a u32 LE value length, the
/// value. A string that itself starts with the tag is stored as tag + 'S' + its bytes. One value per hash makes every
/// hash command one atomic conditional write of one key, and EXPIRE applies to the whole hash, as in Redis.
/// </summary>
internal static class StoredValue
{
    public static ReadOnlySpan<byte> Tag => [0x00, 0xFF, (byte)'B', (byte)'K'];

    /// <summary>Keys starting with "\0bitcask:" are the engine's own (lease grants), "\0raft:" the replication layer's
    /// (applied index, leases): never served.</summary>
    public static bool IsEngineKey(ReadOnlySpan<byte> key) => key.StartsWith("\0bitcask:"u8) || key.StartsWith("\0raft:"u8);

    public static ValueType TypeOf(ReadOnlySpan<byte> raw) =>
        raw.Length >= 5 && raw.StartsWith(Tag) && raw[4] == (byte)'H' ? ValueType.Hash : ValueType.String;

    /// <summary>The string a stored string value holds.</summary>
    public static ReadOnlySpan<byte> StringOf(ReadOnlySpan<byte> raw) =>
        raw.Length >= 5 && raw.StartsWith(Tag) && raw[4] == (byte)'S' ? raw[5..] : raw;

    /// <summary>The stored form of a string.</summary>
    public static byte[] FromString(ReadOnlySpan<byte> value)
    {
        if (!value.StartsWith(Tag)) return value.ToArray();
        var raw = new byte[value.Length + 5];
        Tag.CopyTo(raw);
        raw[4] = (byte)'S';
        value.CopyTo(raw.AsSpan(5));
        return raw;
    }

    public static List<KeyValuePair<byte[], byte[]>> DecodeHash(byte[] raw)
    {
        var fields = new List<KeyValuePair<byte[], byte[]>>();
        var span = raw.AsSpan(5);
        while (span.Length >= 4)
        {
            var fieldLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
            var field = span.Slice(4, fieldLength).ToArray();
            span = span[(4 + fieldLength)..];
            var valueLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
            var value = span.Slice(4, valueLength).ToArray();
            span = span[(4 + valueLength)..];
            fields.Add(new(field, value));
        }
        return fields;
    }

    public static byte[] EncodeHash(List<KeyValuePair<byte[], byte[]>> fields)
    {
        var size = 5;
        foreach (var (f, v) in fields) size += 8 + f.Length + v.Length;
        var raw = new byte[size];
        Tag.CopyTo(raw);
        raw[4] = (byte)'H';
        var at = 5;
        foreach (var (f, v) in fields)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(at), (uint)f.Length);
            f.CopyTo(raw, at + 4);
            at += 4 + f.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(at), (uint)v.Length);
            v.CopyTo(raw, at + 4);
            at += 4 + v.Length;
        }
        return raw;
    }

    public static int IndexOf(List<KeyValuePair<byte[], byte[]>> fields, ReadOnlySpan<byte> field)
    {
        for (var i = 0; i < fields.Count; i++)
            if (fields[i].Key.AsSpan().SequenceEqual(field)) return i;
        return -1;
    }
}

/// <summary>Byte-array keys compared by content.</summary>
internal sealed class BytesComparer : IEqualityComparer<byte[]>
{
    public static readonly BytesComparer Instance = new();
    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
    public int GetHashCode(byte[] obj)
    {
        var hash = new HashCode();
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }
}
