using System.Diagnostics;
using Bitcask.Cluster.Tests.Infrastructure;
using Bitcask.Testing.Linearizability;
using Xunit.Abstractions;

namespace Bitcask.Cluster.Tests;

/// <summary>
/// Issue 13's fault tests on real processes: 3 'bitcask serve --cluster-id' nodes on 127.0.0.1 with a
/// <see cref="LinkProxy"/> between them, a recorded 6-client history while the test kills -9 the leader and restarts
/// it, kills -9 a follower and restarts it, and partitions a node and heals it; then the history (plus a final read of
/// every key on every node) must be linearizable, no acknowledged write lost, and every node's content digest equal.
/// BITCASK_SOAK=&lt;seconds&gt; repeats the fault round for that long.
/// </summary>
public class ClusterFaultTests(ITestOutputHelper output)
{
    [Fact]
    public void A_history_across_leader_and_follower_kill_9_restarts_and_a_partition_is_linearizable_loses_no_acknowledged_write_and_converges()
    {
        using var cluster = new ClusterHarness("faults", output, 3, "--operation-timeout", "2");
        var seed = Environment.TickCount;
        var random = new Random(seed);
        try
        {
            cluster.StartAll();
            var leader = cluster.WaitForLeader();
            cluster.Log($"leader: node {leader}");
            using var workload = new RegisterWorkload(cluster.RespPorts, clients: 6, keys: 8, prefix: "", seed, TimeSpan.FromSeconds(10));
            workload.Start();
            var soak = TestEnvironment.Soak;
            var clock = Stopwatch.StartNew();
            var rounds = 0;
            do
            {
                rounds++;
                Thread.Sleep(random.Next(500, 1000));
                // kill -9 the leader, let the others elect a new one under load, restart it
                leader = cluster.WaitForLeader();
                cluster.Kill9(leader);
                var next = cluster.WaitForLeader(not: leader);
                cluster.Log($"new leader: node {next}");
                Thread.Sleep(random.Next(200, 800));
                cluster.Start(leader);

                // kill -9 a follower, restart it
                Thread.Sleep(random.Next(300, 800));
                leader = cluster.WaitForLeader();
                var follower = (leader + 1 + random.Next(2)) % 3;
                cluster.Kill9(follower);
                Thread.Sleep(random.Next(300, 1000));
                cluster.Start(follower);

                // partition a node (the leader on odd rounds, a follower on even ones) from both others, then heal
                Thread.Sleep(random.Next(300, 800));
                leader = cluster.WaitForLeader();
                var isolated = rounds % 2 == 1 ? leader : (leader + 1) % 3;
                cluster.Proxy.Isolate(isolated);
                cluster.Log($"node {isolated} isolated ({(isolated == leader ? "the leader" : "a follower")})");
                if (isolated == leader)
                {
                    var other = cluster.WaitForLeader(not: isolated);
                    cluster.Log($"the majority elected node {other}");
                }
                Thread.Sleep(random.Next(1000, 2000));
                cluster.Proxy.HealAll();
                cluster.Log("healed");
            }
            while (rounds < 2 || (soak is { } s && clock.Elapsed < s)); // 2 rounds: the leader, then a follower partitioned
            Thread.Sleep(1000);
            var history = workload.Stop();
            cluster.Log($"workload stopped after {rounds} fault rounds: {RegisterWorkload.Describe(history, workload.Errors)}; proxy {cluster.Proxy.Counters}");

            var digest = cluster.WaitForConvergence();
            for (var node = 0; node < 3; node++) workload.AppendFinalReads(history, cluster.Nodes[node].RespPort, client: 100 + node);
            var watch = Stopwatch.StartNew();
            var result = LinearizabilityChecker.Check(history, maxStepsPerKey: 5_000_000);
            cluster.Log($"seed {seed}: {result.States} states searched in {watch.ElapsedMilliseconds} ms: {result.Explanation}");
            Assert.True(history.Count(o => !o.OutcomeUnknown && o.Kind != RegisterOpKind.Get) > 50, "the workload made too little progress");
            Assert.False(result.Inconclusive, result.Explanation);
            Assert.True(result.Linearizable, $"seed {seed}: {result.Explanation}");

            // Every acknowledged journal write is in every node's own store (stale local reads after convergence).
            Assert.True(workload.Journal.Count > 10, $"only {workload.Journal.Count} journal writes were acknowledged");
            for (var node = 0; node < 3; node++)
            {
                using var client = RespConnection.Open(cluster.Nodes[node].RespPort);
                Assert.Equal(new RespSimple("OK"), client.Call("READONLY"));
                foreach (var (key, value) in workload.Journal)
                {
                    var actual = client.Call("GET", key);
                    Assert.True(value == actual as string, $"node {node}: acknowledged write of {key} lost: expected {value}, found {actual ?? "(nil)"}");
                }
            }
            cluster.Log($"{workload.Journal.Count} acknowledged journal writes on all 3 nodes; digest {digest}");
        }
        catch
        {
            output.WriteLine($"proxy (unidentified, held): {cluster.Proxy.Counters}");
            output.WriteLine(cluster.RecentOutput());
            throw;
        }
    }

