using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Bitcask.Server.Protocol;

/// <summary>
/// Writes RESP2 or RESP3 replies into a growable buffer. A command's reply can be taken back (<see cref="Length"/> set to
/// an earlier mark) when the command has to run again after a conflicting write. Not thread-safe: one per connection.
/// </summary>
internal sealed class ReplyWriter
{
    private byte[] _buffer = new byte[4096];

    /// <summary>2 or 3 (HELLO).</summary>
    public int Protocol { get; set; } = 2;

    /// <summary>Bytes written; setting it lower discards what came after.</summary>
    public int Length { get; set; }

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, Length);

    /// <summary>Discards everything written; a buffer grown past 1 MiB for a big reply is not kept.</summary>
    public void Clear()
    {
        Length = 0;
        if (_buffer.Length > 1 << 20) _buffer = new byte[4096];
    }

    private Span<byte> Reserve(int count)
    {
        if (Length + count > _buffer.Length)
        {
            var bigger = new byte[Math.Max(_buffer.Length * 2, Length + count)];
            _buffer.AsSpan(0, Length).CopyTo(bigger);
            _buffer = bigger;
        }
        return _buffer.AsSpan(Length, count);
    }

    private void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        Length += bytes.Length;
    }

    private void Ascii(string text)
    {
        var span = Reserve(Encoding.UTF8.GetMaxByteCount(text.Length));
        Length += Encoding.UTF8.GetBytes(text, span);
    }

    private void Line(byte prefix, long value)
    {
        var span = Reserve(24);
        span[0] = prefix;
        Utf8Formatter.TryFormat(value, span[1..], out var n);
        span[n + 1] = (byte)'\r';
        span[n + 2] = (byte)'\n';
        Length += n + 3;
    }

    private void Crlf() => Raw("\r\n"u8);

    /// <summary>+text (no CR or LF in it).</summary>
    public void Simple(string text)
    {
        Raw("+"u8);
        Ascii(text);
        Crlf();
    }

    public void Ok() => Raw("+OK\r\n"u8);

    /// <summary>-text: the text starts with the error code (ERR, WRONGTYPE, …). CR and LF become spaces.</summary>
    public void Error(string text)
    {
        Raw("-"u8);
        Ascii(text.Replace('\r', ' ').Replace('\n', ' '));
        Crlf();
    }

    public void Integer(long value) => Line((byte)':', value);

    public void Bulk(ReadOnlySpan<byte> value)
    {
        Line((byte)'$', value.Length);
        Raw(value);
        Crlf();
    }

    public void Bulk(string value) => Bulk(Encoding.UTF8.GetBytes(value));

    public void Bulk(long value)
    {
        Span<byte> digits = stackalloc byte[24];
        Utf8Formatter.TryFormat(value, digits, out var n);
        Bulk(digits[..n]);
    }

    /// <summary>A missing value: $-1 in RESP2, _ in RESP3.</summary>
    public void NullBulk() => Raw(Protocol == 3 ? "_\r\n"u8 : "$-1\r\n"u8);

    /// <summary>A missing array (EXEC aborted by WATCH): *-1 in RESP2, _ in RESP3.</summary>
    public void NullArray() => Raw(Protocol == 3 ? "_\r\n"u8 : "*-1\r\n"u8);

    public void Array(int count) => Line((byte)'*', count);

    /// <summary>A map of <paramref name="pairs"/> entries: %n in RESP3, a flat array of 2n in RESP2.</summary>
    public void Map(int pairs)
    {
        if (Protocol == 3) Line((byte)'%', pairs);
        else Line((byte)'*', pairs * 2L);
    }

    /// <summary>A set: ~n in RESP3, an array in RESP2.</summary>
    public void Set(int count) => Line(Protocol == 3 ? (byte)'~' : (byte)'*', count);

    /// <summary>An out-of-band push (pub/sub): &gt;n in RESP3, an array in RESP2.</summary>
    public void Push(int count) => Line(Protocol == 3 ? (byte)'>' : (byte)'*', count);

    /// <summary>A double: ,d in RESP3, a bulk string in RESP2 (Redis's %.17g shape).</summary>
    public void Double(double value)
    {
        var text = FormatDouble(value);
        if (Protocol == 3)
        {
            Raw(","u8);
            Ascii(text);
            Crlf();
        }
        else Bulk(text);
    }

    /// <summary>A long text (INFO): =n\r\ntxt:… in RESP3, a bulk string in RESP2.</summary>
    public void Verbatim(string text)
    {
        if (Protocol != 3)
        {
            Bulk(text);
            return;
        }
        var bytes = Encoding.UTF8.GetBytes(text);
        Line((byte)'=', bytes.Length + 4);
        Raw("txt:"u8);
        Raw(bytes);
        Crlf();
    }

    /// <summary>The shortest round-trip decimal form Redis uses for INCRBYFLOAT results (no exponent for ordinary values).</summary>
    internal static string FormatDouble(double value)
    {
        if (double.IsPositiveInfinity(value)) return "inf";
        if (double.IsNegativeInfinity(value)) return "-inf";
        if (value == Math.Floor(value) && Math.Abs(value) < 1e17) return ((long)value).ToString(CultureInfo.InvariantCulture);
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        if (text.Contains('E', StringComparison.Ordinal)) text = value.ToString("0.#################", CultureInfo.InvariantCulture);
        return text;
    }
}
