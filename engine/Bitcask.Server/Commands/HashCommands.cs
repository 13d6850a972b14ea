using System.Buffers.Text;
using System.Text;

namespace Bitcask.Server.Commands;

/// <summary>HSET HSETNX HGET HMGET HMSET HGETALL HDEL HEXISTS HLEN HKEYS HVALS HSTRLEN HINCRBY HINCRBYFLOAT HSCAN. A hash
/// is one stored value (<see cref="StoredValue"/>); a write keeps the key's TTL; removing the last field removes the key.</summary>
internal static class HashCommands
{
    private const CommandFlags W = CommandFlags.Write | CommandFlags.Fast, R = CommandFlags.ReadOnly | CommandFlags.Fast;

    public static IEnumerable<CommandSpec> All() =>
    [
        new("hset", -4, W, 1, 1, 1, "hash", "Creates or modifies the value of a field in a hash.", c => HSet(c, multi: false)),
        new("hmset", -4, W, 1, 1, 1, "hash", "Sets the values of multiple fields.", c => HSet(c, multi: true)),
        new("hsetnx", 4, W, 1, 1, 1, "hash", "Sets the value of a field in a hash only when the field doesn't exist.", HSetNx),
        new("hget", 3, R, 1, 1, 1, "hash", "Returns the value of a field in a hash.", HGet),
        new("hmget", -3, R, 1, 1, 1, "hash", "Returns the values of all fields in a hash.", HMGet),
        new("hgetall", 2, CommandFlags.ReadOnly, 1, 1, 1, "hash", "Returns all fields and values in a hash.", HGetAll),
        new("hdel", -3, W, 1, 1, 1, "hash", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", HDel),
        new("hexists", 3, R, 1, 1, 1, "hash", "Determines whether a field exists in a hash.", HExists),
        new("hlen", 2, R, 1, 1, 1, "hash", "Returns the number of fields in a hash.", HLen),
        new("hkeys", 2, CommandFlags.ReadOnly, 1, 1, 1, "hash", "Returns all fields in a hash.", c => HList(c, keys: true)),
        new("hvals", 2, CommandFlags.ReadOnly, 1, 1, 1, "hash", "Returns all values in a hash.", c => HList(c, keys: false)),
        new("hstrlen", 3, R, 1, 1, 1, "hash", "Returns the length of the value of a field.", HStrLen),
        new("hincrby", 4, W, 1, 1, 1, "hash", "Increments the integer value of a field in a hash by a number.", HIncrBy),
        new("hincrbyfloat", 4, W, 1, 1, 1, "hash", "Increments the floating point value of a field by a number.", HIncrByFloat),
        new("hscan", -3, CommandFlags.ReadOnly, 1, 1, 1, "hash", "Iterates over fields and values of a hash.", HScan),
    ];

    private static bool Read(CommandContext c, out Entry entry, out List<KeyValuePair<byte[], byte[]>> fields, out bool found)
    {
        var lookup = Keys.ReadHash(c, c.Arg(1), out entry, out fields);
        found = lookup == Lookup.Found;
        if (lookup != Lookup.WrongType) return true;
        c.Reply.Error(Errors.WrongType);
        return false;
    }

    private static void Save(CommandContext c, Entry entry, bool found, List<KeyValuePair<byte[], byte[]>> fields)
    {
        if (fields.Count == 0) c.Db.Delete(c.Arg(1));
        else c.Db.Put(c.Arg(1), StoredValue.EncodeHash(fields), found ? entry.ExpiresAtMs : 0);
    }

    private static void HSet(CommandContext c, bool multi)
    {
        if (c.Count % 2 != 0)
        {
            c.WrongArity();
            return;
        }
        if (!Read(c, out var entry, out var fields, out var found)) return;
        var added = 0;
        for (var i = 2; i < c.Count; i += 2)
        {
            var at = StoredValue.IndexOf(fields, c.Arg(i));
            if (at >= 0) fields[at] = new(fields[at].Key, c.Arg(i + 1));
            else
            {
                fields.Add(new(c.Arg(i), c.Arg(i + 1)));
                added++;
            }
        }
        Save(c, entry, found, fields);
        if (multi) c.Reply.Ok();
        else c.Reply.Integer(added);
    }

    private static void HSetNx(CommandContext c)
    {
        if (!Read(c, out var entry, out var fields, out var found)) return;
        if (StoredValue.IndexOf(fields, c.Arg(2)) >= 0)
        {
            c.Reply.Integer(0);
            return;
        }
        fields.Add(new(c.Arg(2), c.Arg(3)));
        Save(c, entry, found, fields);
        c.Reply.Integer(1);
    }

    private static void HGet(CommandContext c)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        var at = StoredValue.IndexOf(fields, c.Arg(2));
        if (at < 0) c.Reply.NullBulk();
        else c.Reply.Bulk(fields[at].Value);
    }

