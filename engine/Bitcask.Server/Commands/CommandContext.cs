using System.Buffers.Text;
using System.Text;
using Bitcask.Server.Protocol;

namespace Bitcask.Server.Commands;

/// <summary>What a command handler works with: its arguments, the reply being written, the keyspace view, the client
/// and the server. Not thread-safe: one per connection.</summary>
internal sealed class CommandContext(ServerState server, Connection? client, KeyspaceView db, ReplyWriter reply)
{
    public ServerState Server { get; } = server;
    /// <summary>The client, or null for commands run by the server itself.</summary>
    public Connection? Client { get; } = client;
    public KeyspaceView Db { get; set; } = db;
    public ReplyWriter Reply { get; set; } = reply;
    public byte[][] Args { get; set; } = [];
    public CommandSpec Spec { get; set; } = null!;
    /// <summary>Inside EVAL/EVALSHA (redis.call).</summary>
    public bool InScript { get; set; }
    /// <summary>Inside EXEC.</summary>
    public bool InTransaction { get; set; }
    /// <summary>Effects outside the keyspace that must happen once, after the command's writes committed (PUBLISH in a
    /// transaction or script).</summary>
    public List<Action> AfterCommit { get; } = [];

    public int Count => Args.Length;

    public byte[] Arg(int index) => Args[index];

    public string Text(int index) => Encoding.UTF8.GetString(Args[index]);

    public bool Is(int index, string word) => Ascii.EqualsIgnoreCase(Args[index], word);

    public string Name => Spec.Name;

    /// <summary>Parses a signed 64-bit integer argument the way Redis's string2ll does; false after writing Redis's error.</summary>
    public bool TryLong(int index, out long value)
    {
        if (TryParseLong(Args[index], out value)) return true;
        Reply.Error(Errors.NotInteger);
        return false;
    }

    /// <summary><paramref name="current"/> + <paramref name="delta"/> for INCRBY and HINCRBY; false, after replying Redis's
    /// overflow error, when the sum does not fit 64 bits.</summary>
    public bool TryAdd(long current, long delta, out long next)
    {
        next = unchecked(current + delta);
        if (((current ^ next) & (delta ^ next)) >= 0) return true;
        Reply.Error(Errors.Overflow);
        return false;
    }

    public static bool TryParseLong(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > 20) return false;
        if (text[0] == '+' || (text.Length > 1 && text[0] == '0') || (text.Length > 2 && text[0] == '-' && text[1] == '0')) return false;
        if (text.Length == 2 && text[0] == '-' && text[1] == '0') return false;
        return Utf8Parser.TryParse(text, out value, out var used) && used == text.Length;
    }

    public bool TryDouble(int index, out double value)
    {
        if (TryParseDouble(Args[index], out value)) return true;
        Reply.Error(Errors.NotFloat);
        return false;
    }

    public static bool TryParseDouble(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > 5000 || text[0] == ' ' || text[^1] == ' ') return false;
        var s = Encoding.ASCII.GetString(text);
        if (s.Equals("inf", StringComparison.OrdinalIgnoreCase) || s.Equals("+inf", StringComparison.OrdinalIgnoreCase)) { value = double.PositiveInfinity; return true; }
        if (s.Equals("-inf", StringComparison.OrdinalIgnoreCase)) { value = double.NegativeInfinity; return true; }
        return double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out value) && !double.IsNaN(value);
    }

    public void WrongArity() => Reply.Error(Errors.WrongArity(Spec.Name));
}

/// <summary>Redis 7's error texts.</summary>
internal static class Errors
{
    public const string WrongType = "WRONGTYPE Operation against a key holding the wrong kind of value";
    public const string NotInteger = "ERR value is not an integer or out of range";
    public const string NotFloat = "ERR value is not a valid float";
    public const string Syntax = "ERR syntax error";
    public const string Overflow = "ERR increment or decrement would overflow";
    public const string NoSuchKey = "ERR no such key";
    public const string NoAuth = "NOAUTH Authentication required.";
    public const string WrongPass = "WRONGPASS invalid username-password pair or user is disabled.";
    public const string HashNotInteger = "ERR hash value is not an integer";
    public const string HashNotFloat = "ERR hash value is not a float";
    public const string NanOrInfinity = "ERR increment would produce NaN or Infinity";
    public static string WrongArity(string name) => $"ERR wrong number of arguments for '{name}' command";
    public static string InvalidExpire(string name) => $"ERR invalid expire time in '{name}' command";
}
