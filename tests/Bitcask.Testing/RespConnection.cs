using System.Net.Sockets;
using System.Text;

namespace Bitcask.Testing;

/// <summary>An error reply.</summary>
public sealed record RespError(string Message)
{
    public override string ToString() => "-" + Message;
}

/// <summary>A simple-string reply (+OK).</summary>
public sealed record RespSimple(string Text)
{
    public override string ToString() => "+" + Text;
}

/// <summary>A RESP3 push (&gt;).</summary>
public sealed record RespPush(List<object?> Items);

/// <summary>A RESP3 map (%).</summary>
public sealed record RespMap(List<KeyValuePair<object?, object?>> Pairs);

/// <summary>
/// A minimal raw RESP client for protocol tests: sends exact bytes, reads replies as objects (RespSimple, RespError, long,
/// string for bulk (UTF-8), null, List for arrays, RespMap, RespPush, double, bool).
/// </summary>
public sealed class RespConnection : IDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;
    private readonly BufferedStream _reader;

    private RespConnection(TcpClient client)
    {
        _client = client;
        _stream = client.GetStream();
        _reader = new BufferedStream(_stream);
        _stream.ReadTimeout = 20_000;
    }

    public static RespConnection Open(int port) => Open(port, TimeSpan.FromSeconds(20));

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/>; connecting, and then each read, time out after
    /// <paramref name="timeout"/> (an IOException).</summary>
    public static RespConnection Open(int port, TimeSpan timeout)
    {
        var client = new TcpClient { NoDelay = true };
        try
        {
            using var connecting = new CancellationTokenSource(timeout);
            client.ConnectAsync("127.0.0.1", port, connecting.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            client.Dispose();
            throw new IOException($"connecting to 127.0.0.1:{port} timed out after {timeout.TotalSeconds} s");
        }
        catch
        {
            client.Dispose();
            throw;
        }
        var connection = new RespConnection(client);
        connection._stream.ReadTimeout = (int)timeout.TotalMilliseconds;
        connection._stream.WriteTimeout = (int)timeout.TotalMilliseconds;
        return connection;
    }

    public Socket Socket => _client.Client;

    public void SendRaw(byte[] bytes) => _stream.Write(bytes);

    public void SendRaw(string text) => SendRaw(Encoding.UTF8.GetBytes(text));

    public static byte[] Encode(params object[] args)
    {
        var buffer = new MemoryStream();
        void W(string s) => buffer.Write(Encoding.UTF8.GetBytes(s));
        W($"*{args.Length}\r\n");
        foreach (var arg in args)
        {
            var bytes = arg as byte[] ?? Encoding.UTF8.GetBytes(Convert.ToString(arg, System.Globalization.CultureInfo.InvariantCulture)!);
            W($"${bytes.Length}\r\n");
            buffer.Write(bytes);
            W("\r\n");
        }
        return buffer.ToArray();
    }

    public object? Call(params object[] args)
    {
        SendRaw(Encode(args));
        return Read();
    }

    public object? Read()
    {
        var line = ReadLine() ?? throw new EndOfStreamException("the server closed the connection");
        var rest = line[1..];
        switch (line[0])
        {
            case '+': return new RespSimple(rest);
            case '-': return new RespError(rest);
            case ':': return long.Parse(rest, System.Globalization.CultureInfo.InvariantCulture);
            case ',': return double.Parse(rest, System.Globalization.CultureInfo.InvariantCulture);
            case '#': return rest == "t";
            case '_': return null;
            case '$':
            case '=':
            {
                var length = int.Parse(rest, System.Globalization.CultureInfo.InvariantCulture);
                if (length < 0) return null;
                var bytes = new byte[length + 2];
                _reader.ReadExactly(bytes);
                var text = Encoding.UTF8.GetString(bytes, 0, length);
                return line[0] == '=' ? text[4..] : text;
            }
            case '*':
            case '~':
            case '>':
            {
                var count = int.Parse(rest, System.Globalization.CultureInfo.InvariantCulture);
                if (count < 0) return null;
                var items = new List<object?>();
                for (var i = 0; i < count; i++) items.Add(Read());
                return line[0] == '>' ? new RespPush(items) : items;
            }
            case '%':
            {
                var count = int.Parse(rest, System.Globalization.CultureInfo.InvariantCulture);
                var pairs = new List<KeyValuePair<object?, object?>>();
                for (var i = 0; i < count; i++) pairs.Add(new(Read(), Read()));
                return new RespMap(pairs);
            }
            default: throw new InvalidDataException($"unexpected reply line '{line}'");
        }
    }

    /// <summary>True when the server closed the connection (reads EOF within the timeout).</summary>
    public bool IsClosedByServer(TimeSpan timeout)
    {
        _stream.ReadTimeout = (int)timeout.TotalMilliseconds;
        try
        {
            var buffer = new byte[1];
            while (true)
            {
                var n = _reader.Read(buffer);
                if (n == 0) return true;
            }
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            return false;
        }
        catch (IOException)
        {
            return true; // reset
        }
    }

    private string? ReadLine()
    {
        var text = new StringBuilder();
        while (true)
        {
            var b = _reader.ReadByte();
            if (b < 0) return text.Length == 0 ? null : throw new EndOfStreamException("the connection closed mid-reply");
            if (b == '\r')
            {
                _reader.ReadByte();
                return text.ToString();
            }
            text.Append((char)b);
        }
    }

    public void Dispose()
    {
        _reader.Dispose();
        _client.Dispose();
    }
}
