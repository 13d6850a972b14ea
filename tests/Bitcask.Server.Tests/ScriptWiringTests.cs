using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>EVAL/EVALSHA/SCRIPT as the server wires them to the Lua engine (branch lua): redis.call reaches the command
/// table, a script's writes commit atomically, and commands scripts may not call are refused. Without the engine the
/// commands answer an error and the connection stays usable.</summary>
public class ScriptWiringTests
{
    [Fact]
    public async Task Eval_runs_redis_call_against_the_store_and_evalsha_runs_a_loaded_script()
    {
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        using var client = host.Connect();
        Assert.Equal("hello", client.Call("EVAL", "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])", "1", "k", "hello"));
        Assert.Equal("hello"u8.ToArray(), host.Store.Get("k"u8));
        Assert.Equal(new List<object?> { "f", "v" }, client.Call("EVAL", "redis.call('HSET', KEYS[1], 'f', 'v') return redis.call('HGETALL', KEYS[1])", "1", "h"));
        var sha = (string)client.Call("SCRIPT", "LOAD", "return redis.call('INCRBY', KEYS[1], ARGV[1])")!;
        Assert.Equal(new List<object?> { 1L, 0L }, client.Call("SCRIPT", "EXISTS", sha, "0000000000000000000000000000000000000000"));
        Assert.Equal(5L, client.Call("EVALSHA", sha, "1", "n", "5"));
        Assert.Equal(7L, client.Call("EVALSHA", sha.ToUpperInvariant(), "1", "n", "2"));
        Assert.Equal(new RespError("NOSCRIPT No matching script. Please use EVAL."), client.Call("EVALSHA", "0000000000000000000000000000000000000000", "0"));
        Assert.StartsWith("ERR", ((RespError)client.Call("EVAL", "return redis.call('MULTI')", "0")!).Message);
        Assert.Equal(new RespError("ERR Number of keys can't be greater than number of args"), client.Call("EVAL", "return 1", "3", "a"));
        Assert.Equal(new RespSimple("OK"), client.Call("SCRIPT", "FLUSH"));
        Assert.Equal(new List<object?> { 0L }, client.Call("SCRIPT", "EXISTS", sha));
    }

    [Fact]
    public async Task Concurrent_scripts_doing_read_modify_write_lose_no_update()
    {
        await using var host = await ServerHost.StartAsync();
        const string script = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') redis.call('SET', KEYS[1], tostring(v + 1)) return v + 1";
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
        {
            using var client = host.Connect();
            for (var i = 0; i < 100; i++) client.Call("EVAL", script, "1", "counter");
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal("400"u8.ToArray(), host.Store.Get("counter"u8));
    }
}