    /// <summary>A node down through several snapshots catches up by snapshot install. This case and the next found a
    /// replication bug (1 of 4 runs direct, 1–2 of 3 through the proxy, on the loaded 2-core machine): the install is
    /// one Raft request, which DotNext cuts at its request timeout (the lower election timeout; it cannot be longer,
    /// as DotNext's candidate waits for every vote within its election timeout), and the store used to be copied into
    /// place and opened inside it. An install that outlasted it was restarted forever and the follower stayed at the
    /// snapshot index. Now the request ends once the snapshot is received and the store is replaced right after
    /// (<c>ReplicationTests.A_snapshot_install_whose_store_replacement_outlasts_the_raft_request_timeout_still_catches_the_node_up</c>
    /// makes the replacement slow on purpose).</summary>
    [Fact]
    public void A_node_down_through_several_snapshots_catches_up_by_snapshot_install_and_converges() => SnapshotCatchUp(useProxy: false);

    /// <summary>The same through the partition proxy (no blackhole), whose forwarding makes a link a little slower.</summary>
    [Fact]
    public void A_node_whose_snapshot_install_the_leader_timed_out_on_still_catches_up() => SnapshotCatchUp(useProxy: true);

    private void SnapshotCatchUp(bool useProxy)
    {
        using var cluster = new ClusterHarness("snapshots", output, 3, useProxy, "--snapshot-interval", "25");
        try
        {
            cluster.StartAll();
            var leader = cluster.WaitForLeader();
            Write(cluster, leader, "before", 40);
            var lagging = (leader + 1) % 3;
            var appliedBefore = long.Parse(cluster.Status(lagging)["applied_index"], System.Globalization.CultureInfo.InvariantCulture);
            cluster.Kill9(lagging);
            leader = cluster.WaitForLeader();
            Write(cluster, leader, "during", 300);
            var leaderStatus = cluster.Status(leader);
            var snapshotIndex = long.Parse(leaderStatus["snapshot_index"], System.Globalization.CultureInfo.InvariantCulture);
            cluster.Log($"node {lagging} stopped at applied index {appliedBefore}; leader {leader}: {string.Join(", ", leaderStatus.Select(p => $"{p.Key}={p.Value}"))}");
            Assert.True(snapshotIndex > appliedBefore + 100, $"the leader's snapshot index {snapshotIndex} is not well past the lagging node's {appliedBefore}");

            cluster.Start(lagging);
            cluster.WaitForConvergence();
            var caughtUp = cluster.Status(lagging);
            cluster.Log($"node {lagging} after catching up: {string.Join(", ", caughtUp.Select(p => $"{p.Key}={p.Value}"))}");
            Assert.True(long.Parse(caughtUp["snapshot_index"], System.Globalization.CultureInfo.InvariantCulture) >= snapshotIndex,
                "the caught-up node has no snapshot at or past the leader's");
            ReadBack(cluster, lagging, "before", 40);
            ReadBack(cluster, lagging, "during", 300);
        }
        catch
        {
            output.WriteLine(cluster.RecentOutput());
            throw;
        }
    }

