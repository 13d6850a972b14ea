using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Bitcask.Server.Protocol;
using Bitcask.Server.Tests.Infrastructure;
using CsCheck;

namespace Bitcask.Server.Tests;

/// <summary>
/// RESP parser fuzzing (RELIABILITY.md §6 item 28): CsCheck generates well-formed frames (multibulk and inline) and
/// mutates them (bytes replaced, inserted, deleted, duplicated, truncated). The parser never throws and parses any split
/// of the bytes exactly like the whole; the server answers the mutated bytes with exactly what redis-server 7 answers
/// (same replies, same protocol errors, same closing), never disturbs another client, and survives. The committed seed
/// corpus (fuzz-corpus.txt) runs first on every build.
/// </summary>
public class ProtocolFuzzTests
{
    private static readonly string[] Commands = ["GET", "SET", "DEL", "EXISTS", "INCR", "ECHO", "PING", "HSET", "HGET", "MGET", "APPEND", "STRLEN", "get", "Set"];
    private static readonly string[] Words = ["k", "a", "b", "h", "f", "10", "-3", "", "v v", "x\"y", "NX", "EX"];
    /// <summary>Bytes a mutation inserts: RESP's structure characters, digits, quotes and letters (printable, so error texts
    /// that quote a request compare equal).</summary>
    private const string Alphabet = "*$\r\n-+:0123456789 \"'\\abkxXYZ";

    private static readonly Gen<string> Word = Gen.Frequency(
        (4, Gen.OneOf(Words)),
        (1, Gen.Char["abcxyz019 "].Array[0, 12].Select(c => new string(c))));

    private static readonly Gen<string> MultibulkFrame =
        Gen.Select(Gen.OneOf(Commands), Word.Array[0, 3]).Select((name, args) =>
        {
            var text = new StringBuilder($"*{args.Length + 1}\r\n${name.Length}\r\n{name}\r\n");
            foreach (var arg in args) text.Append($"${Encoding.UTF8.GetByteCount(arg)}\r\n{arg}\r\n");
            return text.ToString();
        });

    private static readonly Gen<string> InlineFrame =
        Gen.Select(Gen.OneOf(Commands), Gen.OneOf("k", "a", "1", "'q'", "\"d e\"", "x").Array[0, 3])
            .Select((name, args) => string.Join(' ', [name, .. args]) + "\r\n");

    private static readonly Gen<string> Frames = Gen.Frequency((4, MultibulkFrame), (1, InlineFrame)).Array[1, 4].Select(f => string.Concat(f));

    private enum Mutation { Replace, Insert, Delete, Duplicate, Truncate }

    private static readonly Gen<(Mutation Kind, int At, int Length, char Byte)> MutationGen =
        Gen.Select(Gen.Enum<Mutation>(), Gen.Int[0, 1000], Gen.Int[1, 6], Gen.Char[Alphabet]);

    /// <summary>Frames with 0 to 3 mutations: bytes over RESP's structure, well-formed or not.</summary>
    private static readonly Gen<string> Fuzzed = Gen.Select(Frames, MutationGen.Array[0, 3]).Select((frames, mutations) =>
    {
        var text = new StringBuilder(frames);
        foreach (var (kind, at, length, b) in mutations)
        {
            if (text.Length == 0) break;
            var i = at % text.Length;
            var n = Math.Min(length, text.Length - i);
            switch (kind)
            {
                case Mutation.Replace: text[i] = b; break;
                case Mutation.Insert: text.Insert(i, new string(b, length % 3 + 1)); break;
                case Mutation.Delete: text.Remove(i, n); break;
                case Mutation.Duplicate: text.Insert(i, text.ToString(i, n)); break;
                case Mutation.Truncate: text.Length = i; break;
            }
        }
        return text.ToString();
    });

    /// <summary>300 generated cases per run; BITCASK_FUZZ_CASES sets more for a long run.</summary>
    private static int GeneratedCases =>
        int.TryParse(Environment.GetEnvironmentVariable("BITCASK_FUZZ_CASES"), out var cases) && cases > 0 ? cases : 300;

    [Fact]
    public void The_parser_never_throws_and_parses_any_split_of_fuzzed_bytes_like_the_whole()
    {
        Gen.Select(Gen.Frequency((3, Fuzzed.Select(s => Encoding.Latin1.GetBytes(s))), (1, Gen.Byte.Array[0, 64])), Gen.Int[0, 1000], Gen.Bool)
            .Sample((bytes, splitAt, authenticated) =>
            {
                var whole = ParseAll(new ReadOnlySequence<byte>(bytes), authenticated);
                var split = ParseAll(Split(bytes, bytes.Length == 0 ? 0 : splitAt % bytes.Length), authenticated);
                Assert.Equal(whole, split);
            }, iter: 20_000, print: t => Convert.ToHexString(t.Item1));
    }

