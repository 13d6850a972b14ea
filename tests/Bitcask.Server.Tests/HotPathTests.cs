using System.Text;
using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>The hot path (GET, plain SET and INCR straight from the parsed request, pipelined SETs committed as one
/// batch per read) answers exactly as the general path does, in every durability mode.</summary>
public class HotPathTests
{
    [Theory]
    [InlineData(Durability.Synced)]
    [InlineData(Durability.Flushed)]
    [InlineData(Durability.Buffered)]
    public async Task Pipelined_sets_are_committed_before_their_replies_and_seen_by_the_commands_after_them(Durability durability)
    {
        await using var host = await ServerHost.StartAsync(durability: durability);
        using var client = host.Connect();
        var requests = new List<byte[]>();
        for (var i = 0; i < 16; i++) requests.Add(RespConnection.Encode("SET", $"k{i}", $"v{i}"));
        requests.Add(RespConnection.Encode("GET", "k7"));               // sees the batch before it
        for (var i = 0; i < 3; i++) requests.Add(RespConnection.Encode("SET", "n", $"{10 * i}"));
        requests.Add(RespConnection.Encode("INCR", "n"));                // reads the last SET: 21
        requests.Add(RespConnection.Encode("SET", "k0", "again"));
        requests.Add(RespConnection.Encode("SET", "t", "x", "EX", "100")); // general path, after the batch
        requests.Add(RespConnection.Encode("SET", "t", "y"));             // hot path: drops the TTL
        requests.Add(RespConnection.Encode("TTL", "t"));
        client.SendRaw(requests.SelectMany(r => r).ToArray());
        for (var i = 0; i < 16; i++) Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal("v7", client.Read());
        for (var i = 0; i < 3; i++) Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal(21L, client.Read());
        Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal(new RespSimple("OK"), client.Read());
        Assert.Equal(-1L, client.Read());
        // every acknowledged write is in the store, in order
        Assert.Equal("again", Encoding.UTF8.GetString(host.Store.Get("k0"u8)!));
        for (var i = 1; i < 16; i++) Assert.Equal($"v{i}", Encoding.UTF8.GetString(host.Store.Get(Encoding.UTF8.GetBytes($"k{i}"))!));
        Assert.Equal("21", Encoding.UTF8.GetString(host.Store.Get("n"u8)!));
        Assert.Equal("y", Encoding.UTF8.GetString(host.Store.Get("t"u8)!));
    }

    [Fact]
    public async Task Incr_keeps_a_ttl_and_answers_redis_errors_on_the_cases_the_hot_path_leaves_to_the_general_one()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        Assert.Equal(new RespSimple("OK"), client.Call("SET", "c", "5", "EX", "100"));
        Assert.Equal(6L, client.Call("INCR", "c"));
        Assert.True((long)client.Call("TTL", "c")! > 0, "INCR dropped the TTL");
        Assert.Equal(new RespSimple("OK"), client.Call("SET", "s", "abc"));
        Assert.Equal(new RespError("ERR value is not an integer or out of range"), client.Call("INCR", "s"));
        Assert.Equal(new RespSimple("OK"), client.Call("SET", "m", long.MaxValue.ToString()));
        Assert.Equal(new RespError("ERR increment or decrement would overflow"), client.Call("INCR", "m"));
        Assert.Equal(1L, client.Call("HSET", "h", "f", "v"));
        Assert.Equal(new RespError("WRONGTYPE Operation against a key holding the wrong kind of value"), client.Call("INCR", "h"));
        Assert.Equal(new RespError("WRONGTYPE Operation against a key holding the wrong kind of value"), client.Call("GET", "h"));
        Assert.Equal(1L, client.Call("INCR", "fresh"));
    }

    [Fact]
    public async Task A_value_that_looks_like_a_stored_hash_and_an_engine_key_take_the_general_path()
    {
        await using var host = await ServerHost.StartAsync();
        using var client = host.Connect();
        var tagged = new byte[] { 0x00, 0xFF, (byte)'B', (byte)'K', (byte)'H', 1, 2 };
        client.SendRaw(RespConnection.Encode("SET", "tag", tagged));
        Assert.Equal(new RespSimple("OK"), client.Read());
        client.SendRaw(RespConnection.Encode("GET", "tag"));
        Assert.Equal(Encoding.UTF8.GetString(tagged), client.Read()); // a string, escaped in the store, not a hash
        Assert.Equal(new RespSimple("string"), client.Call("TYPE", "tag"));
        Assert.IsType<RespError>(client.Call("SET", "\0bitcask:lease", "x"));
        Assert.IsType<RespError>(client.Call("GET", "\0bitcask:lease"));
        Assert.Equal(new RespSimple("PONG"), client.Call("PING"));
    }
}
