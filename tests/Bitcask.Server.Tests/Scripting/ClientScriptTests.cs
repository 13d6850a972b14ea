using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

/// <summary>
/// The Lua scripts the stock client packages send, run against the fake command table. The script texts are test
/// fixtures taken from those packages (both MIT-licensed): DistributedLock.Redis
/// (madelson/DistributedLock, src/DistributedLock.Redis/Primitives/RedisMutexPrimitive.cs, after its
/// RedisScript turns key holes into KEYS[n] and value holes into ARGV[n]) and RedisRateLimiting
/// (cristipufu/aspnetcore-redis-rate-limiting, src/RedisRateLimiting/FixedWindow and TokenBucket managers, which
/// use StackExchange.Redis's LuaScript: @name becomes ARGV[n], n in order of first appearance).
/// </summary>
public sealed partial class ClientScriptTests : IDisposable
{
    private const string LockExtend = """

            if redis.call('get', KEYS[1]) == ARGV[1] then
                return redis.call('pexpire', KEYS[1], ARGV[2])
            end
            return 0
        """;

    private const string LockRelease = """

            if redis.call('get', KEYS[1]) == ARGV[1] then
                return redis.call('del', KEYS[1])
            end
            return 0
        """;

    private const string FixedWindow = """
        local expires_at = tonumber(redis.call("get", @expires_at_key))
                    local limit = tonumber(@permit_limit)
                    local inc = tonumber(@increment_amount)

                    if not expires_at or expires_at < tonumber(@current_time) then
                        -- this is either a brand new window,
                        -- or this window has closed, but redis hasn't cleaned up the key yet
                        -- (redis will clean it up in one more second)
                        -- initialize a new rate limit window
                        redis.call("set", @rate_limit_key, 0)
                        redis.call("set", @expires_at_key, @next_expires_at)
                        -- tell Redis to clean this up _one second after_ the expires_at time (clock differences).
                        -- (Redis will only clean up these keys long after the window has passed)
                        redis.call("pexpireat", @rate_limit_key, @next_expires_at + 1)
                        redis.call("pexpireat", @expires_at_key, @next_expires_at + 1)
                        -- since the database was updated, return the new value
                        expires_at = @next_expires_at
                    end

                    -- now that the window either already exists or it was freshly initialized
                    -- increment the counter(`incrby` returns a number)

                    local current = redis.call("get", @rate_limit_key)

                    if not current then
                        current = 0
                    else
                        current = tonumber(current)
                    end

                    local allowed = current + inc <= limit

                    if allowed then
                        current = redis.call("incrby", @rate_limit_key, inc)
                    end 

                    return { current, expires_at, allowed } 
        """;

    private const string TokenBucket = """

                    -- Prepare the input and force the correct data types.
                    local limit = tonumber(@token_limit)
                    local rate = tonumber(@tokens_per_period)
                    local period = tonumber(@replenish_period)
                    local requested = tonumber(@permit_count)
                    local now = tonumber(@current_time)

                    -- Load the current state from Redis. We use MGET to save a round-trip.
                    local state = redis.call('MGET', @rate_limit_key, @timestamp_key)
                    local current_tokens = tonumber(state[1]) or limit
                    local last_refreshed = tonumber(state[2]) or 0

                    -- Calculate the time and replenishment periods elapsed since the last call.
                    local time_since_last_refreshed = math.max(0, now - last_refreshed)
                    local periods_since_last_refreshed = math.floor(time_since_last_refreshed / period)

                    -- Now we have all the info we need to calculate the current tokens based on the elapsed time.
                    current_tokens = math.min(limit, current_tokens + (periods_since_last_refreshed * rate))

                    -- We are also able to calculate the time of the last replenishment, which we store and use
                    -- to calculate the time after which a client may retry if they are rate limited.
                    local time_of_last_replenishment = now
                    if last_refreshed > 0 then
                        time_of_last_replenishment = last_refreshed + (periods_since_last_refreshed * period)
                    end

                    -- If the bucket contains enough tokens for the current request, we remove the tokens.
                    local allowed = current_tokens >= requested
                    if allowed then
                        current_tokens = current_tokens - requested
                    end

                    -- In order to remove rate limit keys automatically from the database, we calculate a TTL
                    -- based on the worst-case scenario for the bucket to fill up again.
                    -- The worst case is when the bucket is empty and the last replenisment adds less tokens than available.
                    local periods_until_full = math.ceil(limit / rate)
                    local ttl = math.ceil(periods_until_full * period)

                    -- We only store the new state in the database if the request was granted.
                    -- This avoids rounding issues and edge cases which can occur if many requests are rate limited.
                    if allowed then
                        redis.call('SET', @rate_limit_key, current_tokens, 'PX', ttl)
                        redis.call('SET', @timestamp_key, time_of_last_replenishment, 'PX', ttl)
                    end

                    -- Before we return, we can now also calculate when the client may retry again if they are rate limited.
                    local retry_after = 0
                    if not allowed then
                        retry_after = period - (now - time_of_last_replenishment)
                    end

                    return { allowed, current_tokens, retry_after }
        """;

