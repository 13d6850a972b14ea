using System.Buffers;
using System.Buffers.Text;

namespace Bitcask.Server.Protocol;

internal enum ParseStatus { Complete, Incomplete, Error }

/// <summary>
/// Parses client requests: RESP multibulk (<c>*N\r\n$len\r\nbytes\r\n…</c>) and inline commands (a text line, as typed
/// into telnet), with Redis's limits and protocol error texts (networking.c processMultibulkBuffer/processInlineBuffer).
/// Stateless: a partial frame is parsed again from its start when more bytes arrive, so a frame split at any byte parses
/// exactly like an unsplit one.
/// </summary>
internal static class RequestParser
{
    /// <summary>Redis's PROTO_INLINE_MAX_SIZE: an inline command, or a count line, is at most 64 KiB.</summary>
    public const int InlineMaxBytes = 64 * 1024;
    /// <summary>The most arguments one command may have (Redis 6's multibulk cap).</summary>
    public const int MaxArguments = 1024 * 1024;
    /// <summary>Before AUTH, Redis accepts at most 10 arguments and 16 KiB bulks.</summary>
    public const int UnauthenticatedMaxArguments = 10, UnauthenticatedMaxBulk = 16384;

    /// <summary>Parses one command from the start of <paramref name="buffer"/>. On Complete, <paramref name="consumed"/> is
    /// where it ended and <paramref name="args"/> holds it (empty for a blank line or <c>*0</c>, which Redis skips).</summary>
    public static ParseStatus TryParse(ReadOnlySequence<byte> buffer, long maxBulk, bool authenticated, out SequencePosition consumed,
        out byte[][] args, out string? error)
    {
        var parsed = new RequestArgs();
        var status = TryParse(buffer, maxBulk, authenticated, parsed, out consumed, out error);
        args = status == ParseStatus.Complete ? parsed.ToArrays() : [];
        return status;
    }

    /// <summary>Like <see cref="TryParse(ReadOnlySequence{byte}, long, bool, out SequencePosition, out byte[][], out string?)"/>
    /// into a reused <paramref name="args"/>: a multibulk request allocates nothing.</summary>
    public static ParseStatus TryParse(ReadOnlySequence<byte> buffer, long maxBulk, bool authenticated, RequestArgs args,
        out SequencePosition consumed, out string? error)
    {
        error = null;
        consumed = buffer.Start;
        args.Reset();
        if (buffer.IsEmpty) return ParseStatus.Incomplete;
        var reader = new SequenceReader<byte>(buffer);
        reader.TryPeek(out var first);
        var status = first == (byte)'*'
            ? ParseMultibulk(ref reader, maxBulk, authenticated, args, out error)
            : ParseInline(ref reader, args, out error);
        if (status == ParseStatus.Complete) consumed = reader.Position;
        else args.Reset();
        return status;
    }

    private static ParseStatus ParseMultibulk(ref SequenceReader<byte> reader, long maxBulk, bool authenticated, RequestArgs args, out string? error)
    {
        error = null;
        if (!TryReadLine(ref reader, out var countLine))
        {
            if (reader.Remaining > InlineMaxBytes) return Fail("ERR Protocol error: too big mbulk count string", out error);
            return ParseStatus.Incomplete;
        }
        if (!TryParseLong(countLine[1..], out var count) || count > MaxArguments || (!authenticated && count > UnauthenticatedMaxArguments))
            return Fail("ERR Protocol error: invalid multibulk length", out error);
        if (count <= 0) return ParseStatus.Complete;
        for (var i = 0; i < count; i++)
        {
            if (!TryReadLine(ref reader, out var lengthLine))
            {
                if (reader.Remaining > InlineMaxBytes) return Fail("ERR Protocol error: too big bulk count string", out error);
                return ParseStatus.Incomplete;
            }
            if (lengthLine.Length == 0 || lengthLine[0] != (byte)'$')
                return Fail($"ERR Protocol error: expected '$', got '{(lengthLine.Length == 0 ? '\r' : (char)lengthLine[0])}'", out error);
            if (!TryParseLong(lengthLine[1..], out var length) || length < 0 || length > maxBulk || length > Array.MaxLength
                || (!authenticated && length > UnauthenticatedMaxBulk))
                return Fail("ERR Protocol error: invalid bulk length", out error);
            if (reader.Remaining < length + 2) return ParseStatus.Incomplete;
            if (reader.UnreadSpan.Length >= length) args.Add(reader.UnreadSpan[..(int)length]);
            else
            {
                reader.TryCopyTo(args.Reserve((int)length));
                args.Commit((int)length);
            }
            // The two bytes after a bulk are skipped unchecked, as Redis does (networking.c: qb_pos += bulklen + 2).
            reader.Advance(length + 2);
        }
        return ParseStatus.Complete;
    }

