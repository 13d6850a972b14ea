using Bitcask.Server.Tests.Infrastructure;
using StackExchange.Redis;

namespace Bitcask.Server.Tests;

/// <summary>StackExchange.Redis with default options: its handshake (CLIENT SETNAME/SETINFO, CONFIG GET, INFO, CLUSTER
/// NODES, ECHO, SUBSCRIBE on a second connection) succeeds and strings, hashes, transactions and pub/sub work.</summary>
public class StackExchangeRedisTests
{
    private static async Task<(ServerHost Host, ConnectionMultiplexer Redis)> Connect(Durability durability = Durability.Flushed, string? extra = null)
    {
        var host = await ServerHost.StartAsync(durability: durability);
        var redis = await ConnectionMultiplexer.ConnectAsync(host.Configuration + (extra ?? ""));
        return (host, redis);
    }

    [Theory]
    [InlineData("")]
    [InlineData(",protocol=resp3")]
    public async Task The_default_handshake_connects_as_a_standalone_master(string extra)
    {
        var (host, redis) = await Connect(extra: extra);
        await using var hostScope = host;
        using var redisScope = redis;
        Assert.True(redis.IsConnected);
        var server = redis.GetServer(host.Configuration);
        Assert.Equal(ServerType.Standalone, server.ServerType);
        Assert.False(server.IsReplica);
        Assert.Equal(new Version(7, 0, 0), server.Version);
        var db = redis.GetDatabase();
        Assert.True(await db.PingAsync() >= TimeSpan.Zero);
        // RESP2: an interactive and a subscription connection; RESP3 carries pushes on the one connection
        Assert.Equal(extra.Contains("resp3") ? 1 : 2, host.Server.ClientCount);
        var got = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal("c"), (_, m) => got.TrySetResult(m!));
        await db.PublishAsync(RedisChannel.Literal("c"), "m");
        Assert.Equal("m", await got.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        using var raw = host.Connect();
        var info = (string)raw.Call("INFO", "persistence", "replication")!;
        Assert.Contains("durability:Flushed", info);
        Assert.Contains("role:master", info);
    }

    [Fact]
    public async Task Strings_and_counters_behave_like_redis()
    {
        var (host, redis) = await Connect(Durability.Synced);
        await using var hostScope = host;
        using var redisScope = redis;
        var db = redis.GetDatabase();
        Assert.True(await db.StringSetAsync("s", "hello"));
        Assert.Equal("hello", (string?)await db.StringGetAsync("s"));
        Assert.False(await db.StringSetAsync("s", "x", when: When.NotExists));
        Assert.True(await db.StringSetAsync("fresh", "x", when: When.NotExists));
        Assert.False(await db.StringSetAsync("missing", "x", when: When.Exists));
        Assert.Equal(11, await db.StringAppendAsync("s", " world"));
        Assert.Equal("hello world", (string?)await db.StringGetSetAsync("s", "new"));
        Assert.Equal(5, await db.StringIncrementAsync("n", 5));
        Assert.Equal(3, await db.StringDecrementAsync("n", 2));
        Assert.Equal(3.5, await db.StringIncrementAsync("n", 0.5));
        await Assert.ThrowsAsync<RedisServerException>(() => db.StringIncrementAsync("s"));
        Assert.True(await db.StringSetAsync([new("a", "1"), new("b", "2")]));
        var values = await db.StringGetAsync(["a", "b", "nope"]);
        Assert.Equal(["1", "2", null], values.Select(v => (string?)v));
        Assert.True(await db.StringSetAsync("ttl", "v", TimeSpan.FromSeconds(100)));
        var ttl = await db.KeyTimeToLiveAsync("ttl");
        Assert.InRange(ttl!.Value.TotalSeconds, 95, 100);
        Assert.True(await db.KeyPersistAsync("ttl"));
        Assert.Null(await db.KeyTimeToLiveAsync("ttl"));
        Assert.Equal("new", (string?)await db.StringGetDeleteAsync("s"));
        Assert.False(await db.KeyExistsAsync("s"));
        Assert.True(await db.StringSetAsync("short", "v", TimeSpan.FromMilliseconds(50)));
        await Task.Delay(200);
        Assert.False((await db.StringGetAsync("short")).HasValue);
        Assert.Equal(2, await db.KeyDeleteAsync(["a", "b", "nope"]));
        await db.KeyRenameAsync("n", "m");
        Assert.Equal("3.5", (string?)await db.StringGetAsync("m"));
    }