    [Fact]
    public void A_node_whose_directory_was_wiped_rejoins_and_converges()
    {
        using var cluster = new ClusterHarness("wiped", output, 3, useProxy: false);
        try
        {
            cluster.StartAll();
            var leader = cluster.WaitForLeader();
            Write(cluster, leader, "before", 100);
            var wiped = (leader + 2) % 3;
            cluster.Kill9(wiped);
            cluster.Wipe(wiped);
            Write(cluster, cluster.WaitForLeader(), "during", 50);
            cluster.Start(wiped);
            cluster.WaitForConvergence();
            ReadBack(cluster, wiped, "before", 100);
            ReadBack(cluster, wiped, "during", 50);
            // and it is a full member again: the cluster survives losing another node
            leader = cluster.WaitForLeader();
            var other = Enumerable.Range(0, 3).First(i => i != leader && i != wiped);
            cluster.Kill9(other);
            Write(cluster, cluster.WaitForLeader(), "after", 20);
            cluster.WaitForConvergence(); // committed on the two left; READONLY reads see what a node has applied
            ReadBack(cluster, wiped, "after", 20);
        }
        catch
        {
            output.WriteLine(cluster.RecentOutput());
            throw;
        }
    }

    /// <summary>Pipelined SETs of prefix:i = value-i through node <paramref name="node"/>, each acknowledged +OK; a SET
    /// answered -TRYAGAIN or -CLUSTERDOWN (leadership moved: a loaded machine can miss a heartbeat) is sent again, for up
    /// to 30 s (the same value again: idempotent).</summary>
    internal static void Write(ClusterHarness cluster, int node, string prefix, int count)
    {
        var port = cluster.Nodes[node].RespPort;
        var again = new List<int>();
        using (var client = RespConnection.Open(port, TimeSpan.FromSeconds(20)))
        {
            const int window = 50;
            for (var start = 0; start < count; start += window)
            {
                var n = Math.Min(window, count - start);
                var batch = new MemoryStream();
                for (var i = start; i < start + n; i++) batch.Write(RespConnection.Encode("SET", $"{prefix}:{i}", $"value-{i}"));
                client.SendRaw(batch.ToArray());
                for (var i = start; i < start + n; i++)
                {
                    var reply = client.Read();
                    if (reply is RespError { Message: var m } && (m.StartsWith("TRYAGAIN", StringComparison.Ordinal) || m.StartsWith("CLUSTERDOWN", StringComparison.Ordinal))) again.Add(i);
                    else Assert.True(reply is RespSimple { Text: "OK" }, $"SET {prefix}:{i} through node {node} answered {reply}");
                }
            }
        }
        var clock = Stopwatch.StartNew();
        foreach (var i in again)
        {
            while (true)
            {
                object? reply;
                try
                {
                    using var client = RespConnection.Open(port, TimeSpan.FromSeconds(10));
                    reply = client.Call("SET", $"{prefix}:{i}", $"value-{i}");
                }
                catch (IOException e)
                {
                    reply = e.Message;
                }
                if (reply is RespSimple { Text: "OK" }) break;
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"SET {prefix}:{i} through node {node} still fails after 30 s: {reply}");
                Thread.Sleep(100);
            }
        }
        if (again.Count > 0) cluster.Log($"{again.Count} SETs of {prefix} answered TRYAGAIN/CLUSTERDOWN and were sent again");
    }

    /// <summary>Every prefix:i on node <paramref name="node"/> itself (READONLY: its own store).</summary>
    internal static void ReadBack(ClusterHarness cluster, int node, string prefix, int count)
    {
        using var client = RespConnection.Open(cluster.Nodes[node].RespPort);
        Assert.Equal(new RespSimple("OK"), client.Call("READONLY"));
        for (var i = 0; i < count; i++)
            Assert.Equal($"value-{i}", client.Call("GET", $"{prefix}:{i}"));
    }
}
