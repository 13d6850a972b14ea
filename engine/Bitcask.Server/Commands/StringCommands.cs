using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Bitcask.Server.Commands;

/// <summary>GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX APPEND STRLEN INCR INCRBY DECR DECRBY
/// INCRBYFLOAT. A write keeps a key's TTL where Redis does (APPEND, INCR…, SET KEEPTTL) and drops it where Redis does.</summary>
internal static class StringCommands
{
    private const CommandFlags W = CommandFlags.Write, R = CommandFlags.ReadOnly | CommandFlags.Fast;

    public static IEnumerable<CommandSpec> All() =>
    [
        new("get", 2, R, 1, 1, 1, "string", "Returns the string value of a key.", Get),
        new("set", -3, W, 1, 1, 1, "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", Set),
        new("setnx", 3, W, 1, 1, 1, "string", "Set the string value of a key only when the key doesn't exist.", SetNx),
        new("setex", 4, W, 1, 1, 1, "string", "Sets the string value and expiration time of a key.", c => SetEx(c, milliseconds: false)),
        new("psetex", 4, W, 1, 1, 1, "string", "Sets both string value and expiration time in milliseconds of a key.", c => SetEx(c, milliseconds: true)),
        new("getset", 3, W, 1, 1, 1, "string", "Returns the previous string value of a key after setting it to a new value.", GetSet),
        new("getdel", 2, W, 1, 1, 1, "string", "Returns the string value of a key after deleting the key.", GetDel),
        new("getex", -2, W, 1, 1, 1, "string", "Returns the string value of a key after setting its expiration time.", GetEx),
        new("mget", -2, R, 1, -1, 1, "string", "Atomically returns the string values of one or more keys.", MGet),
        new("mset", -3, W, 1, -1, 2, "string", "Atomically creates or modifies the string values of one or more keys.", c => MSet(c, onlyIfNoneExist: false)),
        new("msetnx", -3, W, 1, -1, 2, "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", c => MSet(c, onlyIfNoneExist: true)),
        new("append", 3, W, 1, 1, 1, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", Append),
        new("strlen", 2, R, 1, 1, 1, "string", "Returns the length of a string value.", StrLen),
        new("incr", 2, W, 1, 1, 1, "string", "Increments the integer value of a key by one.", c => IncrBy(c, 1)),
        new("decr", 2, W, 1, 1, 1, "string", "Decrements the integer value of a key by one.", c => IncrBy(c, -1)),
        new("incrby", 3, W, 1, 1, 1, "string", "Increments the integer value of a key by a number.", c => IncrByArg(c, negate: false)),
        new("decrby", 3, W, 1, 1, 1, "string", "Decrements a number from the integer value of a key.", c => IncrByArg(c, negate: true)),
        new("incrbyfloat", 3, W, 1, 1, 1, "string", "Increment the floating point value of a key by a number.", IncrByFloat),
    ];

    private static void Get(CommandContext c)
    {
        if (!c.Db.TryReadSpan(c.Arg(1), out var raw)) c.Reply.NullBulk();
        else if (StoredValue.TypeOf(raw) != ValueType.String) c.Reply.Error(Errors.WrongType);
        else c.Reply.Bulk(StoredValue.StringOf(raw));
    }

    private static void Set(CommandContext c)
    {
        bool nx = false, xx = false, get = false, keepTtl = false;
        int expiryIndex = -1;
        bool expiryMs = false, expiryAbsolute = false;
        for (var i = 3; i < c.Count; i++)
        {
            var hasNext = i + 1 < c.Count;
            if (c.Is(i, "NX") && !xx) nx = true;
            else if (c.Is(i, "XX") && !nx) xx = true;
            else if (c.Is(i, "GET")) get = true;
            else if (c.Is(i, "KEEPTTL") && expiryIndex < 0) keepTtl = true;
            else if (!keepTtl && expiryIndex < 0 && hasNext && (c.Is(i, "EX") || c.Is(i, "PX") || c.Is(i, "EXAT") || c.Is(i, "PXAT")))
            {
                expiryMs = c.Is(i, "PX") || c.Is(i, "PXAT");
                expiryAbsolute = c.Is(i, "EXAT") || c.Is(i, "PXAT");
                expiryIndex = ++i;
            }
            else
            {
                c.Reply.Error(Errors.Syntax);
                return;
            }
        }
        long expiresAt = 0;
        if (expiryIndex > 0 && !Keys.TryExpiry(c, expiryIndex, expiryMs, expiryAbsolute, allowNonPositive: false, out expiresAt)) return;
        var key = c.Arg(1);
        Entry old = default;
        var found = false;
        if (nx || xx || get || keepTtl)
        {
            found = c.Db.TryRead(key, out old);
            if (get && found && old.Type != ValueType.String)
            {
                c.Reply.Error(Errors.WrongType);
                return;
            }
        }
        var apply = !(nx && found) && !(xx && !found);
        if (apply) c.Db.Put(key, StoredValue.FromString(c.Arg(2)), keepTtl && found ? old.ExpiresAtMs : expiresAt);
        if (get)
        {
            if (found) c.Reply.Bulk(StoredValue.StringOf(old.Raw));
            else c.Reply.NullBulk();
        }
        else if (apply) c.Reply.Ok();
        else c.Reply.NullBulk();
    }

    private static void SetNx(CommandContext c)
    {
        if (c.Db.Exists(c.Arg(1)))
        {
            c.Reply.Integer(0);
            return;
        }
        c.Db.Put(c.Arg(1), StoredValue.FromString(c.Arg(2)), 0);
        c.Reply.Integer(1);
    }

    private static void SetEx(CommandContext c, bool milliseconds)
    {
        if (!Keys.TryExpiry(c, 2, milliseconds, absolute: false, allowNonPositive: false, out var expiresAt)) return;
        c.Db.Put(c.Arg(1), StoredValue.FromString(c.Arg(3)), expiresAt);
        c.Reply.Ok();
    }

    private static void GetSet(CommandContext c)
    {
        var lookup = Keys.ReadString(c, c.Arg(1), out _, out var old);
        if (lookup == Lookup.WrongType)
        {
            c.Reply.Error(Errors.WrongType);
            return;
        }
        c.Db.Put(c.Arg(1), StoredValue.FromString(c.Arg(2)), 0);
        if (lookup == Lookup.Found) c.Reply.Bulk(old);
        else c.Reply.NullBulk();
    }

    private static void GetDel(CommandContext c)
    {
        switch (Keys.ReadString(c, c.Arg(1), out _, out var value))
        {
            case Lookup.Missing: c.Reply.NullBulk(); break;
            case Lookup.WrongType: c.Reply.Error(Errors.WrongType); break;
            default:
                c.Db.Delete(c.Arg(1));
                c.Reply.Bulk(value);
                break;
        }
    }

    private static void GetEx(CommandContext c)
    {
        int expiryIndex = -1;
        bool ms = false, absolute = false, persist = false;
        for (var i = 2; i < c.Count; i++)
        {
            var hasNext = i + 1 < c.Count;
            if (c.Is(i, "PERSIST") && expiryIndex < 0 && !persist) persist = true;
            else if (!persist && expiryIndex < 0 && hasNext && (c.Is(i, "EX") || c.Is(i, "PX") || c.Is(i, "EXAT") || c.Is(i, "PXAT")))
            {
                ms = c.Is(i, "PX") || c.Is(i, "PXAT");
                absolute = c.Is(i, "EXAT") || c.Is(i, "PXAT");
                expiryIndex = ++i;
            }
            else
            {
                c.Reply.Error(Errors.Syntax);
                return;
            }
        }
        long expiresAt = 0;
        if (expiryIndex > 0 && !Keys.TryExpiry(c, expiryIndex, ms, absolute, allowNonPositive: false, out expiresAt)) return;
        switch (Keys.ReadString(c, c.Arg(1), out var entry, out var value))
        {
            case Lookup.Missing: c.Reply.NullBulk(); return;
            case Lookup.WrongType: c.Reply.Error(Errors.WrongType); return;
        }
        if (expiryIndex > 0) c.Db.Put(c.Arg(1), entry.Raw, expiresAt);
        else if (persist && entry.ExpiresAtMs != 0) c.Db.Put(c.Arg(1), entry.Raw, 0);
        c.Reply.Bulk(value);
    }

    private static void MGet(CommandContext c)
    {
        c.Reply.Array(c.Count - 1);
        for (var i = 1; i < c.Count; i++)
            if (Keys.ReadString(c, c.Arg(i), out _, out var value) == Lookup.Found) c.Reply.Bulk(value);
            else c.Reply.NullBulk();
    }

    private static void MSet(CommandContext c, bool onlyIfNoneExist)
    {
        if (c.Count % 2 == 0)
        {
            c.WrongArity();
            return;
        }
        if (onlyIfNoneExist)
            for (var i = 1; i < c.Count; i += 2)
                if (c.Db.Exists(c.Arg(i)))
                {
                    c.Reply.Integer(0);
                    return;
                }
        for (var i = 1; i < c.Count; i += 2) c.Db.Put(c.Arg(i), StoredValue.FromString(c.Arg(i + 1)), 0);
        if (onlyIfNoneExist) c.Reply.Integer(1);
        else c.Reply.Ok();
    }

    private static void Append(CommandContext c)
    {
        var lookup = Keys.ReadString(c, c.Arg(1), out var entry, out var value);
        if (lookup == Lookup.WrongType)
        {
            c.Reply.Error(Errors.WrongType);
            return;
        }
        byte[] joined = [.. value, .. c.Arg(2)];
        c.Db.Put(c.Arg(1), StoredValue.FromString(joined), lookup == Lookup.Found ? entry.ExpiresAtMs : 0);
        c.Reply.Integer(joined.Length);
    }

    private static void StrLen(CommandContext c)
    {
        switch (Keys.ReadString(c, c.Arg(1), out _, out var value))
        {
            case Lookup.WrongType: c.Reply.Error(Errors.WrongType); break;
            default: c.Reply.Integer(value.Length); break;
        }
    }

    private static void IncrByArg(CommandContext c, bool negate)
    {
        if (!c.TryLong(2, out var delta)) return;
        if (negate)
        {
            if (delta == long.MinValue)
            {
                c.Reply.Error("ERR decrement would overflow");
                return;
            }
            delta = -delta;
        }
        IncrBy(c, delta);
    }

    private static void IncrBy(CommandContext c, long delta)
    {
        var lookup = Keys.ReadString(c, c.Arg(1), out var entry, out var value);
        if (lookup == Lookup.WrongType)
        {
            c.Reply.Error(Errors.WrongType);
            return;
        }
        long current = 0;
        if (lookup == Lookup.Found && !CommandContext.TryParseLong(value, out current))
        {
            c.Reply.Error(Errors.NotInteger);
            return;
        }
        if (!c.TryAdd(current, delta, out var next)) return;
        Span<byte> digits = stackalloc byte[24];
        Utf8Formatter.TryFormat(next, digits, out var n);
        c.Db.Put(c.Arg(1), digits[..n].ToArray(), lookup == Lookup.Found ? entry.ExpiresAtMs : 0);
        c.Reply.Integer(next);
    }

    private static void IncrByFloat(CommandContext c)
    {
        if (!c.TryDouble(2, out _)) return;
        var lookup = Keys.ReadString(c, c.Arg(1), out var entry, out var value);
        if (lookup == Lookup.WrongType)
        {
            c.Reply.Error(Errors.WrongType);
            return;
        }
        if (lookup == Lookup.Found && !CommandContext.TryParseDouble(value, out _))
        {
            c.Reply.Error(Errors.NotFloat);
            return;
        }
        var result = AddFloat(lookup == Lookup.Found ? value : "0"u8, c.Arg(2));
        if (result is null)
        {
            c.Reply.Error(Errors.NanOrInfinity);
            return;
        }
        var bytes = Encoding.ASCII.GetBytes(result);
        c.Db.Put(c.Arg(1), bytes, lookup == Lookup.Found ? entry.ExpiresAtMs : 0);
        c.Reply.Bulk(bytes);
    }

    /// <summary>current + increment as Redis prints it (%.17Lf, trailing zeros dropped): in decimal arithmetic when both
    /// fit (so 0.1 + 0.2 is 0.3, as with Redis's long double), else in double. Null for an infinite result.</summary>
    internal static string? AddFloat(ReadOnlySpan<byte> current, ReadOnlySpan<byte> increment)
    {
        var a = Encoding.ASCII.GetString(current);
        var b = Encoding.ASCII.GetString(increment);
        const NumberStyles style = NumberStyles.Float;
        if (decimal.TryParse(a, style, CultureInfo.InvariantCulture, out var da) && decimal.TryParse(b, style, CultureInfo.InvariantCulture, out var db))
        {
            try
            {
                var sum = Math.Round(da + db, 17);
                return sum.ToString("0.#################", CultureInfo.InvariantCulture);
            }
            catch (OverflowException)
            {
            }
        }
        CommandContext.TryParseDouble(current, out var x);
        CommandContext.TryParseDouble(increment, out var y);
        var result = x + y;
        if (double.IsNaN(result) || double.IsInfinity(result)) return null;
        return result.ToString("0.#################", CultureInfo.InvariantCulture);
    }
}
