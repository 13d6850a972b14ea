using System.Globalization;
using Bitcask.Server.Scripting;
using static Bitcask.Server.Tests.Scripting.ScriptTestKit;

namespace Bitcask.Server.Tests.Scripting;

public sealed class ScriptConcurrencyTests
{
    [Fact]
    public void Scripts_run_concurrently_from_many_threads_each_see_their_own_keys_and_argv()
    {
        using var host = new LuaScriptHost(new ScriptLimits());
        var redis = new FakeRedis();
        const int Threads = 8;
        const int RunsPerThread = 200;
        string sha1 = host.Load("redis.call('incr', 'total') local mine = redis.call('incr', KEYS[1]) return {KEYS[1], ARGV[1], mine}");
        var failures = new List<string>();
        using var start = new Barrier(Threads);

        Thread[] threads = [.. Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            string key = "thread:" + t.ToString(CultureInfo.InvariantCulture);
            for (int i = 1; i <= RunsPerThread; i++)
            {
                string arg = $"{t}/{i}";
                ScriptValue result = i % 2 == 0
                    ? host.EvalSha(sha1, redis, keys: [key], args: [arg])
                    : host.Eval("redis.call('incr', 'total') local mine = redis.call('incr', KEYS[1]) return {KEYS[1], ARGV[1], mine}", redis, keys: [key], args: [arg]);
                if (!result.Equals(A(B(key), B(arg), I(i))))
                {
                    lock (failures)
                    {
                        failures.Add($"{key} run {i}: {result}");
                    }
                }
            }
        }))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        Assert.Empty(failures);
        Assert.Equal((Threads * RunsPerThread).ToString(CultureInfo.InvariantCulture), redis.GetString("total"));
        Assert.InRange(host.StatesCreated, 1, Threads);
    }

    [Fact]
    public void A_script_hitting_the_time_limit_does_not_disturb_scripts_on_other_threads()
    {
        using var host = new LuaScriptHost(new ScriptLimits { MaxDuration = TimeSpan.FromMilliseconds(300) });
        var redis = new FakeRedis();
        ScriptValue? looping = null;
        var looper = new Thread(() => looping = host.Eval("while true do end"));
        looper.Start();

        int completed = 0;
        while (looper.IsAlive)
        {
            Assert.Equal(I(completed + 1), host.Eval("return redis.call('incr', 'n')", redis));
            completed++;
        }

        looper.Join();
        Assert.StartsWith("ERR Script exceeded the time limit", ErrorText(looping!), StringComparison.Ordinal);
        Assert.True(completed > 0);
    }

    [Fact]
    public void Flush_while_other_threads_run_scripts_leaves_every_run_correct()
    {
        using var host = new LuaScriptHost(new ScriptLimits());
        using var stop = new CancellationTokenSource();
        var errors = new List<string>();
        Thread[] runners = [.. Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                string script = $"return {t} * 1000 + {i % 50}";
                ScriptValue result = host.Eval(script);
                if (!result.Equals(I((t * 1000) + (i % 50))))
                {
                    lock (errors)
                    {
                        errors.Add(result.ToString());
                    }
                }
            }
        }))];
        foreach (Thread runner in runners)
        {
            runner.Start();
        }

        for (int i = 0; i < 50; i++)
        {
            host.Flush();
            Thread.Sleep(2);
        }

        stop.Cancel();
        foreach (Thread runner in runners)
        {
            runner.Join();
        }

        Assert.Empty(errors);
    }
}
