using System.Security.Cryptography;
using System.Text;
using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptCacheTests : IDisposable
{
    private readonly LuaScriptHost _host = new(new ScriptLimits());

    public void Dispose() => _host.Dispose();

    private static string Sha(string script) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(script)));

    [Fact]
    public void Script_load_returns_the_lowercase_sha1_and_evalsha_runs_it()
    {
        const string script = "return ARGV[1] .. '!'";

        string sha1 = _host.Load(script);

        Assert.Equal(Sha(script), sha1);
        Assert.True(_host.Exists(sha1));
        Assert.Equal(B("hi!"), _host.EvalSha(sha1, args: ["hi"]));
    }

    [Fact]
    public void Exists_and_evalsha_accept_an_uppercase_sha1()
    {
        string sha1 = _host.Load("return 1");

        Assert.True(_host.Exists(sha1.ToUpperInvariant()));
        Assert.Equal(I(1), _host.EvalSha(sha1.ToUpperInvariant()));
    }

    [Fact]
    public void Eval_caches_the_script_so_evalsha_finds_it()
    {
        const string script = "return 'cached'";
        Assert.False(_host.Exists(Sha(script)));

        _host.Eval(script);

        Assert.True(_host.Exists(Sha(script)));
        Assert.Equal(B("cached"), _host.EvalSha(Sha(script)));
    }

    [Fact]
    public void Evalsha_of_an_unknown_script_is_noscript()
    {
        Assert.Equal(
            new ScriptValue.Error("NOSCRIPT No matching script. Please use EVAL."),
            _host.EvalSha("0123456789abcdef0123456789abcdef01234567"));
    }

    [Fact]
    public void Script_flush_forgets_every_script()
    {
        string loaded = _host.Load("return 'loaded'");
        _host.Eval("return 'evaluated'");

        _host.Flush();

        Assert.False(_host.Exists(loaded));
        Assert.False(_host.Exists(Sha("return 'evaluated'")));
        Assert.Equal(new ScriptValue.Error(LuaScriptHost.NoScriptMessage), _host.EvalSha(loaded));
        Assert.Equal(0, _host.CachedScriptCount);
        Assert.Equal(B("loaded"), _host.Eval("return 'loaded'"));
    }

    [Fact]
    public void Scripts_added_by_eval_are_bounded_and_the_least_recently_used_go_first_but_loaded_ones_stay()
    {
        string loaded = _host.Load("return 'pinned'");
        _host.Eval("return 'first'");
        for (int i = 0; i < LuaScriptHost.MaxEvalScripts + 50; i++)
        {
            _host.Eval($"return {i}");
        }

        Assert.Equal(LuaScriptHost.MaxEvalScripts + 1, _host.CachedScriptCount);
        Assert.True(_host.Exists(loaded));
        Assert.False(_host.Exists(Sha("return 'first'")));
        Assert.True(_host.Exists(Sha($"return {LuaScriptHost.MaxEvalScripts + 49}")));
    }

    [Fact]
    public void The_same_script_run_twice_gives_the_same_result_from_the_compiled_cache()
    {
        var redis = new FakeRedis();
        const string script = "return redis.call('incr', KEYS[1])";

        Assert.Equal(I(1), _host.Eval(script, redis, keys: ["n"]));
        Assert.Equal(I(2), _host.Eval(script, redis, keys: ["n"]));
        Assert.Equal(I(3), _host.EvalSha(Sha(script), redis, keys: ["n"]));
    }
}
