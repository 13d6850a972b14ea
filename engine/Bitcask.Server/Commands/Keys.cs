namespace Bitcask.Server.Commands;

internal enum Lookup { Missing, Found, WrongType }

/// <summary>Typed reads and expiry arithmetic shared by the command groups.</summary>
internal static class Keys
{
    /// <summary>The latest expiry the engine stores (9999-12-31T23:59:59.999Z).</summary>
    public const long MaxExpiryMs = 253402300799999;

    /// <summary>Reads a string key; WrongType when it holds a hash (the caller writes the error).</summary>
    public static Lookup ReadString(CommandContext c, byte[] key, out Entry entry, out byte[] value)
    {
        value = [];
        if (!c.Db.TryRead(key, out entry)) return Lookup.Missing;
        if (entry.Type != ValueType.String) return Lookup.WrongType;
        value = StoredValue.StringOf(entry.Raw).ToArray();
        return Lookup.Found;
    }

    public static Lookup ReadHash(CommandContext c, byte[] key, out Entry entry, out List<KeyValuePair<byte[], byte[]>> fields)
    {
        fields = [];
        if (!c.Db.TryRead(key, out entry)) return Lookup.Missing;
        if (entry.Type != ValueType.Hash) return Lookup.WrongType;
        fields = StoredValue.DecodeHash(entry.Raw);
        return Lookup.Found;
    }

    /// <summary>An absolute expiry (Unix ms) from a relative or absolute time in seconds or milliseconds, with Redis's
    /// checks: false after writing "invalid expire time" (not positive where it must be, overflow, past year 9999) or
    /// "not an integer".</summary>
    public static bool TryExpiry(CommandContext c, int index, bool milliseconds, bool absolute, bool allowNonPositive, out long expiresAtMs)
    {
        expiresAtMs = 0;
        if (!c.TryLong(index, out var amount)) return false;
        if (!allowNonPositive && amount <= 0)
        {
            c.Reply.Error(Errors.InvalidExpire(c.Name));
            return false;
        }
        try
        {
            var ms = milliseconds ? amount : checked(amount * 1000);
            expiresAtMs = absolute ? ms : checked(c.Db.NowMs + ms);
        }
        catch (OverflowException)
        {
            c.Reply.Error(Errors.InvalidExpire(c.Name));
            return false;
        }
        if (expiresAtMs > MaxExpiryMs)
        {
            c.Reply.Error(Errors.InvalidExpire(c.Name));
            return false;
        }
        if (expiresAtMs <= 0) expiresAtMs = 1; // in the past: the key goes (0 would mean "no expiry")
        return true;
    }
}