    private readonly LuaScriptHost _host = new(new ScriptLimits());
    private readonly FakeRedis _redis = new();

    public void Dispose() => _host.Dispose();

    [Fact]
    public void DistributedLock_extend_and_release_work_for_the_owner_only()
    {
        _redis.Execute(Args("set", "lock", "owner-1", "NX", "PX", "30000"));

        Assert.Equal(I(0), _host.Eval(LockExtend, _redis, keys: ["lock"], args: ["someone-else", "60000"]));
        Assert.Equal(I(1), _host.Eval(LockExtend, _redis, keys: ["lock"], args: ["owner-1", "60000"]));
        Assert.Equal(_redis.NowMs + 60_000, _redis.ExpiryOf("lock"));
        Assert.Equal(I(0), _host.Eval(LockRelease, _redis, keys: ["lock"], args: ["someone-else"]));
        Assert.Equal("owner-1", _redis.GetString("lock"));
        Assert.Equal(I(1), _host.Eval(LockRelease, _redis, keys: ["lock"], args: ["owner-1"]));
        Assert.Null(_redis.GetString("lock"));
    }

    [Fact]
    public void DistributedLock_extend_reports_a_lost_lock_when_the_key_was_deleted()
    {
        _redis.Execute(Args("set", "lock", "owner-1", "NX", "PX", "30000"));
        _redis.Execute(Args("del", "lock"));

        Assert.Equal(I(0), _host.Eval(LockExtend, _redis, keys: ["lock"], args: ["owner-1", "60000"]));
    }

    [Fact]
    public void RedisRateLimiting_fixed_window_allows_the_limit_then_refuses_until_the_next_window()
    {
        long window = 1_000;
        ScriptValue Acquire() => RunLuaScript(FixedWindow, new()
        {
            ["rate_limit_key"] = "rl:fw:{p}",
            ["expires_at_key"] = "rl:fw:{p}:exp",
            ["next_expires_at"] = (_redis.NowMs + window).ToString(CultureInfo.InvariantCulture),
            ["current_time"] = _redis.NowMs.ToString(CultureInfo.InvariantCulture),
            ["permit_limit"] = "3",
            ["increment_amount"] = "1",
        });
        long windowEnd = _redis.NowMs + window;

        for (int i = 1; i <= 3; i++)
        {
            var reply = Assert.IsType<ScriptValue.Array>(Acquire());
            Assert.Equal([i, windowEnd, 1], reply.Items.Select(AsLong));
        }

        var refused = Assert.IsType<ScriptValue.Array>(Acquire());
        Assert.Equal([3, windowEnd], refused.Items.Take(2).Select(AsLong));
        Assert.Equal(Nil, refused.Items[2]);
        Assert.Equal(windowEnd + 1, _redis.ExpiryOf("rl:fw:{p}"));

        _redis.NowMs += window + 5;
        var nextWindow = Assert.IsType<ScriptValue.Array>(Acquire());
        Assert.Equal([1, _redis.NowMs + window, 1], nextWindow.Items.Select(AsLong));
    }

