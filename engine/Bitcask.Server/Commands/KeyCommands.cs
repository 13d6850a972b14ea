using System.IO.Hashing;

namespace Bitcask.Server.Commands;

/// <summary>DEL UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME TTL PTTL PERSIST RENAME
/// RENAMENX KEYS SCAN.</summary>
internal static class KeyCommands
{
    private const CommandFlags W = CommandFlags.Write, R = CommandFlags.ReadOnly | CommandFlags.Fast;

    public static IEnumerable<CommandSpec> All() =>
    [
        new("del", -2, W, 1, -1, 1, "generic", "Deletes one or more keys.", Del),
        new("unlink", -2, W, 1, -1, 1, "generic", "Asynchronously deletes one or more keys.", Del),
        new("exists", -2, R, 1, -1, 1, "generic", "Determines whether one or more keys exist.", Exists),
        new("type", 2, R, 1, 1, 1, "generic", "Determines the type of value stored at a key.", Type),
        new("expire", -3, W, 1, 1, 1, "generic", "Sets the expiration time of a key in seconds.", c => Expire(c, false, false)),
        new("pexpire", -3, W, 1, 1, 1, "generic", "Sets the expiration time of a key in milliseconds.", c => Expire(c, true, false)),
        new("expireat", -3, W, 1, 1, 1, "generic", "Sets the expiration time of a key to a Unix timestamp.", c => Expire(c, false, true)),
        new("pexpireat", -3, W, 1, 1, 1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", c => Expire(c, true, true)),
        new("expiretime", 2, R, 1, 1, 1, "generic", "Returns the expiration time of a key as a Unix timestamp.", c => ExpireTime(c, false)),
        new("pexpiretime", 2, R, 1, 1, 1, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", c => ExpireTime(c, true)),
        new("ttl", 2, R, 1, 1, 1, "generic", "Returns the expiration time in seconds of a key.", c => Ttl(c, false)),
        new("pttl", 2, R, 1, 1, 1, "generic", "Returns the expiration time in milliseconds of a key.", c => Ttl(c, true)),
        new("persist", 2, W, 1, 1, 1, "generic", "Removes the expiration time of a key.", Persist),
        new("rename", 3, W, 1, 2, 1, "generic", "Renames a key and overwrites the destination.", c => Rename(c, onlyIfAbsent: false)),
        new("renamenx", 3, W, 1, 2, 1, "generic", "Renames a key only when the target key name doesn't exist.", c => Rename(c, onlyIfAbsent: true)),
        new("keys", 2, CommandFlags.ReadOnly, 0, 0, 0, "generic", "Returns all key names that match a pattern.", KeysCommand),
        new("scan", -2, CommandFlags.ReadOnly, 0, 0, 0, "generic", "Iterates over the key names in the database.", Scan),
    ];

    private static void Del(CommandContext c)
    {
        var removed = 0;
        for (var i = 1; i < c.Count; i++)
            if (c.Db.Exists(c.Arg(i)))
            {
                c.Db.Delete(c.Arg(i));
                removed++;
            }
        c.Reply.Integer(removed);
    }

    private static void Exists(CommandContext c)
    {
        var count = 0;
        for (var i = 1; i < c.Count; i++)
            if (c.Db.Exists(c.Arg(i))) count++;
        c.Reply.Integer(count);
    }

    private static void Type(CommandContext c) =>
        c.Reply.Simple(c.Db.TryRead(c.Arg(1), out var entry) ? TypeName(entry.Type) : "none");

    internal static string TypeName(ValueType type) => type == ValueType.Hash ? "hash" : "string";

    private static void Expire(CommandContext c, bool milliseconds, bool absolute)
    {
        bool nx = false, xx = false, gt = false, lt = false;
        for (var i = 3; i < c.Count; i++)
        {
            if (c.Is(i, "NX")) nx = true;
            else if (c.Is(i, "XX")) xx = true;
            else if (c.Is(i, "GT")) gt = true;
            else if (c.Is(i, "LT")) lt = true;
            else
            {
                c.Reply.Error($"ERR Unsupported option {c.Text(i)}");
                return;
            }
        }
        if (nx && (xx || gt || lt))
        {
            c.Reply.Error("ERR NX and XX, GT or LT options at the same time are not compatible");
            return;
        }
        if (gt && lt)
        {
            c.Reply.Error("ERR GT and LT options at the same time are not compatible");
            return;
        }
        if (!Keys.TryExpiry(c, 2, milliseconds, absolute, allowNonPositive: true, out var expiresAt)) return;
        if (!c.Db.TryRead(c.Arg(1), out var entry))
        {
            c.Reply.Integer(0);
            return;
        }
        var current = entry.ExpiresAtMs; // 0 = no expiry, which GT and LT treat as infinite
        if ((nx && current != 0) || (xx && current == 0) || (gt && (current == 0 || expiresAt <= current)) || (lt && current != 0 && expiresAt >= current))
        {
            c.Reply.Integer(0);
            return;
        }
        c.Db.Put(c.Arg(1), entry.Raw, expiresAt); // an expiry already past deletes the key, as in Redis
        c.Reply.Integer(1);
    }

    private static void ExpireTime(CommandContext c, bool milliseconds)
    {
        if (!c.Db.TryRead(c.Arg(1), out var entry)) c.Reply.Integer(-2);
        else if (entry.ExpiresAtMs == 0) c.Reply.Integer(-1);
        else c.Reply.Integer(milliseconds ? entry.ExpiresAtMs : (entry.ExpiresAtMs + 500) / 1000);
    }

    private static void Ttl(CommandContext c, bool milliseconds)
    {
        if (!c.Db.TryRead(c.Arg(1), out var entry)) c.Reply.Integer(-2);
        else if (entry.ExpiresAtMs == 0) c.Reply.Integer(-1);
        else
        {
            var left = Math.Max(0, entry.ExpiresAtMs - c.Db.NowMs);
            c.Reply.Integer(milliseconds ? left : (left + 500) / 1000);
        }
    }

    private static void Persist(CommandContext c)
    {
        if (!c.Db.TryRead(c.Arg(1), out var entry) || entry.ExpiresAtMs == 0)
        {
            c.Reply.Integer(0);
            return;
        }
        c.Db.Put(c.Arg(1), entry.Raw, 0);
        c.Reply.Integer(1);
    }

    private static void Rename(CommandContext c, bool onlyIfAbsent)
    {
        if (!c.Db.TryRead(c.Arg(1), out var entry))
        {
            c.Reply.Error(Errors.NoSuchKey);
            return;
        }
        var same = c.Arg(1).AsSpan().SequenceEqual(c.Arg(2));
        if (onlyIfAbsent && (same || c.Db.Exists(c.Arg(2))))
        {
            c.Reply.Integer(0);
            return;
        }
        if (!same)
        {
            c.Db.Delete(c.Arg(1));
            c.Db.Put(c.Arg(2), entry.Raw, entry.ExpiresAtMs);
        }
        if (onlyIfAbsent) c.Reply.Integer(1);
        else c.Reply.Ok();
    }

    private static void KeysCommand(CommandContext c)
    {
        var pattern = c.Arg(1);
        var all = pattern is [(byte)'*'];
        var keys = new List<byte[]>();
        foreach (var key in c.Db.Keys())
            if (all || Glob.Match(pattern, key)) keys.Add(key);
        c.Reply.Array(keys.Count);
        foreach (var key in keys) c.Reply.Bulk(key);
    }

    /// <summary>
    /// SCAN's cursor is a position in the order of a 63-bit hash of the keys: a call returns the keys whose hash is at
    /// least the cursor (about COUNT of them, all keys sharing the last hash included) and the next hash as the cursor, 0
    /// at the end. Like Redis's, it returns every key present for the whole iteration (at least once). The key directory
    /// is read once per iteration, not per call: the call that starts it (or continues a cursor this connection did not
    /// hand out) reads the keys from the cursor on, sorted by hash, and keeps them on the connection; a call that
    /// continues from the cursor the previous call returned resumes there by binary search, in O(log N + COUNT). Keys
    /// written after that read may or may not be returned, as Redis allows; a key deleted since is skipped.
    /// </summary>
    private static void Scan(CommandContext c)
    {
        if (!TryCursor(c, 1, out var cursor)) return;
        if (!TryScanOptions(c, 2, allowType: true, out var pattern, out var count, out var type)) return;
        var snapshot = c.Client?.ScanSnapshot is { } kept && kept.Next == cursor && cursor != 0 ? kept : ScanSnapshot.Read(c.Db.Keys(), cursor);
        var keys = snapshot.Keys;
        var i = snapshot.IndexOf(cursor);
        var result = new List<byte[]>();
        var next = 0L;
        for (var taken = 0; i < keys.Length; i++, taken++)
        {
            if (taken >= count && keys[i].Hash != keys[i - 1].Hash)
            {
                next = keys[i].Hash;
                break;
            }
            var key = keys[i].Key;
            if (pattern is not null && !Glob.Match(pattern, key)) continue;
            if (type is null)
            {
                if (c.Db.Store.GetInfo(key) is null) continue; // deleted since the iteration read the keys
            }
            else if (!c.Db.TryRead(key, out var entry) || !TypeName(entry.Type).Equals(type, StringComparison.OrdinalIgnoreCase)) continue;
            result.Add(key);
        }
        if (c.Client is { } client)
        {
            snapshot.Next = next;
            client.ScanSnapshot = next == 0 ? null : snapshot;
        }
        c.Reply.Array(2);
        c.Reply.Bulk(next);
        c.Reply.Array(result.Count);
        foreach (var key in result) c.Reply.Bulk(key);
    }

    internal static long HashOf(byte[] key) => (long)(XxHash64.HashToUInt64(key) >> 1) | 1;

    internal static bool TryCursor(CommandContext c, int index, out long cursor)
    {
        if (ulong.TryParse(c.Arg(index), System.Globalization.NumberStyles.None, null, out var value) && value <= long.MaxValue)
        {
            cursor = (long)value;
            return true;
        }
        cursor = 0;
        c.Reply.Error("ERR invalid cursor");
        return false;
    }

    internal static bool TryScanOptions(CommandContext c, int start, bool allowType, out byte[]? pattern, out int count, out string? type)
    {
        pattern = null;
        count = 10;
        type = null;
        for (var i = start; i < c.Count; i++)
        {
            if (c.Is(i, "MATCH") && i + 1 < c.Count)
            {
                pattern = c.Arg(++i);
                if (pattern is [(byte)'*']) pattern = null;
            }
            else if (c.Is(i, "COUNT") && i + 1 < c.Count)
            {
                if (!c.TryLong(++i, out var n)) return false;
                if (n < 1)
                {
                    c.Reply.Error(Errors.Syntax);
                    return false;
                }
                count = (int)Math.Min(n, int.MaxValue);
            }
            else if (allowType && c.Is(i, "TYPE") && i + 1 < c.Count) type = c.Text(++i);
            else
            {
                c.Reply.Error(Errors.Syntax);
                return false;
            }
        }
        return true;
    }
}

/// <summary>The keys of one SCAN iteration from its starting cursor on, sorted by <see cref="KeyCommands.HashOf"/>, and
/// the cursor the last call handed out. Kept on the connection between calls. Not thread-safe.</summary>
internal sealed class ScanSnapshot((long Hash, byte[] Key)[] keys)
{
    public (long Hash, byte[] Key)[] Keys { get; } = keys;

    /// <summary>The cursor the last call returned: the call continuing from it resumes here.</summary>
    public long Next { get; set; }

    /// <summary>The keys of <paramref name="all"/> whose hash is at least <paramref name="cursor"/>, sorted by hash.</summary>
    public static ScanSnapshot Read(IEnumerable<byte[]> all, long cursor)
    {
        var keys = new List<(long Hash, byte[] Key)>();
        foreach (var key in all)
        {
            var hash = KeyCommands.HashOf(key);
            if (hash >= cursor) keys.Add((hash, key));
        }
        keys.Sort((a, b) => a.Hash.CompareTo(b.Hash));
        return new ScanSnapshot([.. keys]);
    }

    /// <summary>The first position whose hash is at least <paramref name="cursor"/>.</summary>
    public int IndexOf(long cursor)
    {
        int low = 0, high = Keys.Length;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (Keys[middle].Hash < cursor) low = middle + 1;
            else high = middle;
        }
        return low;
    }
}