    [Fact]
    public async Task Hashes_hold_fields_keep_their_ttl_and_answer_wrongtype_to_string_commands()
    {
        var (host, redis) = await Connect();
        await using var hostScope = host;
        using var redisScope = redis;
        var db = redis.GetDatabase();
        await db.HashSetAsync("h", [new("f1", "v1"), new("f2", "v2")]);
        Assert.True(await db.KeyExpireAsync("h", TimeSpan.FromMinutes(5)));
        Assert.True(await db.HashSetAsync("h", "f3", "v3"));
        Assert.False(await db.HashSetAsync("h", "f1", "again"));
        Assert.NotNull(await db.KeyTimeToLiveAsync("h")); // HSET kept the TTL
        Assert.Equal(3, await db.HashLengthAsync("h"));
        Assert.Equal("again", (string?)await db.HashGetAsync("h", "f1"));
        var all = (await db.HashGetAllAsync("h")).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        Assert.Equal(new Dictionary<string, string?> { ["f1"] = "again", ["f2"] = "v2", ["f3"] = "v3" }, all);
        Assert.Equal(["v2", null], (await db.HashGetAsync("h", ["f2", "nope"])).Select(v => (string?)v));
        Assert.Equal(10, await db.HashIncrementAsync("h", "count", 10));
        Assert.True(await db.HashDeleteAsync("h", "f3"));
        Assert.True(await db.HashExistsAsync("h", "f2"));
        Assert.Equal(RedisType.Hash, await db.KeyTypeAsync("h"));
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => db.StringGetAsync("h"));
        Assert.StartsWith("WRONGTYPE", ex.Message);
        Assert.Equal(3, (await db.HashKeysAsync("h")).Length);
        Assert.Equal(3, db.HashScan("h").Count());
        Assert.Equal(3, await db.HashDeleteAsync("h", ["f1", "f2", "count"]));
        Assert.False(await db.KeyExistsAsync("h")); // the last field gone, the key is gone
    }

    [Fact]
    public async Task Transactions_with_conditions_apply_all_or_nothing()
    {
        var (host, redis) = await Connect(Durability.Synced);
        await using var hostScope = host;
        using var redisScope = redis;
        var db = redis.GetDatabase();
        await db.StringSetAsync("balance", "100");

        var tx = db.CreateTransaction();
        tx.AddCondition(Condition.StringEqual("balance", "100"));
        var decrement = tx.StringDecrementAsync("balance", 30);
        var log = tx.StringSetAsync("last", "paid 30");
        Assert.True(await tx.ExecuteAsync());
        Assert.Equal(70, await decrement);
        Assert.True(await log);

        var failing = db.CreateTransaction();
        failing.AddCondition(Condition.StringEqual("balance", "100")); // it is 70 now
        _ = failing.StringDecrementAsync("balance", 30);
        _ = failing.StringSetAsync("last", "paid again");
        Assert.False(await failing.ExecuteAsync());
        Assert.Equal("70", (string?)await db.StringGetAsync("balance"));
        Assert.Equal("paid 30", (string?)await db.StringGetAsync("last"));

        var absent = db.CreateTransaction();
        absent.AddCondition(Condition.KeyNotExists("lock"));
        absent.AddCondition(Condition.HashNotExists("h", "f"));
        _ = absent.StringSetAsync("lock", "me");
        _ = absent.HashSetAsync("h", "f", "v");
        Assert.True(await absent.ExecuteAsync());
        Assert.Equal("me", (string?)await db.StringGetAsync("lock"));
    }

    [Fact]
    public async Task A_watched_key_changed_by_another_client_aborts_exec_with_a_null_reply()
    {
        await using var host = await ServerHost.StartAsync();
        using var a = host.Connect();
        using var b = host.Connect();
        a.Call("SET", "w", "1");
        Assert.Equal(new RespSimple("OK"), a.Call("WATCH", "w"));
        Assert.Equal(new RespSimple("OK"), a.Call("MULTI"));
        Assert.Equal(new RespSimple("QUEUED"), a.Call("INCR", "w"));
        Assert.Equal(new RespSimple("QUEUED"), a.Call("SET", "other", "x"));
        b.Call("SET", "w", "10");
        Assert.Null(a.Call("EXEC"));
        Assert.Equal("10", b.Call("GET", "w"));
        Assert.Null(b.Call("GET", "other"));
        // without interference the same transaction applies and answers each command
        a.Call("WATCH", "w");
        a.Call("MULTI");
        a.Call("INCR", "w");
        a.Call("GET", "w");
        Assert.Equal(new List<object?> { 11L, "11" }, a.Call("EXEC"));
        // an error while queueing discards the transaction
        a.Call("MULTI");
        Assert.Equal(new RespError("ERR wrong number of arguments for 'set' command"), a.Call("SET", "x"));
        a.Call("SET", "x", "1");
        Assert.Equal(new RespError("EXECABORT Transaction discarded because of previous errors."), a.Call("EXEC"));
        Assert.Null(a.Call("GET", "x"));
        Assert.Equal(new RespError("ERR EXEC without MULTI"), a.Call("EXEC"));
        Assert.Equal(new RespError("ERR DISCARD without MULTI"), a.Call("DISCARD"));
    }

    [Fact]
    public async Task Pub_sub_delivers_to_channel_and_pattern_subscribers()
    {
        var (host, redis) = await Connect();
        await using var hostScope = host;
        using var redisScope = redis;
        var subscriber = redis.GetSubscriber();
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var byPattern = new TaskCompletionSource<(string, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync(RedisChannel.Literal("news"), (_, message) => received.TrySetResult(message!));
        await subscriber.SubscribeAsync(RedisChannel.Pattern("news.*"), (channel, message) => byPattern.TrySetResult((channel!, message!)));
        Assert.Equal(1, await subscriber.PublishAsync(RedisChannel.Literal("news"), "hello"));
        Assert.Equal("hello", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, await subscriber.PublishAsync(RedisChannel.Literal("news.sport"), "goal"));
        Assert.Equal(("news.sport", "goal"), await byPattern.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await subscriber.UnsubscribeAsync(RedisChannel.Literal("news"));
        Assert.Equal(0, await subscriber.PublishAsync(RedisChannel.Literal("news"), "nobody"));
    }

    [Fact]
    public async Task Keyspace_notifications_report_sets_deletes_and_expiries_from_the_store_watch()
    {
        var (host, redis) = await Connect(extra: ",allowAdmin=true");
        await using var hostScope = host;
        using var redisScope = redis;
        var server = redis.GetServer(host.Configuration);
        await server.ConfigSetAsync("notify-keyspace-events", "KEA");
        Assert.Equal("AKE", (await server.ConfigGetAsync("notify-keyspace-events")).Single().Value);
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var subscriber = redis.GetSubscriber();
        await subscriber.SubscribeAsync(RedisChannel.Pattern("__key*@0__:*"), (channel, message) => events.Enqueue($"{channel} {message}"));
        var db = redis.GetDatabase();
        await db.StringSetAsync("k", "v");
        await db.HashSetAsync("h", "f", "v");
        await db.KeyDeleteAsync("k");
        await db.StringSetAsync("e", "v", TimeSpan.FromMilliseconds(100));
        host.Store.Put("embedded"u8, "too"u8); // a write through the engine's API is seen too
        string[] expected =
        [
            "__keyspace@0__:k set", "__keyevent@0__:set k", "__keyspace@0__:h hset", "__keyevent@0__:hset h",
            "__keyspace@0__:k del", "__keyevent@0__:del k", "__keyspace@0__:e expired", "__keyevent@0__:expired e",
            "__keyspace@0__:embedded set",
        ];
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline && !expected.All(events.Contains)) await Task.Delay(50);
        Assert.All(expected, e => Assert.Contains(e, events));
    }

    [Fact]
    public async Task Scan_and_keys_enumerate_every_key_once_with_match_and_type()
    {
        var (host, redis) = await Connect(extra: ",allowAdmin=true");
        await using var hostScope = host;
        using var redisScope = redis;
        var db = redis.GetDatabase();
        for (var i = 0; i < 250; i++) await db.StringSetAsync($"user:{i}", i);
        for (var i = 0; i < 30; i++) await db.HashSetAsync($"user:h{i}", "f", i);
        var server = redis.GetServer(host.Configuration);
        var scanned = server.Keys(pattern: "user:*", pageSize: 17).Select(k => (string)k!).ToList();
        Assert.Equal(280, scanned.Count);
        Assert.Equal(280, scanned.Distinct().Count());
        Assert.Equal(30, server.Keys(pattern: "user:h*", pageSize: 7).Count());
        Assert.Equal(280, await server.DatabaseSizeAsync());
        using var raw = host.Connect();
        var hashes = new List<string>();
        var cursor = "0";
        do
        {
            var page = (List<object?>)raw.Call("SCAN", cursor, "COUNT", "20", "TYPE", "hash")!;
            cursor = (string)page[0]!;
            hashes.AddRange(((List<object?>)page[1]!).Cast<string>());
        } while (cursor != "0");
        Assert.Equal(30, hashes.Distinct().Count());
    }

    [Fact]
    public async Task Lua_scripts_run_through_script_evaluate_and_prepared_scripts()
    {
        var (host, redis) = await Connect(Durability.Synced);
        await using var hostScope = host;
        using var redisScope = redis;
        var db = redis.GetDatabase();
        var result = await db.ScriptEvaluateAsync("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCRBY', KEYS[2], ARGV[2])",
            ["k", "n"], ["v", 5]);
        Assert.Equal(5, (long)result);
        Assert.Equal("v", (string?)await db.StringGetAsync("k"));
        var prepared = LuaScript.Prepare("return redis.call('GET', @key)");
        Assert.Equal("v", (string?)await db.ScriptEvaluateAsync(prepared, new { key = (RedisKey)"k" }));
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => db.ScriptEvaluateAsync("return redis.call('NOSUCH')"));
        Assert.StartsWith("ERR", ex.Message);
    }
}