    [Fact]
    public void RedisRateLimiting_token_bucket_spends_tokens_refills_per_period_and_says_when_to_retry()
    {
        ScriptValue Acquire() => RunLuaScript(TokenBucket, new()
        {
            ["rate_limit_key"] = "rl:tb:{p}",
            ["timestamp_key"] = "rl:tb:{p}:ts",
            ["tokens_per_period"] = "1",
            ["token_limit"] = "2",
            ["replenish_period"] = "1000",
            ["permit_count"] = "1",
            ["current_time"] = _redis.NowMs.ToString(CultureInfo.InvariantCulture),
        });
        long start = _redis.NowMs;

        Assert.Equal(A(I(1), I(1), I(0)), Acquire());
        Assert.Equal(A(I(1), I(0), I(0)), Acquire());
        _redis.NowMs += 400;
        Assert.Equal(A(Nil, I(0), I(600)), Acquire());
        Assert.Equal(start.ToString(CultureInfo.InvariantCulture), _redis.GetString("rl:tb:{p}:ts"));
        Assert.Equal(start + 2_000, _redis.ExpiryOf("rl:tb:{p}"));

        _redis.NowMs = start + 1_000;
        Assert.Equal(A(I(1), I(0), I(0)), Acquire());
        Assert.Equal((start + 1_000).ToString(CultureInfo.InvariantCulture), _redis.GetString("rl:tb:{p}:ts"));
    }

    [Fact]
    public void StackExchange_LuaScript_named_parameters_run_once_turned_into_argv()
    {
        ScriptValue result = RunLuaScript(
            "redis.call('set', @key, @value) return redis.call('get', @key)",
            new() { ["key"] = "se:key", ["value"] = "se-value" });

        Assert.Equal(B("se-value"), result);
    }

    [Fact]
    public void Redis_time_gives_scripts_the_server_clock()
    {
        ScriptValue result = _host.Eval(
            "local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)", _redis);

        Assert.Equal(I(_redis.NowMs), result);
    }

    [Fact]
    public void String_helpers_scripts_commonly_use_behave_as_in_redis()
    {
        ScriptValue result = _host.Eval(
            "local parts = {} for p in string.gmatch(ARGV[1], '[^,]+') do parts[#parts + 1] = p end " +
            "return {#parts, string.upper(parts[2]), string.format('%s-%d', parts[1], 7), tostring(12), " +
            "string.sub(ARGV[1], 1, 3), tonumber('0x10'), tonumber('nope') == nil and 1 or 0}",
            args: ["abc,def,ghi"]);

        Assert.Equal(A(I(3), B("DEF"), B("abc-7"), B("12"), B("abc"), I(16), I(1)), result);
    }

    private static byte[][] Args(params string[] args) => [.. args.Select(a => Encoding.UTF8.GetBytes(a))];

    private static long AsLong(ScriptValue value) => value switch
    {
        ScriptValue.Integer integer => integer.Value,
        ScriptValue.Bulk bulk => long.Parse(Encoding.UTF8.GetString(bulk.Value), CultureInfo.InvariantCulture),
        _ => throw new InvalidOperationException($"not a number: {value}"),
    };

    /// <summary>
    /// Sends a script with @named parameters the way StackExchange.Redis's LuaScript does: each distinct name
    /// becomes ARGV[n] (n in order of first appearance) and its value is the n-th argument.
    /// </summary>
    private ScriptValue RunLuaScript(string script, Dictionary<string, string> parameters)
    {
        var order = new List<string>();
        string ordinal = NamedParameter().Replace(script, match =>
        {
            string name = match.Groups[1].Value;
            if (!order.Contains(name))
            {
                order.Add(name);
            }

            return $"ARGV[{order.IndexOf(name) + 1}]";
        });

        return _host.Eval(ordinal, _redis, args: [.. order.Select(name => parameters[name])]);
    }

    [GeneratedRegex(@"(?<![\w@])@([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex NamedParameter();
}