    [Fact]
    public async Task Seed_corpus_and_fuzzed_frames_get_redis_replies_and_protocol_errors_and_never_disturb_other_clients()
    {
        await using var host = await ServerHost.StartAsync();
        using var redis = Tools.Find("redis-server") is null ? null : RedisServerProcess.Start();
        using var bystander = host.Connect();
        var cases = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus.txt"))
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => Encoding.Latin1.GetBytes(Unescape(line)))
            .Concat(Enumerable.Range(0, GeneratedCases).Select(i => Encoding.Latin1.GetBytes(Fuzzed.Generate(new PCG(12, (ulong)i), null!, out _))))
            .ToList();
        var number = 0;
        foreach (var bytes in cases)
        {
            number++;
            var ours = Exchange(host.Port, bytes);
            Assert.True(ours.Closed, $"case {number} ({Escape(bytes)}): the server did not close after the client's end of stream");
            var errors = ours.Replies.Count(r => r.StartsWith("-ERR Protocol error", StringComparison.Ordinal));
            Assert.True(errors <= 1 && (errors == 0 || ours.Replies[^1].StartsWith("-ERR Protocol error", StringComparison.Ordinal)),
                $"case {number} ({Escape(bytes)}): a protocol error must be the last reply before the close: {string.Join(" | ", ours.Replies)}");
            // The one deliberate difference: more than 1M arguments is refused at once (Redis 6's cap; Redis 7 waits for them).
            if (redis is not null && !System.Text.RegularExpressions.Regex.IsMatch(Encoding.Latin1.GetString(bytes), @"\*[0-9]{7,}"))
            {
                var theirs = Exchange(redis.Port, bytes);
                Assert.True(theirs.Replies.SequenceEqual(ours.Replies),
                    $"case {number} ({Escape(bytes)}):\n ours:  {string.Join(" | ", ours.Replies)}\n redis: {string.Join(" | ", theirs.Replies)}");
            }
            Assert.Equal(new RespSimple("PONG"), bystander.Call("PING"));
        }
        using var fresh = host.Connect();
        Assert.Equal(new RespSimple("PONG"), fresh.Call("PING"));
    }

    /// <summary>Sends the bytes, ends the stream (half-close), and reads every reply line until the server closes.</summary>
    private static (List<string> Replies, bool Closed) Exchange(int port, byte[] bytes)
    {
        using var client = new TcpClient { NoDelay = true };
        client.Connect("127.0.0.1", port);
        var socket = client.Client;
        socket.ReceiveTimeout = 10_000;
        socket.Send(bytes);
        socket.Shutdown(SocketShutdown.Send);
        var received = new MemoryStream();
        var buffer = new byte[4096];
        var closed = false;
        try
        {
            while (true)
            {
                var n = socket.Receive(buffer);
                if (n == 0)
                {
                    closed = true;
                    break;
                }
                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            closed = true;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
        }
        var text = Encoding.Latin1.GetString(received.ToArray());
        return ([.. text.Split("\r\n").SkipLast(1)], closed);
    }

    private static List<string> ParseAll(ReadOnlySequence<byte> buffer, bool authenticated)
    {
        var outcome = new List<string>();
        var args = new RequestArgs();
        while (true)
        {
            var status = RequestParser.TryParse(buffer, 1 << 20, authenticated, args, out var consumed, out var error);
            if (status == ParseStatus.Incomplete)
            {
                outcome.Add($"incomplete at {buffer.Length} left");
                return outcome;
            }
            if (status == ParseStatus.Error)
            {
                outcome.Add(error!);
                return outcome;
            }
            outcome.Add(string.Join(",", Enumerable.Range(0, args.Count).Select(i => Convert.ToHexString(args[i]))));
            var before = buffer.Length;
            buffer = buffer.Slice(consumed);
            Assert.True(buffer.Length < before, "a complete parse consumed nothing");
        }
    }

    private static ReadOnlySequence<byte> Split(byte[] bytes, int at)
    {
        var first = new Segment(bytes.AsMemory(0, at));
        var last = first.Append(bytes.AsMemory(at));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }

    private static string Escape(byte[] bytes) =>
        Encoding.Latin1.GetString(bytes).Replace("\\", "\\\\").Replace("\r", "\\r").Replace("\n", "\\n");

    private static string Unescape(string line) => line.Replace("\\r", "\r").Replace("\\n", "\n").Replace("\\\\", "\\");
}
