using System.Text;
using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptConversionTests : IDisposable
{
    private readonly LuaScriptHost _host = new(new ScriptLimits());

    public void Dispose() => _host.Dispose();

    private static readonly Dictionary<string, ScriptValue> LuaToReplyCases = new()
    {
        { "return 42", I(42) },
        { "return 3.99", I(3) },
        { "return -3.99", I(-3) },
        { "return 10 / 4", I(2) },
        { "return true", I(1) },
        { "return false", Nil },
        { "return nil", Nil },
        { "return", Nil },
        { "return 'hello'", B("hello") },
        { "return ''", B("") },
        { "return {1, 2, 3, nil, 5}", A(I(1), I(2), I(3)) },
        { "return {1, false, 'x'}", A(I(1), Nil, B("x")) },
        { "return {1, {2, {'deep'}}, true}", A(I(1), A(I(2), A(B("deep"))), I(1)) },
        { "return {a = 1, b = 2}", A() },
        { "return {}", A() },
        { "return {ok = 'FINE'}", new ScriptValue.Status("FINE") },
        { "return {err = 'MYCODE my message'}", new ScriptValue.Error("MYCODE my message") },
        { "return {err = 'E', ok = 'O'}", new ScriptValue.Error("E") },
        { "return {ok = 42, 1, 2}", A(I(1), I(2)) },
        { "return {1, {err = 'ERR inner'}, {ok = 'OK'}}", A(I(1), new ScriptValue.Error("ERR inner"), new ScriptValue.Status("OK")) },
        { "return {double = 3.5}", B("3.5") },
        { "return function() end", Nil },
        { "return redis.status_reply('line\\r\\nbreak')", new ScriptValue.Status("line  break") },
    };

    public static TheoryData<string> LuaToReply => [.. LuaToReplyCases.Keys];

    [Theory]
    [MemberData(nameof(LuaToReply))]
    public void A_lua_value_becomes_the_reply_redis_would_send(string script)
    {
        Assert.Equal(LuaToReplyCases[script], _host.Eval(script));
    }

    // check script -> the reply redis.call gives it
    private static readonly Dictionary<string, ScriptValue> ReplyToLuaCases = new()
    {
        { "return math.type(r) == 'integer' and r == 7", new ScriptValue.Integer(7) },
        { "return type(r) == 'string' and r == 'text'", B("text") },
        { "return r == false", new ScriptValue.Nil() },
        { "return type(r) == 'table' and r.ok == 'OK' and r.err == nil", new ScriptValue.Status("OK") },
        { "return #r == 4 and r[1] == 1 and r[2] == 'two' and r[3] == false and r[4][1] == 4", A(I(1), B("two"), new ScriptValue.Nil(), A(I(4))) },
        { "return r[2].err == 'WRONGTYPE inside'", A(I(1), new ScriptValue.Error("WRONGTYPE inside")) },
        { "return type(r) == 'table' and next(r) == nil", A() },
    };

    public static TheoryData<string> ReplyToLua => [.. ReplyToLuaCases.Keys];

    [Theory]
    [MemberData(nameof(ReplyToLua))]
    public void A_command_reply_reaches_the_script_as_redis_gives_it(string check)
    {
        var executor = new ScriptedReply(ReplyToLuaCases[check]);
        ScriptValue result = _host.Eval(Encoding.UTF8.GetBytes("local r = redis.call('anything')\n" + check), [], [], executor);

        Assert.Equal(I(1), result);
    }

    [Fact]
    public void Keys_and_argv_hold_the_arguments_as_strings()
    {
        ScriptValue result = _host.Eval(
            "return {#KEYS, #ARGV, KEYS[1], KEYS[2], ARGV[1], ARGV[3], type(ARGV[2])}",
            keys: ["k1", "k2"],
            args: ["a", "10", "c"]);

        Assert.Equal(A(I(2), I(3), B("k1"), B("k2"), B("a"), B("c"), B("string")), result);
    }

    [Fact]
    public void Binary_arguments_and_values_pass_through_unchanged()
    {
        byte[] binary = [0, 255, 254, 13, 10, 0, 128];
        var redis = new FakeRedis();
        ScriptValue result = _host.Eval(
            Encoding.UTF8.GetBytes("redis.call('set', KEYS[1], ARGV[1]) return {redis.call('get', KEYS[1]), #ARGV[1]}"),
            [binary],
            [binary],
            redis);

        Assert.Equal(A(new ScriptValue.Bulk(binary), I(binary.Length)), result);
    }

    [Fact]
    public void Keys_and_argv_of_one_run_are_gone_in_the_next()
    {
        _host.Eval("return 1", keys: ["a", "b"], args: ["c"]);

        Assert.Equal(A(I(0), I(0)), _host.Eval("return {#KEYS, #ARGV}"));
    }

    [Theory]
    [InlineData("redis.call('set', 'k', 12)", "set k 12")]
    [InlineData("redis.call('set', 'k', 3.0)", "set k 3")]
    [InlineData("redis.call('set', 'k', 1.5)", "set k 1.5")]
    [InlineData("redis.call('set', 'k', 10 / 2)", "set k 5")]
    [InlineData("redis.call('set', 'k', -0.25)", "set k -0.25")]
    public void Numbers_given_to_redis_call_become_the_text_redis_would_send(string script, string expectedCommand)
    {
        var redis = new FakeRedis();
        _host.Eval(script, redis);

        Assert.Equal(expectedCommand, Assert.Single(redis.Log));
    }

    [Fact]
    public void Unpack_spreads_argv_into_a_command_as_in_lua_5_1()
    {
        var redis = new FakeRedis();
        _host.Eval("return redis.call('mget', unpack(KEYS))", redis, keys: ["x", "y"]);

        Assert.Equal("mget x y", Assert.Single(redis.Log));
    }

    [Fact]
    public void A_table_that_contains_itself_gives_an_error_not_a_crash()
    {
        string error = ErrorText(_host.Eval("local t = {} t[1] = t return t"));

        Assert.Contains("reached lua stack limit", error, StringComparison.Ordinal);
        Assert.Equal(I(5), _host.Eval("return 5"));
    }

    [Fact]
    public void A_reply_reaching_one_table_many_times_is_bounded_by_the_memory_limit()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxMemoryBytes = 2L << 20 });
        string script = "local s = string.rep('x', 1000) local t = {} for i = 1, 100 do t[i] = s end " +
                        "local u = {} for i = 1, 100 do u[i] = t end return u";

        string error = ErrorText(host.Eval(script));

        Assert.Contains("larger than the script memory limit", error, StringComparison.Ordinal);
    }

    private sealed class ScriptedReply(ScriptValue reply) : IScriptCommandExecutor
    {
        public ScriptValue Execute(IReadOnlyList<byte[]> argv) => reply;
    }
}
