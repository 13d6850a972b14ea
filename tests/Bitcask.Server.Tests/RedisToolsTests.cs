using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>Redis's own command-line tools (Debian redis-tools, installed by .ci/run) against the server.</summary>
public class RedisToolsTests
{
    [NeedsProgramFact("redis-cli")]
    public async Task A_scripted_redis_cli_session_gets_redis_replies()
    {
        var cli = Tools.Find("redis-cli")!;
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        const string script = """
            PING
            SET greeting "hello world"
            GET greeting
            APPEND greeting !
            STRLEN greeting
            INCRBY counter 41
            INCR counter
            INCRBYFLOAT f 1.5
            SET tmp v EX 100
            TTL tmp
            HSET user:1 name ada lang en
            HGET user:1 name
            HGETALL user:1
            EXISTS greeting counter nope
            TYPE user:1
            GET user:1
            DEL tmp nope
            DBSIZE
            NOSUCHCOMMAND x
            SELECT 1
            PING
            """;
        var (exit, output, error) = Tools.Run(cli, ["-p", host.Port.ToString(), "--no-raw"], script);
        Assert.True(exit == 0, error);
        var expected = """
            PONG
            OK
            "hello world"
            (integer) 12
            (integer) 12
            (integer) 41
            (integer) 42
            "1.5"
            OK
            (integer) 100
            (integer) 2
            "ada"
            1) "name"
            2) "ada"
            3) "lang"
            4) "en"
            (integer) 2
            hash
            (error) WRONGTYPE Operation against a key holding the wrong kind of value
            (integer) 1
            (integer) 4
            (error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' 
            (error) ERR DB index is out of range
            PONG
            """;
        // redis-cli prints "(0.58s)" after a reply that took over half a second (a loaded machine): not a reply
        var replies = string.Join("\n", output.ReplaceLineEndings("\n").Trim().Split('\n')
            .Where(line => !System.Text.RegularExpressions.Regex.IsMatch(line, @"^\(\d+\.\d+s\)$")));
        Assert.Equal(expected.ReplaceLineEndings("\n").Trim(), replies);
        Assert.Equal("hello world!"u8.ToArray(), host.Store.Get("greeting"u8)); // and it is in the store
    }

    [NeedsProgramFact("redis-benchmark")]
    public async Task Redis_benchmark_runs_ping_set_get_incr_hset_mset_without_errors()
    {
        var benchmark = Tools.Find("redis-benchmark")!;
        foreach (var durability in new[] { Durability.Synced, Durability.Flushed })
        {
            await using var host = await ServerHost.StartAsync(durability: durability);
            foreach (var pipeline in new[] { "1", "16" })
            {
                var (exit, output, error) = Tools.Run(benchmark,
                    ["-p", host.Port.ToString(), "-t", "ping,set,get,incr,hset,mset", "-n", "2000", "-c", "20", "-P", pipeline, "-d", "100", "-q", "--csv"]);
                Assert.True(exit == 0, $"redis-benchmark exited {exit}: {error}");
                Assert.DoesNotContain("error", (output + error).ToLowerInvariant());
                foreach (var test in new[] { "PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "HSET", "MSET (10 keys)" })
                    Assert.Contains($"\"{test}\"", output);
            }
            Assert.NotNull(host.Store.Get("key:__rand_int__"u8)); // SET's key, written through the server
            using var raw = host.Connect();
            Assert.Equal(2L * 2000, long.Parse((string)raw.Call("GET", "counter:__rand_int__")!)); // every INCR applied once
        }
    }
}
