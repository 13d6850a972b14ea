using System.Net;
using StackExchange.Redis;

namespace Bitcask.Replication.Tests;

/// <summary><c>bitcask serve</c> on a Raft cluster, seen through RESP: three in-process nodes, each with its RESP
/// server (README, "Cluster"; the contract in the cluster section).</summary>
public sealed class RespClusterTests
{
    private static long Applied(RespCluster c, int i) => c.Raft.Node(i).Status.AppliedIndex;

    private static async Task WaitAllApplied(RespCluster c)
    {
        await Cluster.Eventually(() =>
        {
            var commit = c.Raft.Node(c.Raft.Leader()).Status.CommitIndex;
            return c.Raft.Running.All(i => Applied(c, i) == commit);
        }, "every node to apply the leader's commit index");
    }

    [Fact]
    public async Task INCR_through_RESP_is_not_applied_twice_across_a_restart()
    {
        await using var c = await RespCluster.StartAsync();
        var follower = c.Raft.Follower();
        using (var conn = c.Connect(follower))
            for (var i = 1; i <= 5; i++)
                Assert.Equal((long)i, conn.Ok("INCR", "hits"));
        await WaitAllApplied(c);
        foreach (var i in c.Raft.Running.ToArray()) await c.StopNodeAsync(i); // the whole cluster goes down
        await Task.WhenAll(Enumerable.Range(0, 3).Select(c.StartNodeAsync));  // and comes back: the log replays
        await c.Raft.WaitForLeaderAsync();
        for (var i = 0; i < 3; i++)
        {
            using var conn = c.Connect(i);
            Assert.Equal("5", conn.Ok("GET", "hits"));
        }
        using (var conn = c.Connect(c.Raft.Follower()))
            Assert.Equal(6L, conn.Ok("INCR", "hits"));
    }

    [Fact]
    public async Task EXEC_and_EVAL_each_commit_as_one_log_entry()
    {
        await using var c = await RespCluster.StartAsync();
        var leader = c.Raft.Leader();
        using var conn = c.Connect(c.Raft.Follower());
        conn.Ok("SET", "warm", "up");
        await WaitAllApplied(c);
        var before = c.Raft.Node(leader).Status.CommitIndex;
        conn.Ok("MULTI");
        conn.Ok("SET", "a", "1");
        conn.Ok("INCR", "b");
        conn.Ok("HSET", "h", "f", "v");
        var exec = (List<object?>)conn.Ok("EXEC")!;
        Assert.Equal(["OK", 1L, 1L], exec);
        Assert.Equal(before + 1, c.Raft.Node(leader).Status.CommitIndex);
        var eval = conn.Ok("EVAL", "redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCRBY', KEYS[2], 10); return redis.call('GET', KEYS[2])", "2", "x", "b", "y");
        Assert.Equal("11", eval);
        Assert.Equal(before + 2, c.Raft.Node(leader).Status.CommitIndex);
        await WaitAllApplied(c);
        foreach (var i in c.Raft.Running)
            Assert.Equal("y", c.Raft.Node(i).GetStaleString("x"));
    }

    [Fact]
    public async Task SET_EX_expires_identically_on_every_node_through_a_replicated_delete()
    {
        await using var c = await RespCluster.StartAsync();
        using var conn = c.Connect(c.Raft.Follower());
        conn.Ok("SET", "keep", "1");
        conn.Ok("SET", "short", "v", "PX", "2500");
        conn.Ok("SET", "long", "v", "EX", "3600");
        var ttl = (long)conn.Ok("TTL", "long")!;
        Assert.InRange(ttl, 3590, 3600);
        // Every node stores the same absolute expiry (the proposer's), so the digests agree while it is pending...
        await WaitAllApplied(c);
        var pending = c.Raft.Running.Select(i => c.Raft.Node(i).ComputeDigest()).Distinct().ToArray();
        Assert.Single(pending);
        var indexBefore = Applied(c, c.Raft.Leader());
        Assert.Contains("short", ((List<object?>)conn.Ok("KEYS", "*")!).Cast<string>());
        // ...and the expiry is a log entry the leader proposes: every node deletes the key at the same index.
        await Cluster.Eventually(() => c.Raft.Running.All(i => !c.Raft.Node(i).ReadLocal(s => s.ContainsKey("short"u8))), "short to be deleted everywhere");
        await WaitAllApplied(c);
        Assert.True(Applied(c, c.Raft.Leader()) > indexBefore);
        var after = c.Raft.Running.Select(i => c.Raft.Node(i).ComputeDigest()).Distinct().ToArray();
        Assert.Single(after);
        Assert.NotEqual(pending[0].Digest, after[0].Digest);
        for (var i = 0; i < 3; i++)
        {
            using var each = c.Connect(i);
            Assert.Null(each.Ok("GET", "short"));
            Assert.DoesNotContain("short", ((List<object?>)each.Ok("KEYS", "*")!).Cast<string>());
            Assert.Equal("1", each.Ok("GET", "keep"));
            var digest = each.Map("BITCASK.RAFT", "DIGEST");
            Assert.Equal(after[0].Digest, digest["digest"]);
        }
    }

