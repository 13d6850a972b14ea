using System.Security.Cryptography;
using System.Text;
using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptErrorTests : IDisposable
{
    private readonly LuaScriptHost _host = new(new ScriptLimits());

    public void Dispose() => _host.Dispose();

    private static string Sha(string script) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(script)));

    [Fact]
    public void Redis_call_raises_a_command_error_which_ends_the_script_with_redis_7s_message()
    {
        var redis = new FakeRedis();
        redis.Set("s", "not a number");
        const string script = "local x = 1\nlocal r = redis.call('incr', 's')\nreturn r";

        string error = ErrorText(_host.Eval(script, redis));

        Assert.Equal($"ERR value is not an integer or out of range script: {Sha(script)}, on @user_script:2.", error);
    }

    [Fact]
    public void Redis_call_in_tail_position_raises_the_command_error_without_a_line()
    {
        // `return redis.call(...)` is a Lua tail call into the wrapper, which replaces the script's frame, so the
        // line is unknown; Redis (whose redis.call is a C function) would add " script: SHA, on @user_script:1.".
        var redis = new FakeRedis();
        redis.Set("s", "text");

        Assert.Equal(
            new ScriptValue.Error("ERR value is not an integer or out of range"),
            _host.Eval("return redis.call('incr', 's')", redis));
    }

    [Fact]
    public void Redis_pcall_returns_a_command_error_as_a_table_and_the_script_goes_on()
    {
        var redis = new FakeRedis();
        redis.Set("s", "text");

        ScriptValue result = _host.Eval(
            "local r = redis.pcall('incr', 's') return {type(r), r.err, redis.call('get', 's')}", redis);

        Assert.Equal(A(B("table"), B("ERR value is not an integer or out of range"), B("text")), result);
    }

    [Fact]
    public void An_error_table_from_redis_pcall_returned_as_is_becomes_the_error_reply()
    {
        Assert.Equal(
            new ScriptValue.Error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            _host.Eval("return redis.pcall('fail')"));
    }

    [Fact]
    public void Lua_pcall_catches_a_redis_call_error_as_its_error_table()
    {
        ScriptValue result = _host.Eval(
            "local ok, e = pcall(redis.call, 'fail') return {tostring(ok), type(e), e.err}");

        Assert.Equal(A(B("false"), B("table"), B("WRONGTYPE Operation against a key holding the wrong kind of value")), result);
    }

    [Fact]
    public void A_command_error_without_a_code_gets_err()
    {
        ScriptValue result = _host.Eval("return redis.pcall('nosuch').err");

        Assert.Equal(B("ERR unknown command 'nosuch'"), result);
    }

    [Theory]
    [InlineData("return redis.error_reply('MYCODE something failed')", "MYCODE something failed")]
    [InlineData("return redis.error_reply('oops')", "ERR oops")]
    [InlineData("return redis.error_reply('-NOPE not today')", "NOPE not today")]
    [InlineData("return redis.error_reply('ERR two\\r\\nlines')", "ERR two  lines")]
    public void Error_reply_builds_the_error_reply_redis_7_does(string script, string expected)
    {
        Assert.Equal(new ScriptValue.Error(expected), _host.Eval(script));
    }

    [Fact]
    public void Error_reply_and_status_reply_return_tables_a_script_can_inspect()
    {
        ScriptValue result = _host.Eval(
            "local e = redis.error_reply('X y') local s = redis.status_reply('FINE') " +
            "local bad = redis.status_reply(1, 2) return {e.err, s.ok, bad.err}");

        Assert.Equal(A(B("X y"), B("FINE"), B("ERR wrong number or type of arguments")), result);
    }

    [Fact]
    public void Status_reply_becomes_a_status()
    {
        Assert.Equal(new ScriptValue.Status("QUEUED-ISH"), _host.Eval("return redis.status_reply('QUEUED-ISH')"));
    }

    [Fact]
    public void A_runtime_error_names_the_script_line_like_redis_7()
    {
        const string script = "local a = 1\nlocal b = nil\nreturn a + b";

        string error = ErrorText(_host.Eval(script));

        Assert.Equal(
            $"ERR user_script:3: attempt to perform arithmetic on a nil value (local 'b') script: {Sha(script)}, on @user_script:3.",
            error);
    }

    [Fact]
    public void Reading_an_undefined_global_is_an_error_with_redis_7s_text()
    {
        const string script = "return x";

        string error = ErrorText(_host.Eval(script));

        Assert.Equal(
            $"ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: {Sha(script)}, on @user_script:1.",
            error);
    }

    [Fact]
    public void Error_with_a_table_raises_that_table_as_the_reply()
    {
        string error = ErrorText(_host.Eval("error({err = 'CUSTOM my own'})"));

        Assert.StartsWith("CUSTOM my own script: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_syntax_error_is_redis_7s_compile_error_and_the_script_is_not_cached()
    {
        const string script = "return (";

        string error = ErrorText(_host.Eval(script));

        Assert.Equal("ERR Error compiling script (new function): user_script:1: unexpected symbol near <eof>", error);
        Assert.False(_host.Exists(Sha(script)));
    }

    [Fact]
    public void Script_load_of_a_syntax_error_throws_the_compile_error()
    {
        var thrown = Assert.Throws<ScriptException>(() => _host.Load("if then"));

        Assert.StartsWith("ERR Error compiling script (new function): user_script:1:", thrown.Message, StringComparison.Ordinal);
        Assert.Equal(0, _host.CachedScriptCount);
    }

    [Fact]
    public void A_binary_chunk_is_refused()
    {
        string error = ErrorText(_host.Eval("\u001bLua\u0054\u0000garbage"));

        Assert.StartsWith("ERR Error compiling script (new function):", error, StringComparison.Ordinal);
        Assert.Contains("binary", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("local r = redis.call() return r", "ERR Please specify at least one argument for this redis lib call")]
    [InlineData("local r = redis.call('get', {}) return r", "ERR Lua redis lib command arguments must be strings or integers")]
    [InlineData("local r = redis.call('get', nil) return r", "ERR Lua redis lib command arguments must be strings or integers")]
    public void Bad_redis_call_arguments_are_the_errors_redis_raises(string script, string expected)
    {
        string error = ErrorText(_host.Eval(script));

        Assert.StartsWith(expected + " script: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Redis_pcall_returns_an_argument_error_instead_of_raising()
    {
        Assert.Equal(
            B("ERR Lua redis lib command arguments must be strings or integers"),
            _host.Eval("return redis.pcall('get', {}).err"));
    }

    [Fact]
    public void An_exception_from_the_executor_becomes_a_script_error_and_the_host_stays_usable()
    {
        string error = ErrorText(_host.Eval("redis.call('throw')"));

        Assert.StartsWith("ERR executor blew up script: ", error, StringComparison.Ordinal);
        Assert.Equal(new ScriptValue.Status("PONG"), _host.Eval("return redis.call('ping')"));
    }

    [Fact]
    public void Unbounded_recursion_is_a_stack_overflow_error_and_the_host_stays_usable()
    {
        string error = ErrorText(_host.Eval("local function f(n) return 1 + f(n + 1) end return f(1)"));

        Assert.Contains("stack overflow", error, StringComparison.Ordinal);
        Assert.Equal(I(3), _host.Eval("return 1 + 2"));
    }

    [Theory]
    [InlineData("redis.log(redis.LOG_WARNING)", "ERR redis.log() requires two arguments or more.")]
    [InlineData("redis.log('x', 'y')", "ERR First argument must be a number (log level).")]
    [InlineData("redis.log(9, 'y')", "ERR Invalid debug level.")]
    [InlineData("redis.sha1hex()", "ERR wrong number of arguments")]
    [InlineData("redis.setresp(4)", "ERR RESP version must be 2 or 3.")]
    public void Misused_redis_helpers_raise_redis_7s_errors(string script, string expected)
    {
        string error = ErrorText(_host.Eval(script));

        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Redis_helpers_that_need_no_server_work()
    {
        ScriptValue result = _host.Eval(
            "redis.log(redis.LOG_NOTICE, 'hello') redis.setresp(2) redis.set_repl(redis.REPL_ALL) " +
            "return {redis.sha1hex(''), redis.sha1hex('abc'), tostring(redis.replicate_commands()), redis.REDIS_VERSION}");

        Assert.Equal(
            A(B("da39a3ee5e6b4b0d3255bfef95601890afd80709"), B("a9993e364706816aba3e25717850c26c9cd0d89d"), B("true"), B("7.2.0")),
            result);
    }
}
