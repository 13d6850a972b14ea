using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptCjsonTests : IDisposable
{
    private readonly LuaScriptHost _host = new(new ScriptLimits());

    public void Dispose() => _host.Dispose();

    [Theory]
    [InlineData("return cjson.encode({1, 2, 'three'})", "[1,2,\"three\"]")]
    [InlineData("return cjson.encode({name = 'a/b'})", "{\"name\":\"a\\/b\"}")]
    [InlineData("return cjson.encode({})", "{}")]
    [InlineData("return cjson.encode({1, nil, 3})", "[1,null,3]")]
    [InlineData("return cjson.encode({true, false, cjson.null})", "[true,false,null]")]
    [InlineData("return cjson.encode(1.5)", "1.5")]
    [InlineData("return cjson.encode(10 / 2)", "5")]
    [InlineData("return cjson.encode('line\\nbreak \"q\"')", "\"line\\nbreak \\\"q\\\"\"")]
    [InlineData("return cjson.encode({{x = {1}}})", "[{\"x\":[1]}]")]
    public void Encode_writes_json_like_cjson(string script, string expected)
    {
        Assert.Equal(B(expected), _host.Eval(script));
    }

    [Fact]
    public void Decode_reads_objects_arrays_and_scalars()
    {
        ScriptValue result = _host.Eval(
            "local v = cjson.decode(ARGV[1]) " +
            "return {v.name, v.count, #v.items, v.items[2], tostring(v.flag), tostring(v.nothing == cjson.null), v.nested.deep, math.type(v.ratio)}",
            args: ["{\"name\":\"x\",\"count\":3,\"items\":[10,20,30],\"flag\":true,\"nothing\":null,\"nested\":{\"deep\":\"yes\"},\"ratio\":0.5}"]);

        Assert.Equal(A(B("x"), I(3), I(3), I(20), B("true"), B("true"), B("yes"), B("float")), result);
    }

    [Fact]
    public void Decode_then_encode_round_trips_an_array()
    {
        Assert.Equal(B("[1,\"two\",[3]]"), _host.Eval("return cjson.encode(cjson.decode('[1, \"two\", [3]]'))"));
    }

    [Theory]
    [InlineData("return cjson.decode('{bad json')", "Expected")]
    [InlineData("return cjson.decode('')", "Expected value")]
    [InlineData("return cjson.decode('[1] [2]')", "invalid token")]
    [InlineData("return cjson.decode(12)", "string expected")]
    [InlineData("return cjson.encode(function() end)", "Cannot serialise function")]
    [InlineData("return cjson.encode({[{}] = 1})", "table key must be a number or string")]
    [InlineData("return cjson.encode({[1] = 1, [1000] = 2})", "excessively sparse array")]
    [InlineData("return cjson.encode(0/0)", "must not be NaN or Inf")]
    [InlineData("local t = {} t[1] = t return cjson.encode(t)", "excessive nesting")]
    public void Bad_input_raises_a_script_error(string script, string expected)
    {
        string error = ErrorText(_host.Eval(script));

        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Equal(I(1), _host.Eval("return 1"));
    }

    [Fact]
    public void Json_that_would_outgrow_the_memory_limit_is_refused()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxMemoryBytes = 2L << 20 });
        string script = "local t = {string.rep('x', 1000)} for i = 1, 25 do t = {t, t} end return #cjson.encode(t)";

        string error = ErrorText(host.Eval(script));

        Assert.Contains("exceed the script memory limit", error, StringComparison.Ordinal);
    }
}