    [Fact]
    public async Task READONLY_reads_a_lagging_follower_as_it_is_and_READWRITE_reads_wait_for_it()
    {
        await using var c = await RespCluster.StartAsync(operationTimeout: TimeSpan.FromSeconds(2));
        var leader = c.Raft.Leader();
        var follower = c.Raft.Follower();
        using (var w = c.Connect(leader)) w.Ok("SET", "k", "old");
        await WaitAllApplied(c);
        var release = new TaskCompletionSource();
        c.Raft.Node(follower).Machine.BeforeApply = async (_, token) => await release.Task.WaitAsync(token);
        using (var w = c.Connect(leader)) w.Ok("SET", "k", "new"); // commits on the leader and the other follower
        using var conn = c.Connect(follower);
        Assert.Equal("OK", conn.Ok("READONLY"));
        Assert.Equal("old", conn.Ok("GET", "k")); // stale, at once
        Assert.Equal("OK", conn.Ok("READWRITE"));
        var blocked = conn.Call("GET", "k"); // linearizable: waits for the follower to apply "new", which it cannot
        Assert.StartsWith("CLUSTERDOWN", Assert.IsType<RespConnection.RespError>(blocked).Message);
        c.Raft.Node(follower).Machine.BeforeApply = null;
        release.SetResult();
        Assert.Equal("new", conn.Ok("GET", "k"));
    }

    [Fact]
    public async Task A_write_sent_to_a_follower_is_forwarded_and_answered_normally()
    {
        await using var c = await RespCluster.StartAsync();
        var follower = c.Raft.Follower();
        using var conn = c.Connect(follower);
        Assert.Equal("OK", conn.Ok("SET", "fwd", "yes"));
        Assert.Equal(1L, conn.Ok("SETNX", "once", "1"));
        Assert.Equal(0L, conn.Ok("SETNX", "once", "2"));
        Assert.Equal("yes", c.Raft.Node(c.Raft.Leader()).GetStaleString("fwd")); // committed through the leader
        Assert.Equal("yes", conn.Ok("GET", "fwd")); // read-your-writes on the follower
        // The replication layer's own keys ("\0raft:applied") are not the clients'.
        Assert.Equal(2L, conn.Ok("DBSIZE"));
        Assert.Equal(["fwd", "once"], ((List<object?>)conn.Ok("KEYS", "*")!).Cast<string>().Order());
        Assert.IsType<RespConnection.RespError>(conn.Call("GET", "\0raft:applied"));
    }

    [Fact]
    public async Task A_write_without_a_majority_gets_CLUSTERDOWN()
    {
        await using var c = await RespCluster.StartAsync(operationTimeout: TimeSpan.FromSeconds(2));
        var survivor = c.Raft.Follower();
        foreach (var i in c.Raft.Running.Where(i => i != survivor).ToArray()) await c.StopNodeAsync(i);
        using var conn = c.Connect(survivor);
        var reply = conn.Call("SET", "k", "v");
        Assert.Matches("^(CLUSTERDOWN|TRYAGAIN) ", Assert.IsType<RespConnection.RespError>(reply).Message);
        Assert.StartsWith("CLUSTERDOWN", Assert.IsType<RespConnection.RespError>(conn.Call("GET", "k")).Message);
        Assert.Equal("OK", conn.Ok("READONLY"));
        Assert.Null(conn.Ok("GET", "k")); // a stale read still answers
    }

