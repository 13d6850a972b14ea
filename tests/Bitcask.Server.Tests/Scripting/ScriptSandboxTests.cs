using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptSandboxTests : IDisposable
{
    private readonly LuaScriptHost _host = new(new ScriptLimits());

    public void Dispose() => _host.Dispose();

    [Theory]
    [InlineData("x = 1", "x")]
    [InlineData("function helper() end", "helper")]
    [InlineData("_G.y = 2", "y")]
    [InlineData("KEYS2 = {}", "KEYS2")]
    [InlineData("redis = nil", "redis")]
    public void A_script_may_not_create_a_global(string script, string name)
    {
        string error = ErrorText(_host.Eval(script));

        Assert.Contains($"Script attempted to create global variable '{name}'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Local_variables_and_functions_are_fine()
    {
        Assert.Equal(I(6), _host.Eval("local function double(v) return v * 2 end local x = 3 return double(x)"));
    }

    [Theory]
    [InlineData("os")]
    [InlineData("io")]
    [InlineData("loadfile")]
    [InlineData("dofile")]
    [InlineData("require")]
    [InlineData("load")]
    [InlineData("loadstring")]
    [InlineData("debug")]
    [InlineData("package")]
    [InlineData("module")]
    [InlineData("collectgarbage")]
    [InlineData("coroutine")]
    public void Unsafe_libraries_and_functions_are_absent(string name)
    {
        string error = ErrorText(_host.Eval($"return type({name})"));

        Assert.Contains($"Script attempted to access nonexistent global variable '{name}'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_safe_libraries_are_there()
    {
        ScriptValue result = _host.Eval(
            "return {type(string.format), type(table.concat), type(math.floor), type(utf8.char), type(redis.call), " +
            "type(bit.band), type(tonumber), type(pcall), type(unpack), _VERSION}");

        Assert.Equal(
            A(B("function"), B("function"), B("function"), B("function"), B("function"), B("function"),
              B("function"), B("function"), B("function"), B("Lua 5.4")),
            result);
    }

    [Theory]
    [InlineData("string.upper = nil")]
    [InlineData("redis.call = function() return 'hijacked' end")]
    [InlineData("table.insert = print")]
    [InlineData("math.pi = 3")]
    public void Library_tables_are_read_only(string script)
    {
        string error = ErrorText(_host.Eval(script));

        Assert.Contains("Attempt to modify a readonly table", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rawset_into_a_library_does_not_reach_the_next_script()
    {
        var redis = new FakeRedis();
        _host.Eval("rawset(redis, 'call', function() return 'hijacked' end) return redis.call('x')");

        Assert.Equal(new ScriptValue.Status("PONG"), _host.Eval("return redis.call('ping')", redis));
    }

    [Fact]
    public void A_global_set_with_rawset_does_not_reach_the_next_script()
    {
        Assert.Equal(I(1), _host.Eval("rawset(_G, 'leak', 1) return leak"));

        string error = ErrorText(_host.Eval("return leak"));

        Assert.Contains("nonexistent global variable 'leak'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_string_metatable_is_hidden()
    {
        Assert.Equal(new ScriptValue.Nil(), _host.Eval("return getmetatable('')"));
        Assert.Equal(B("ABC"), _host.Eval("return ('abc'):upper()"));
    }

    [Fact]
    public void A_gc_metamethod_is_refused()
    {
        string error = ErrorText(_host.Eval("setmetatable({}, {__gc = function() end})"));

        Assert.Contains("__gc metamethod", error, StringComparison.Ordinal);
        Assert.Equal(I(2), _host.Eval("local t = setmetatable({}, {__index = function() return 2 end}) return t.anything"));
    }

    [Fact]
    public void Xpcall_hands_the_error_to_its_handler()
    {
        ScriptValue result = _host.Eval(
            "return {xpcall(function() error('boom', 0) end, function(e) return 'handled ' .. e end)}");

        Assert.Equal(A(Nil, B("handled boom")), result);
        Assert.Equal(A(I(1), I(7)), _host.Eval("return {xpcall(function(a) return a end, print, 7)}"));
    }

    [Fact]
    public void Lua_5_1_names_redis_scripts_use_still_work()
    {
        ScriptValue result = _host.Eval("return {table.getn({1, 2, 3}), math.pow(2, 10), math.mod(7, 3), unpack({4, 5})}");

        Assert.Equal(A(I(3), I(1024), I(1), I(4), I(5)), result);
    }

    [Theory]
    [InlineData("return bit.band(0xFF, 0x0F)", 15)]
    [InlineData("return bit.bor(1, 2, 4)", 7)]
    [InlineData("return bit.bxor(5, 3)", 6)]
    [InlineData("return bit.bnot(0)", -1)]
    [InlineData("return bit.tobit(0xffffffff)", -1)]
    [InlineData("return bit.tobit(2^32 + 5)", 5)]
    [InlineData("return bit.lshift(1, 31)", -2147483648)]
    [InlineData("return bit.rshift(-1, 28)", 15)]
    [InlineData("return bit.arshift(-256, 4)", -16)]
    [InlineData("return bit.rol(0x80000001, 1)", 3)]
    [InlineData("return bit.ror(3, 1)", -2147483647)]
    [InlineData("return bit.bswap(0x12345678)", 0x78563412)]
    public void The_bit_library_gives_luabitop_results(string script, long expected)
    {
        Assert.Equal(I(expected), _host.Eval(script));
    }

    [Fact]
    public void Bit_tohex_formats_like_luabitop()
    {
        Assert.Equal(A(B("000000ff"), B("FF"), B("ffffffff")), _host.Eval("return {bit.tohex(255), bit.tohex(255, -2), bit.tohex(-1)}"));
    }
}
