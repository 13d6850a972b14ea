using System.Globalization;
using System.Text;
using Bitcask.Server.Scripting;

namespace Bitcask.Server.Tests.Scripting;

/// <summary>
/// A tiny in-memory stand-in for the server's command table, enough for the scripts under test: GET SET (NX XX PX
/// EX) INCR INCRBY DECR DEL EXISTS MGET PEXPIRE PEXPIREAT PTTL TIME PING ECHO, plus FAIL (always an error) and
/// THROW (throws). Replies follow Redis. Thread-safe (one lock), so concurrent scripts can share it.
/// </summary>
internal sealed class FakeRedis : IScriptCommandExecutor
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (byte[] Value, long? ExpiresAtMs)> _data = new(StringComparer.Ordinal);

    /// <summary>The fake clock, in Unix milliseconds (TIME and expiry use it).</summary>
    public long NowMs { get; set; } = 1_700_000_000_123;

    public List<string> Log { get; } = [];

    public int Calls { get; private set; }

    public string? GetString(string key)
    {
        lock (_gate)
        {
            return TryGet(key, out byte[]? value) ? Encoding.UTF8.GetString(value!) : null;
        }
    }

    public long? ExpiryOf(string key)
    {
        lock (_gate)
        {
            return _data.TryGetValue(key, out var entry) ? entry.ExpiresAtMs : null;
        }
    }

    public void Set(string key, string value)
    {
        lock (_gate)
        {
            _data[key] = (Encoding.UTF8.GetBytes(value), null);
        }
    }

    public ScriptValue Execute(IReadOnlyList<byte[]> argv)
    {
        lock (_gate)
        {
            Calls++;
            string[] text = [.. argv.Select(a => Encoding.UTF8.GetString(a))];
            Log.Add(string.Join(' ', text));
            string name = text[0].ToUpperInvariant();
            return name switch
            {
                "PING" => new ScriptValue.Status("PONG"),
                "ECHO" => new ScriptValue.Bulk(argv[1]),
                "GET" => TryGet(text[1], out byte[]? value) ? new ScriptValue.Bulk(value!) : new ScriptValue.Nil(),
                "SET" => SetCommand(text, argv),
                "INCR" => IncrBy(text[1], 1),
                "DECR" => IncrBy(text[1], -1),
                "INCRBY" => long.TryParse(text[2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long by)
                    ? IncrBy(text[1], by)
                    : NotInteger(),
                "DEL" => new ScriptValue.Integer(text.Skip(1).Count(k => TryGet(k, out _) && _data.Remove(k))),
                "EXISTS" => new ScriptValue.Integer(text.Skip(1).Count(k => TryGet(k, out _))),
                "MGET" => new ScriptValue.Array([.. text.Skip(1).Select(k => TryGet(k, out byte[]? v) ? (ScriptValue)new ScriptValue.Bulk(v!) : new ScriptValue.Nil())]),
                "PEXPIRE" => Expire(text[1], text[2], relative: true),
                "PEXPIREAT" => Expire(text[1], text[2], relative: false),
                "PTTL" => Pttl(text[1]),
                "TIME" => new ScriptValue.Array([
                    ScriptValue.Bulk.From((NowMs / 1000).ToString(CultureInfo.InvariantCulture)),
                    ScriptValue.Bulk.From((NowMs % 1000 * 1000).ToString(CultureInfo.InvariantCulture)),
                ]),
                "FAIL" => new ScriptValue.Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
                "THROW" => throw new InvalidOperationException("executor blew up"),
                _ => new ScriptValue.Error($"ERR unknown command '{text[0]}'"),
            };
        }
    }

    private static ScriptValue.Error NotInteger() => new("ERR value is not an integer or out of range");

    private bool TryGet(string key, out byte[]? value)
    {
        if (_data.TryGetValue(key, out var entry))
        {
            if (entry.ExpiresAtMs is { } at && at <= NowMs)
            {
                _data.Remove(key);
            }
            else
            {
                value = entry.Value;
                return true;
            }
        }

        value = null;
        return false;
    }

    private ScriptValue SetCommand(string[] text, IReadOnlyList<byte[]> argv)
    {
        long? expiresAt = null;
        bool nx = false, xx = false;
        for (int i = 3; i < text.Length; i++)
        {
            switch (text[i].ToUpperInvariant())
            {
                case "NX": nx = true; break;
                case "XX": xx = true; break;
                case "PX" when i + 1 < text.Length && long.TryParse(text[i + 1], CultureInfo.InvariantCulture, out long px) && px > 0:
                    expiresAt = NowMs + px;
                    i++;
                    break;
                case "EX" when i + 1 < text.Length && long.TryParse(text[i + 1], CultureInfo.InvariantCulture, out long ex) && ex > 0:
                    expiresAt = NowMs + (ex * 1000);
                    i++;
                    break;
                default:
                    return new ScriptValue.Error("ERR syntax error");
            }
        }

        bool exists = TryGet(text[1], out _);
        if ((nx && exists) || (xx && !exists))
        {
            return new ScriptValue.Nil();
        }

        _data[text[1]] = (argv[2], expiresAt);
        return new ScriptValue.Status("OK");
    }

    private ScriptValue IncrBy(string key, long by)
    {
        long current = 0;
        long? expiresAt = null;
        if (TryGet(key, out byte[]? value))
        {
            if (!long.TryParse(Encoding.UTF8.GetString(value!), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out current))
            {
                return NotInteger();
            }

            expiresAt = _data[key].ExpiresAtMs;
        }

        current += by;
        _data[key] = (Encoding.UTF8.GetBytes(current.ToString(CultureInfo.InvariantCulture)), expiresAt);
        return new ScriptValue.Integer(current);
    }

    private ScriptValue Expire(string key, string amount, bool relative)
    {
        if (!long.TryParse(amount, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long ms))
        {
            return NotInteger();
        }

        if (!TryGet(key, out byte[]? value))
        {
            return new ScriptValue.Integer(0);
        }

        _data[key] = (value!, relative ? NowMs + ms : ms);
        return new ScriptValue.Integer(1);
    }

    private ScriptValue Pttl(string key)
    {
        if (!TryGet(key, out _))
        {
            return new ScriptValue.Integer(-2);
        }

        return new ScriptValue.Integer(_data[key].ExpiresAtMs is { } at ? at - NowMs : -1);
    }
}