    [Fact]
    public async Task INFO_replication_and_ROLE_show_the_leader_as_master_and_the_others_as_its_slaves()
    {
        await using var c = await RespCluster.StartAsync();
        await c.WaitForAddressesAsync();
        var leader = c.Raft.Leader();
        using (var conn = c.Connect(leader))
        {
            var info = (string)conn.Ok("INFO", "replication")!;
            Assert.Contains("role:master\r\n", info);
            Assert.Contains("connected_slaves:2\r\n", info);
            Assert.Contains("cluster_id:test\r\n", info);
            Assert.Contains($"raft_node:{c.Raft.EndPoints[leader]}\r\n", info);
            Assert.Contains($"raft_leader:{c.Raft.EndPoints[leader]}\r\n", info);
            foreach (var field in new[] { "raft_term:", "raft_commit_index:", "raft_applied_index:", "raft_snapshot_index:" })
                Assert.Contains(field, info);
            var role = (List<object?>)conn.Ok("ROLE")!;
            Assert.Equal("master", role[0]);
            Assert.Equal(2, ((List<object?>)role[2]!).Count);
            Assert.StartsWith("ERR This instance has cluster support disabled", Assert.IsType<RespConnection.RespError>(conn.Call("CLUSTER", "INFO")).Message);
        }
        foreach (var follower in c.Raft.Running.Where(i => i != leader))
        {
            using var conn = c.Connect(follower);
            var info = (string)conn.Ok("INFO", "replication")!;
            Assert.Contains("role:slave\r\n", info);
            Assert.Contains("master_host:127.0.0.1\r\n", info);
            Assert.Contains($"master_port:{c.Ports[leader]}\r\n", info);
            Assert.Contains("master_link_status:up\r\n", info);
            var role = (List<object?>)conn.Ok("ROLE")!;
            Assert.Equal(["slave", "127.0.0.1", (long)c.Ports[leader], "connected"], role.Take(4));
            var status = conn.Map("BITCASK.RAFT", "STATUS");
            Assert.Equal("follower", status["role"]);
            Assert.Equal(c.Raft.EndPoints[leader].ToString(), status["leader"]);
            Assert.Equal(3, ((List<object?>)status["members"]!).Count);
        }
    }

    [Fact]
    public async Task A_StackExchange_Redis_multiplexer_finds_the_new_master_after_the_leader_stops()
    {
        await using var c = await RespCluster.StartAsync();
        await c.WaitForAddressesAsync();
        var config = new ConfigurationOptions { AbortOnConnectFail = false, ConnectTimeout = 5000, SyncTimeout = 10000, ConfigCheckSeconds = 1 };
        foreach (var port in c.Ports) config.EndPoints.Add(IPAddress.Loopback, port);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(config);
        var db = redis.GetDatabase();
        Assert.True(await db.StringSetAsync("before", "1"));
        var oldLeader = c.Raft.Leader();
        var master = redis.GetServers().Single(s => !s.IsReplica);
        Assert.Equal(c.Ports[oldLeader], ((IPEndPoint)master.EndPoint).Port);
        await c.StopNodeAsync(oldLeader);
        var newLeader = await c.Raft.WaitForLeaderAsync();
        await c.WaitForAddressesAsync();
        var until = DateTime.UtcNow + Cluster.Patience;
        while (true)
        {
            try
            {
                if (await db.StringSetAsync("after", "2")) break;
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                if (DateTime.UtcNow > until) throw;
                await Task.Delay(200);
            }
        }
        Assert.Equal(c.Ports[newLeader], ((IPEndPoint)redis.GetServers().Single(s => s.IsConnected && !s.IsReplica).EndPoint).Port);
        Assert.Equal("1", await db.StringGetAsync("before"));
        Assert.Equal("2", c.Raft.Node(newLeader).GetStaleString("after"));
    }
}