    private static void HMGet(CommandContext c)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        c.Reply.Array(c.Count - 2);
        for (var i = 2; i < c.Count; i++)
        {
            var at = StoredValue.IndexOf(fields, c.Arg(i));
            if (at < 0) c.Reply.NullBulk();
            else c.Reply.Bulk(fields[at].Value);
        }
    }

    private static void HGetAll(CommandContext c)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        c.Reply.Map(fields.Count);
        foreach (var (field, value) in fields)
        {
            c.Reply.Bulk(field);
            c.Reply.Bulk(value);
        }
    }

    private static void HDel(CommandContext c)
    {
        if (!Read(c, out var entry, out var fields, out var found)) return;
        var removed = 0;
        for (var i = 2; i < c.Count; i++)
        {
            var at = StoredValue.IndexOf(fields, c.Arg(i));
            if (at < 0) continue;
            fields.RemoveAt(at);
            removed++;
        }
        if (removed > 0) Save(c, entry, found, fields);
        c.Reply.Integer(removed);
    }

    private static void HExists(CommandContext c)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        c.Reply.Integer(StoredValue.IndexOf(fields, c.Arg(2)) >= 0 ? 1 : 0);
    }

    private static void HLen(CommandContext c)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        c.Reply.Integer(fields.Count);
    }

    private static void HStrLen(CommandContext c)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        var at = StoredValue.IndexOf(fields, c.Arg(2));
        c.Reply.Integer(at < 0 ? 0 : fields[at].Value.Length);
    }

    private static void HList(CommandContext c, bool keys)
    {
        if (!Read(c, out _, out var fields, out _)) return;
        c.Reply.Array(fields.Count);
        foreach (var (field, value) in fields) c.Reply.Bulk(keys ? field : value);
    }

    private static void HIncrBy(CommandContext c)
    {
        if (!c.TryLong(3, out var delta)) return;
        if (!Read(c, out var entry, out var fields, out var found)) return;
        var at = StoredValue.IndexOf(fields, c.Arg(2));
        long current = 0;
        if (at >= 0 && !CommandContext.TryParseLong(fields[at].Value, out current))
        {
            c.Reply.Error(Errors.HashNotInteger);
            return;
        }
        if (!c.TryAdd(current, delta, out var next)) return;
        Span<byte> digits = stackalloc byte[24];
        Utf8Formatter.TryFormat(next, digits, out var n);
        if (at >= 0) fields[at] = new(fields[at].Key, digits[..n].ToArray());
        else fields.Add(new(c.Arg(2), digits[..n].ToArray()));
        Save(c, entry, found, fields);
        c.Reply.Integer(next);
    }

    private static void HIncrByFloat(CommandContext c)
    {
        if (!c.TryDouble(3, out _)) return;
        if (!Read(c, out var entry, out var fields, out var found)) return;
        var at = StoredValue.IndexOf(fields, c.Arg(2));
        if (at >= 0 && !CommandContext.TryParseDouble(fields[at].Value, out _))
        {
            c.Reply.Error(Errors.HashNotFloat);
            return;
        }
        var result = StringCommands.AddFloat(at >= 0 ? fields[at].Value : "0"u8, c.Arg(3));
        if (result is null)
        {
            c.Reply.Error(Errors.NanOrInfinity);
            return;
        }
        var bytes = Encoding.ASCII.GetBytes(result);
        if (at >= 0) fields[at] = new(fields[at].Key, bytes);
        else fields.Add(new(c.Arg(2), bytes));
        Save(c, entry, found, fields);
        c.Reply.Bulk(bytes);
    }

    /// <summary>HSCAN returns every field at once with cursor 0 (Redis does the same for small hashes).</summary>
    private static void HScan(CommandContext c)
    {
        if (!KeyCommands.TryCursor(c, 2, out _)) return;
        if (!KeyCommands.TryScanOptions(c, 3, allowType: false, out var pattern, out _, out _)) return;
        if (!Read(c, out _, out var fields, out _)) return;
        var matching = fields.Where(f => pattern is null || Glob.Match(pattern, f.Key)).ToList();
        c.Reply.Array(2);
        c.Reply.Bulk("0"u8);
        c.Reply.Array(matching.Count * 2);
        foreach (var (field, value) in matching)
        {
            c.Reply.Bulk(field);
            c.Reply.Bulk(value);
        }
    }
}
