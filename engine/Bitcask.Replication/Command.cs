using System.Buffers.Binary;
using System.Text;

namespace Bitcask.Replication;

/// <summary>One replicated write: the payload of one Raft log entry (FORMAT.md, "Replication log entry").
/// Encoding and applying are pure functions of the bytes and the store's state, so every node that applies the same
/// entries in the same order ends with the same content and the same results.</summary>
internal static class Command
{
    internal const byte FormatVersion = 1;
    internal const byte KindBatch = 1;
    internal const byte KindIncrement = 2;

    internal const byte CondVersion = 1;
    internal const byte CondAbsent = 2;
    internal const byte CondExists = 3;

    internal const byte OpPut = 1;
    internal const byte OpDelete = 2;

    /// <summary>"\0raft:applied": the index of the newest log entry applied to this store (8 bytes, little-endian),
    /// written in the same batch as the entry's own writes.</summary>
    internal static ReadOnlySpan<byte> AppliedKey => "\0raft:applied"u8;

    /// <summary>Every key the replication layer keeps for itself starts with this.</summary>
    internal static ReadOnlySpan<byte> ReservedPrefix => "\0raft:"u8;

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

    /// <summary>Applies one entry's command to <paramref name="store"/> and records <paramref name="index"/> in the
    /// same batch. Only the applier calls this (never concurrently), so the checks below see the state every other
    /// node sees at the same log position.</summary>
    internal static CommandResult Apply(BitcaskStore store, ReadOnlySpan<byte> payload, long index)
    {
        var batch = new WriteBatch();
        CommandResult result;
        try
        {
            result = payload.Length < 2 || payload[0] != FormatVersion
                ? CommandResult.Error($"unknown replication command (format byte {(payload.Length > 0 ? payload[0] : -1)})")
                : payload[1] switch
                {
                    KindBatch => ApplyBatch(store, payload[2..], batch),
                    KindIncrement => ApplyIncrement(store, payload[2..], batch),
                    _ => CommandResult.Error($"unknown replication command kind {payload[1]}"),
                };
        }
        catch (FormatException e)
        {
            result = CommandResult.Error("malformed replication command: " + e.Message);
        }
        if (!result.Succeeded)
            batch.Clear();
        var applied = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(applied, index);
        batch.Put(AppliedKey, applied);
        try
        {
            store.Write(batch);
        }
        catch (ArgumentException e) when (batch.Count > 1)
        {
            // The store refuses the writes (a value over its MaxValueBytes, a batch over its segment size): the entry
            // is committed all the same, so it becomes a failed command on every node (all nodes must use the same
            // store limits) and only the applied index is recorded.
            batch.Clear();
            batch.Put(AppliedKey, applied);
            store.Write(batch);
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
                        if (kind == CondVersion) r.I64();
                        else if (kind is not (CondAbsent or CondExists)) throw new FormatException($"condition kind {kind}");
                    }
                    for (uint i = 0, n = r.U32(); i < n; i++)
                    {
                        var kind = r.U8();
                        CheckWireKey(r.Key());
                        if (kind == OpPut) r.Bytes(checked((int)r.U32()));
                        else if (kind != OpDelete) throw new FormatException($"operation kind {kind}");
                    }
                    break;
                case KindIncrement:
                    CheckWireKey(r.Key());
                    r.I64();
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

    private static CommandResult ApplyBatch(BitcaskStore store, ReadOnlySpan<byte> p, WriteBatch batch)
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
                    batch.Put(key, value);
                    break;
                case OpDelete:
                    if (holds && store.ContainsKey(key)) existed++;
                    batch.Delete(key);
                    break;
                default: throw new FormatException($"operation kind {kind}");
            }
        }
        r.End();
        return holds ? CommandResult.Ok(existed) : CommandResult.ConditionFailed;
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
        batch.Put(key, Encoding.ASCII.GetBytes(next.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return CommandResult.Ok(next);
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