    private static ParseStatus ParseInline(ref SequenceReader<byte> reader, RequestArgs args, out string? error)
    {
        error = null;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> lineSequence, (byte)'\n', advancePastDelimiter: true))
        {
            if (reader.Remaining > InlineMaxBytes) return Fail("ERR Protocol error: too big inline request", out error);
            return ParseStatus.Incomplete;
        }
        if (lineSequence.Length > InlineMaxBytes) return Fail("ERR Protocol error: too big inline request", out error);
        ReadOnlySpan<byte> line = lineSequence.ToArray();
        if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
        var split = SplitArgs(line);
        if (split is null) return Fail("ERR Protocol error: unbalanced quotes in request", out error);
        foreach (var arg in split) args.Add(arg);
        return ParseStatus.Complete;
    }

    private static ParseStatus Fail(string message, out string? error)
    {
        error = message;
        return ParseStatus.Error;
    }

    /// <summary>A line ending at its first \r, which must be followed by one more byte (Redis looks for the \r and skips
    /// two bytes, whatever the second is); the line without them.</summary>
    private static bool TryReadLine(ref SequenceReader<byte> reader, out ReadOnlySpan<byte> line)
    {
        line = default;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> sequence, (byte)'\r', advancePastDelimiter: true)) return false;
        if (sequence.Length > InlineMaxBytes) { line = sequence.Slice(0, InlineMaxBytes).ToArray(); return true; }
        if (!reader.TryPeek(out _))
        {
            reader.Rewind(sequence.Length + 1);
            return false;
        }
        reader.Advance(1); // the byte after the \r is skipped whatever it is, as Redis does (qb_pos = newline + 2)
        line = sequence.IsSingleSegment ? sequence.FirstSpan : sequence.ToArray();
        return true;
    }

    /// <summary>Redis's string2ll, which reads the count and length lines: no sign but '-', no leading zero, no "-0".</summary>
    private static bool TryParseLong(ReadOnlySpan<byte> text, out long value) => Commands.CommandContext.TryParseLong(text, out value);

    /// <summary>Redis's sdssplitargs: words split by spaces, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes,
    /// 'single quotes' with \' only; a closing quote must be followed by a space or the end. Null when unbalanced.</summary>
    internal static byte[][]? SplitArgs(ReadOnlySpan<byte> line)
    {
        var result = new List<byte[]>();
        var i = 0;
        var current = new List<byte>();
        while (true)
        {
            while (i < line.Length && IsSpace(line[i])) i++;
            if (i >= line.Length) return [.. result];
            current.Clear();
            bool inDouble = false, inSingle = false, done = false;
            while (!done)
            {
                if (inDouble)
                {
                    if (i >= line.Length) return null;
                    if (line[i] == '\\' && i + 3 < line.Length && line[i + 1] == 'x' && IsHex(line[i + 2]) && IsHex(line[i + 3]))
                    {
                        current.Add((byte)(Hex(line[i + 2]) * 16 + Hex(line[i + 3])));
                        i += 3;
                    }
                    else if (line[i] == '\\' && i + 1 < line.Length)
                    {
                        i++;
                        current.Add(line[i] switch { (byte)'n' => (byte)'\n', (byte)'r' => (byte)'\r', (byte)'t' => (byte)'\t', (byte)'b' => (byte)'\b', (byte)'a' => (byte)'\a', var c => c });
                    }
                    else if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && !IsSpace(line[i + 1])) return null;
                        done = true;
                    }
                    else current.Add(line[i]);
                }
                else if (inSingle)
                {
                    if (i >= line.Length) return null;
                    if (line[i] == '\\' && i + 1 < line.Length && line[i + 1] == '\'')
                    {
                        i++;
                        current.Add((byte)'\'');
                    }
                    else if (line[i] == '\'')
                    {
                        if (i + 1 < line.Length && !IsSpace(line[i + 1])) return null;
                        done = true;
                    }
                    else current.Add(line[i]);
                }
                else
                {
                    if (i >= line.Length) { done = true; break; }
                    switch (line[i])
                    {
                        case (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t' or 0: done = true; break;
                        case (byte)'"': inDouble = true; break;
                        case (byte)'\'': inSingle = true; break;
                        default: current.Add(line[i]); break;
                    }
                }
                if (i < line.Length) i++;
            }
            result.Add([.. current]);
        }

        static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t' or (byte)'\v' or (byte)'\f';
        static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';
        static int Hex(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
    }
}
