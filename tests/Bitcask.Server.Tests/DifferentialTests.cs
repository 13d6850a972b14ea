using Bitcask.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.Server.Tests;

/// <summary>
/// The same seeded random command sequences go to this server and to a real redis-server 7; every reply must be equal
/// (TTLs compared as "has one"/"has none"/"no key", since the clocks of the two runs differ by milliseconds).
/// </summary>
public class DifferentialTests(ITestOutputHelper output)
{
    private static readonly string[] KeyNames = ["a", "b", "c", "n", "h", "g"];
    private static readonly string[] Fields = ["f1", "f2", "f3"];

    private static object[] RandomCommand(Random rng)
    {
        string K() => KeyNames[rng.Next(KeyNames.Length)];
        string F() => Fields[rng.Next(Fields.Length)];
        string V() => rng.Next(4) switch { 0 => rng.Next(-20, 20).ToString(), 1 => "x" + rng.Next(100), 2 => "", _ => "v" + rng.Next(10) + " " + rng.Next(10) };
        string I() => rng.Next(-1000, 1000).ToString();
        return rng.Next(46) switch
        {
            0 or 1 => ["SET", K(), V()],
            2 => ["SET", K(), V(), "NX"],
            3 => ["SET", K(), V(), "XX", "GET"],
            4 => ["SET", K(), V(), "EX", "1000"],
            5 => ["SET", K(), V(), "KEEPTTL"],
            6 or 7 => ["GET", K()],
            8 => ["DEL", K(), K()],
            9 => ["EXISTS", K(), K(), K()],
            10 => ["INCR", K()],
            11 => ["INCRBY", K(), I()],
            12 => ["DECRBY", K(), I()],
            13 => ["APPEND", K(), V()],
            14 => ["STRLEN", K()],
            15 => ["GETSET", K(), V()],
            16 => ["GETDEL", K()],
            17 => ["MSET", K(), V(), K(), V()],
            18 => ["MGET", K(), K(), K()],
            19 => ["MSETNX", K(), V(), K(), V()],
            20 => ["SETNX", K(), V()],
            21 or 22 => ["HSET", K(), F(), V()],
            23 => ["HSET", K(), F(), V(), F(), V()],
            24 => ["HGET", K(), F()],
            25 => ["HDEL", K(), F(), F()],
            26 => ["HLEN", K()],
            27 => ["HEXISTS", K(), F()],
            28 => ["HINCRBY", K(), F(), I()],
            29 => ["HMGET", K(), F(), F()],
            30 => ["HSETNX", K(), F(), V()],
            31 => ["HGETALL", K()],
            32 => ["HKEYS", K()],
            33 => ["TYPE", K()],
            34 => ["EXPIRE", K(), "1000"],
            35 => ["PERSIST", K()],
            36 => ["TTL", K()],
            37 => ["RENAME", K(), K()],
            38 => ["INCRBYFLOAT", K(), rng.Next(2) == 0 ? "1.5" : "-0.25"],
            39 => ["GETEX", K(), "PERSIST"],
            40 => ["SET", K(), V(), "PX", "0"],
            41 => ["EXPIRE", K(), "-1"],
            42 => ["HVALS", K()],
            43 => ["SETEX", K(), "1000", V()],
            44 => ["PTTL", K()],
            _ => ["RENAMENX", K(), K()],
        };
    }

    private static object? Normalize(object[] command, object? reply, List<object[]> queued)
    {
        if (command[0] is "TTL" or "PTTL" && reply is long n && n > 0) return "positive";
        if (command[0] is "EXEC" && reply is List<object?> items && items.Count == queued.Count)
            return items.Select((item, i) => Normalize(queued[i], item, [])).ToList();
        return reply;
    }

    [NeedsProgramFact("redis-server")]
    public Task Seeded_random_command_sequences_get_the_same_replies_as_redis_server() => Compare(protocol: 2);

    [NeedsProgramFact("redis-server")]
    public Task Seeded_random_command_sequences_get_the_same_resp3_replies_as_redis_server() => Compare(protocol: 3);

    private async Task Compare(int protocol)
    {
        using var redis = RedisServerProcess.Start("--appendonly", "no");
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { AllowFlush = true });
        using var ours = host.Connect();
        using var theirs = RespConnection.Open(redis.Port);
        if (protocol == 3)
        {
            Assert.IsType<RespMap>(ours.Call("HELLO", "3"));
            Assert.IsType<RespMap>(theirs.Call("HELLO", "3"));
        }
        var compared = 0;
        for (var seed = 1; seed <= 30; seed++)
        {
            Assert.Equal(theirs.Call("FLUSHALL"), ours.Call("FLUSHALL"));
            var rng = new Random(seed);
            var history = new List<string>();
            for (var step = 0; step < 150; step++)
            {
                var inTransaction = rng.Next(15) == 0;
                var commands = inTransaction ? [["MULTI"], .. Enumerable.Range(0, rng.Next(1, 5)).Select(_ => RandomCommand(rng)), ["EXEC"]] : new List<object[]> { RandomCommand(rng) };
                foreach (var command in commands)
                {
                    history.Add(string.Join(' ', command.Select(a => $"'{a}'")));
                    var queued = commands.Skip(1).SkipLast(1).ToList();
                    var expected = Normalize(command, theirs.Call(command), queued);
                    var actual = Normalize(command, ours.Call(command), queued);
                    if (!Equivalent(expected, actual))
                    {
                        output.WriteLine($"seed {seed}, step {step}:");
                        foreach (var line in history.TakeLast(20)) output.WriteLine("  " + line);
                        Assert.Fail($"seed {seed} step {step}: {string.Join(' ', command)} → redis {Show(expected)}, bitcask {Show(actual)}");
                    }
                    compared++;
                }
            }
        }
        output.WriteLine($"{compared} replies compared");
    }

    private static bool Equivalent(object? a, object? b) => (a, b) switch
    {
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equivalent(p.First, p.Second)),
        (RespMap x, RespMap y) => x.Pairs.Count == y.Pairs.Count && x.Pairs.Zip(y.Pairs).All(p => Equivalent(p.First.Key, p.Second.Key) && Equivalent(p.First.Value, p.Second.Value)),
        _ => Equals(a, b),
    };

    private static string Show(object? reply) => reply switch
    {
        null => "(nil)",
        List<object?> list => "[" + string.Join(", ", list.Select(Show)) + "]",
        RespMap map => "{" + string.Join(", ", map.Pairs.Select(p => Show(p.Key) + ": " + Show(p.Value))) + "}",
        string s => $"\"{s}\"",
        _ => reply.ToString()!,
    };
}
