using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptLimitTests
{
    private static LuaScriptHost ShortTimeHost() => new(new ScriptLimits { MaxDuration = TimeSpan.FromMilliseconds(200) });

    [Fact]
    public void An_infinite_loop_is_stopped_by_the_time_limit_and_the_same_state_runs_the_next_script()
    {
        using LuaScriptHost host = ShortTimeHost();

        string error = ErrorText(host.Eval("while true do end"));

        Assert.StartsWith("ERR Script exceeded the time limit of 200 ms and was stopped", error, StringComparison.Ordinal);
        Assert.Equal(I(55), host.Eval("local s = 0 for i = 1, 10 do s = s + i end return s"));
        Assert.Equal(1, host.StatesCreated);
    }

    [Fact]
    public void A_loop_that_catches_the_time_limit_error_with_pcall_is_stopped_too()
    {
        using LuaScriptHost host = ShortTimeHost();

        string error = ErrorText(host.Eval(
            "local n = 0 while true do pcall(function() while true do n = n + 1 end end) end"));

        Assert.StartsWith("ERR Script exceeded the time limit of 200 ms", error, StringComparison.Ordinal);
        Assert.Equal(B("ok"), host.Eval("return 'ok'"));
    }

    [Fact]
    public void A_loop_inside_a_sort_comparator_is_stopped_by_the_time_limit()
    {
        using LuaScriptHost host = ShortTimeHost();

        string error = ErrorText(host.Eval(
            "local t = {3, 1, 2} table.sort(t, function(a, b) while true do end end) return t"));

        Assert.StartsWith("ERR Script exceeded the time limit of 200 ms", error, StringComparison.Ordinal);
        Assert.Equal(A(I(1), I(2), I(3)), host.Eval("local t = {3, 1, 2} table.sort(t) return t"));
    }

    [Fact]
    public void A_loop_in_an_xpcall_handler_is_stopped_by_the_time_limit()
    {
        using LuaScriptHost host = ShortTimeHost();

        ScriptValue result = host.Eval("xpcall(function() error('x') end, function() while true do end end) return 'done'");

        Assert.StartsWith("ERR Script exceeded the time limit of 200 ms", ErrorText(result), StringComparison.Ordinal);
        Assert.Equal(I(1), host.Eval("return 1"));
    }

    [Fact]
    public void Time_spent_in_redis_calls_counts_toward_the_limit()
    {
        using LuaScriptHost host = ShortTimeHost();
        var redis = new FakeRedis();

        string error = ErrorText(host.Eval("while true do redis.call('incr', 'n') end", redis));

        Assert.StartsWith("ERR Script exceeded the time limit", error, StringComparison.Ordinal);
        Assert.True(redis.Calls > 0);
    }

    [Fact]
    public void An_allocation_bomb_is_stopped_by_the_memory_limit_and_the_state_runs_the_next_script()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxMemoryBytes = 4L << 20 });

        string error = ErrorText(host.Eval(
            "local t = {} for i = 1, 100000000 do t[i] = string.rep('x', 100) .. i end return #t"));

        Assert.Equal("ERR Script exceeded the memory limit of 4194304 bytes", error);
        Assert.Equal(B("still here"), host.Eval("return 'still ' .. 'here'"));
        Assert.Equal(1, host.StatesCreated);
    }

    [Fact]
    public void One_huge_string_is_refused_by_the_memory_limit()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxMemoryBytes = 4L << 20 });

        Assert.Equal(
            "ERR Script exceeded the memory limit of 4194304 bytes",
            ErrorText(host.Eval("return #string.rep('x', 100000000)")));
    }

    [Fact]
    public void A_script_can_catch_a_refused_allocation_and_carry_on_within_the_limit()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxMemoryBytes = 4L << 20 });

        ScriptValue result = host.Eval(
            "local ok, e = pcall(string.rep, 'x', 100000000) return {tostring(ok), e, #string.rep('y', 1000)}");

        Assert.Equal(A(B("false"), B("not enough memory"), I(1000)), result);
    }

    [Fact]
    public void Memory_a_failed_script_left_behind_is_released_so_later_scripts_have_the_whole_limit()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxMemoryBytes = 4L << 20 });
        const string fill = "local t = {} for i = 1, 100000000 do t[i] = string.rep('x', 100) .. i end";

        for (int i = 0; i < 3; i++)
        {
            Assert.StartsWith("ERR Script exceeded the memory limit", ErrorText(host.Eval(fill)), StringComparison.Ordinal);
        }

        // About 2 MiB held at once (half the limit) still fits.
        Assert.Equal(I(2_000_000), host.Eval("local t = {} for i = 1, 20 do t[i] = string.rep('z', 100000) end return #t[20] * #t"));
    }

    [Fact]
    public void A_state_is_still_usable_after_many_limit_hits_in_a_row()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxDuration = TimeSpan.FromMilliseconds(50), MaxMemoryBytes = 2L << 20 });

        for (int i = 0; i < 5; i++)
        {
            Assert.StartsWith("ERR Script exceeded the time limit", ErrorText(host.Eval("while true do end")), StringComparison.Ordinal);
            Assert.StartsWith("ERR Script exceeded the memory limit", ErrorText(host.Eval("local s = 'x' while true do s = s .. s end")), StringComparison.Ordinal);
            Assert.Equal(I(i), host.Eval("return tonumber(ARGV[1])", args: [i.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
        }
    }

    [Theory]
    [InlineData(0, 64L << 20)]
    [InlineData(-1, 64L << 20)]
    [InlineData(1000, 1000)]
    public void Limits_out_of_range_are_refused_when_the_host_is_created(int milliseconds, long memory)
    {
        var thrown = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new LuaScriptHost(new ScriptLimits { MaxDuration = TimeSpan.FromMilliseconds(milliseconds), MaxMemoryBytes = memory }));

        Assert.Contains("ScriptLimits.", thrown.Message, StringComparison.Ordinal);
    }
}
