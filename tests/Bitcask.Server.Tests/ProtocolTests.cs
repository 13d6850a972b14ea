using System.Text;
using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>RESP framing (RELIABILITY.md §6 items 28 and 29): Redis's protocol errors close only the offending
/// connection; frames split anywhere parse identically; pipelined replies stay in order.</summary>
public class ProtocolTests
{
    [Theory]
    [InlineData("*abc\r\n", "ERR Protocol error: invalid multibulk length")]
    [InlineData("*1048577\r\n", "ERR Protocol error: invalid multibulk length")]
    [InlineData("*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$999999999999\r\n", "ERR Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length")]
    [InlineData("*1\r\n*1\r\n$4\r\nPING\r\n", "ERR Protocol error: expected '$', got '*'")]
    [InlineData("*2\r\n$3\r\nGET\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'")]
    [InlineData("SET \"a b\"c\r\n", "ERR Protocol error: unbalanced quotes in request")]
    [InlineData("SET 'abc\r\n", "ERR Protocol error: unbalanced quotes in request")]
    public void A_malformed_frame_gets_redis_protocol_error_and_only_that_connection_closes(string frame, string expected)
    {
        RunMalformed(Encoding.UTF8.GetBytes(frame), expected);
    }

    [Fact]
    public async Task The_two_bytes_after_a_bulk_are_skipped_unchecked_as_redis_does()
    {
        // Found by ProtocolFuzzTests against redis-server 7: the bulk "ab\r" is the command name, "\nX" is skipped, and the
        // "\r\n" left is an empty inline line.
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        client.SendRaw("*1\r\n$3\r\nab\r\nX\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nvXY*1\r\n$4\r\nPING\r\n");
        Assert.Equal(new RespError("ERR unknown command 'ab ', with args beginning with: "), client.Read());
        Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal(new RespSimple("PONG"), client.Read());
        Assert.Equal("v", client.Call("GET", "k"));
    }

    [Fact]
    public async Task Empty_and_negative_counts_are_skipped_as_redis_does()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        client.SendRaw("*-2\r\n*0\r\n\r\n*1\r\n$4\r\nPING\r\n");
        Assert.Equal(new RespSimple("PONG"), client.Read());
    }

    [Fact]
    public void An_inline_request_over_64_KiB_without_a_newline_is_refused_and_closed()
    {
        RunMalformed(Encoding.ASCII.GetBytes(new string('A', 70 * 1024)), "ERR Protocol error: too big inline request");
    }

    [Fact]
    public void A_count_line_over_64_KiB_without_its_end_is_refused_and_closed()
    {
        RunMalformed(Encoding.ASCII.GetBytes("*" + new string('1', 70 * 1024)), "ERR Protocol error: too big mbulk count string");
    }

    private static void RunMalformed(byte[] frame, string expected)
    {
        var host = ServerHost.StartAsync().GetAwaiter().GetResult();
        try
        {
            using var bystander = host.Connect();
            Assert.Equal(new RespSimple("OK"), bystander.Call("SET", "k", "v"));
            using var bad = host.Connect();
            bad.SendRaw(frame);
            Assert.Equal(new RespError(expected), bad.Read());
            Assert.True(bad.IsClosedByServer(TimeSpan.FromSeconds(10)), "the server kept the connection open after a protocol error");
            Assert.Equal("v", bystander.Call("GET", "k"));
            using var next = host.Connect();
            Assert.Equal(new RespSimple("PONG"), next.Call("PING"));
        }
        finally
        {
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Fact]
    public async Task An_http_request_to_the_port_closes_the_connection_without_touching_the_store()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        client.SendRaw("POST / HTTP/1.1\r\nHost: localhost\r\n\r\nSET k v\r\n");
        Assert.True(client.IsClosedByServer(TimeSpan.FromSeconds(10)));
        Assert.Null(host.Store.Get("k"u8));
    }

    [Fact]
    public async Task Nul_bytes_and_binary_keys_and_values_round_trip_exactly()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        var key = new byte[] { 0x01, 0x00, 0xFF, (byte)'\r', (byte)'\n' };
        var value = new byte[] { 0x00, 0xFF, (byte)'B', (byte)'K', (byte)'S', 0x00 }; // starts with the hash tag
        client.SendRaw(RespConnection.Encode("SET", key, value));
        Assert.Equal(new RespSimple("OK"), client.Read());
        client.SendRaw(RespConnection.Encode("GET", key));
        Assert.Equal(Encoding.UTF8.GetString(value), client.Read());
        client.SendRaw(RespConnection.Encode("TYPE", key));
        Assert.Equal(new RespSimple("string"), client.Read());
        Assert.NotEqual(value, host.Store.Get(key)); // stored escaped (FORMAT.md), served exact
        client.SendRaw(RespConnection.Encode("STRLEN", key));
        Assert.Equal((long)value.Length, client.Read());
    }

    [Fact]
    public async Task Unknown_commands_and_wrong_arity_answer_redis_errors_and_the_connection_stays_usable()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        Assert.Equal(new RespError("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "), client.Call("FOO", "a", "b"));
        Assert.Equal(new RespError("ERR unknown command 'nope', with args beginning with: "), client.Call("nope"));
        Assert.Equal(new RespError("ERR wrong number of arguments for 'get' command"), client.Call("GET"));
        Assert.Equal(new RespError("ERR wrong number of arguments for 'set' command"), client.Call("SET", "k"));
        Assert.Equal(new RespSimple("PONG"), client.Call("PING"));
    }

    [Fact]
    public async Task Inline_commands_work_like_telnet_with_quotes_and_escapes()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        client.SendRaw("SET greeting \"hello\\x20world\\n\"\r\nGET greeting\r\n\r\nSET 'it''s' x\r\nPING\n");
        Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal("hello world\n", client.Read());
        Assert.Equal(new RespError("ERR Protocol error: unbalanced quotes in request"), client.Read());
    }

    private static byte[] Pipeline(int commands)
    {
        var all = new MemoryStream();
        for (var i = 0; i < commands; i++)
        {
            all.Write(i % 3 == 0 ? RespConnection.Encode("SET", $"key:{i % 17}", $"value-{i}")
                : i % 3 == 1 ? RespConnection.Encode("INCR", $"counter:{i % 5}")
                : RespConnection.Encode("GET", $"key:{i % 17}"));
        }
        return all.ToArray();
    }

    private static List<object?> ReadAll(RespConnection client, int count)
    {
        var replies = new List<object?>();
        for (var i = 0; i < count; i++) replies.Add(client.Read());
        return replies;
    }

    [Fact]
    public async Task A_thousand_pipelined_commands_sent_one_byte_at_a_time_get_the_same_replies_in_order_as_sent_at_once_synced_or_not()
    {
        const int count = 1000;
        var bytes = Pipeline(count);
        List<object?> whole, trickled, random;
        // Synced: pipelined SETs are queued behind each other (one fdatasync) while GET and INCR wait for them
        await using (var host = await ServerHost.StartAsync(durability: Durability.Synced))
        {
            using var client = host.Connect();
            client.SendRaw(bytes);
            whole = ReadAll(client, count);
        }
        await using (var host = await ServerHost.StartAsync())
        {
            using var client = host.Connect();
            var reading = Task.Run(() => ReadAll(client, count));
            foreach (var b in bytes) client.SendRaw([b]);
            trickled = await reading;
        }
        await using (var host = await ServerHost.StartAsync())
        {
            using var client = host.Connect();
            var rng = new Random(29);
            var reading = Task.Run(() => ReadAll(client, count));
            for (var at = 0; at < bytes.Length;)
            {
                var n = Math.Min(bytes.Length - at, rng.Next(1, 200));
                client.SendRaw(bytes[at..(at + n)]);
                at += n;
                if (rng.Next(4) == 0) await Task.Delay(1);
            }
            random = await reading;
        }
        Assert.Equal(count, whole.Count);
        Assert.Equal(whole, trickled);
        Assert.Equal(whole, random);
        // In order: the n-th INCR of a counter answers n.
        var seen = new Dictionary<int, long>();
        for (var i = 0; i < count; i++)
            if (i % 3 == 1)
            {
                seen[i % 5] = seen.GetValueOrDefault(i % 5) + 1;
                Assert.Equal(seen[i % 5], whole[i]);
            }
    }
}
