using System.Buffers.Binary;
using System.Text;
using Bitcask.Replication;

namespace Bitcask.Replication.Tests;

public sealed class ReplicationTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task A_write_on_the_leader_is_readable_linearizably_on_every_node()
    {
        await using var c = await Cluster.StartAsync();
        var leader = c.Node(c.Leader());
        await leader.PutAsync("greeting", "hello");
        foreach (var i in c.Running)
            Assert.Equal("hello", await c.Node(i).GetStringAsync("greeting"));
        var status = leader.Status;
        Assert.Equal(ReplicaRole.Leader, status.Role);
        Assert.True(status.AppliedIndex >= 1 && status.CommitIndex >= status.AppliedIndex - 0);
        Assert.Equal(3, status.Members.Count);
    }

    [Fact]
    public async Task Writes_sent_to_a_follower_are_forwarded_and_return_their_results()
    {
        await using var c = await Cluster.StartAsync();
        var follower = c.Node(c.Follower());
        Assert.False(follower.IsLeader);
        await follower.PutAsync("k", "v1");
        Assert.Equal(ReplicaRole.Follower, follower.Status.Role);
        Assert.Equal("v1", follower.GetStaleString("k")); // applied locally before the write returned
        Assert.Equal(5, await follower.IncrementAsync("n", 5));
        Assert.Equal(3, await follower.IncrementAsync("n", -2));
        var info = await follower.GetInfoAsync(B("k"));
        Assert.NotNull(info);
        Assert.False(await follower.CompareAndSetAsync(B("k"), info.Value.Version + 100, B("nope")));
        Assert.True(await follower.CompareAndSetAsync(B("k"), info.Value.Version, B("v2")));
        Assert.False(await follower.PutIfAbsentAsync(B("k"), B("v3")));
        await Assert.ThrowsAsync<ReplicatedCommandException>(() => follower.IncrementAsync("k"));
        Assert.True(await follower.DeleteAsync("n"));
        Assert.False(await follower.DeleteAsync("n"));
        Assert.False(await follower.WriteAsync(new ReplicatedBatch().RequireExists(B("missing")).Put("x", "1")));
        Assert.True(await follower.WriteAsync(new ReplicatedBatch().RequireAbsent(B("missing")).Put("x", "1").Put("y", "2")));
        foreach (var i in c.Running)
        {
            Assert.Equal("v2", await c.Node(i).GetStringAsync("k"));
            Assert.Null(await c.Node(i).GetStringAsync("n"));
            Assert.Equal("2", await c.Node(i).GetStringAsync("y"));
        }
    }

    [Fact]
    public async Task Killing_the_leader_elects_a_new_one_keeps_committed_writes_and_the_old_leader_catches_up()
    {
        await using var c = await Cluster.StartAsync();
        var old = c.Leader();
        for (var i = 0; i < 20; i++)
            await c.Node(old).PutAsync($"before:{i}", i.ToString());
        var oldTerm = c.Node(old).Status.Term;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await c.StopNodeAsync(old);
        var stopped = clock.Elapsed;
        var next = await c.WaitForLeaderAsync();
        await c.Node(next).PutAsync("first-after-failover", "1");
        output.WriteLine($"leader stop took {stopped.TotalMilliseconds:F0} ms; first write through the new leader {(clock.Elapsed - stopped).TotalMilliseconds:F0} ms after it (election timeouts 800-1600 ms)");
        Assert.NotEqual(old, next);
        Assert.True(c.Node(next).Status.Term > oldTerm);
        for (var i = 0; i < 20; i++)
            Assert.Equal(i.ToString(), await c.Node(next).GetStringAsync($"before:{i}"));
        var follower = c.Follower();
        for (var i = 0; i < 20; i++)
            await c.Node(follower).PutAsync($"after:{i}", i.ToString()); // forwarded to the new leader
        await c.StartNodeAsync(old);
        await c.WaitForLeaderAsync();
        Assert.Equal("19", await c.Node(old).GetStringAsync("after:19"));
        Assert.Equal("0", await c.Node(old).GetStringAsync("before:0"));
        await AssertSameContent(c);
    }

    [Fact]
    public async Task A_restarted_node_whose_log_checkpoint_lags_its_store_does_not_apply_an_increment_twice()
    {
        await using var c = await Cluster.StartAsync();
        var follower = c.Follower();
        for (var i = 0; i < 10; i++)
            await c.Node(c.Leader()).IncrementAsync("counter");
        await Cluster.Eventually(() => c.Node(follower).GetStaleString("counter") == "10", "the follower to apply 10 increments");
        await c.StopNodeAsync(follower);
        // A crash after the store recorded the applied entries but before DotNext flushed its commit checkpoint: the
        // log believes nothing is committed and will apply every entry again once the leader says so.
        var checkpoint = Path.Combine(c.LogDir(follower), "wal", "checkpoint");
        Assert.True(File.Exists(checkpoint));
        var zero = new byte[12];
        await File.WriteAllBytesAsync(checkpoint, zero);
        await c.StartNodeAsync(follower);
        await c.Node(c.Leader()).IncrementAsync("counter");
        Assert.Equal("11", await c.Node(follower).GetStringAsync("counter"));
        await AssertSameContent(c);
    }

    [Fact]
    public async Task A_node_that_crashed_between_commit_and_apply_applies_each_entry_exactly_once_after_restart()
    {
        await using var c = await Cluster.StartAsync();
        var follower = c.Follower();
        var leader = c.Leader();
        await c.Node(leader).IncrementAsync("counter");
        await Cluster.Eventually(() => c.Node(follower).GetStaleString("counter") == "1", "the first increment on the follower");
        // The follower's applier stalls: entries reach its log and commit (leader + the other follower) but are not applied.
        var stalled = new TaskCompletionSource();
        c.Node(follower).Machine.BeforeApply = async (_, token) =>
        {
            stalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
        };
        for (var i = 0; i < 5; i++)
            await c.Node(leader).IncrementAsync("counter");
        await stalled.Task.WaitAsync(Cluster.Patience);
        Assert.Equal("1", c.Node(follower).GetStaleString("counter"));
        await c.StopNodeAsync(follower); // "crash": committed, not applied
        await c.StartNodeAsync(follower);
        await c.Node(leader).IncrementAsync("counter");
        Assert.Equal("7", await c.Node(follower).GetStringAsync("counter"));
        await AssertSameContent(c);
    }

    [Fact]
    public async Task A_wiped_node_catches_up_by_snapshot_after_the_log_is_truncated()
    {
        await using var c = await Cluster.StartAsync(snapshotInterval: 20);
        var (leader, wiped) = await WipeAFollowerBehindSnapshotsAsync(c);
        var appliedFromLog = 0;
        var options = c.Options(wiped);
        var node = await ReplicatedStore.StartAsync(options);
        node.Machine.BeforeApply = (_, _) => { Interlocked.Increment(ref appliedFromLog); return ValueTask.CompletedTask; };
        c.Nodes[wiped] = node;
        await AssertCaughtUpFromSnapshotAsync(c.Node(leader), node);
        Assert.True(appliedFromLog < 50, $"{appliedFromLog} entries applied from the log: expected a snapshot install");
        await AssertSameContent(c);
    }

    /// <summary>A write through the leader reaches <paramref name="node"/>, which holds the keys written before it was
    /// wiped (k000..k099) and a snapshot past them.</summary>
    private static async Task AssertCaughtUpFromSnapshotAsync(ReplicatedStore leader, ReplicatedStore node)
    {
        await leader.PutAsync("last", "x");
        Assert.Equal("x", await node.GetStringAsync("last"));
        Assert.Equal("v0", node.GetStaleString("k000"));
        Assert.Equal("v99", node.GetStaleString("k099"));
        Assert.True(node.Status.SnapshotIndex >= 80, $"snapshot index {node.Status.SnapshotIndex}");
    }

    [Fact]
    public async Task A_snapshot_install_whose_store_replacement_outlasts_the_raft_request_timeout_still_catches_the_node_up()
    {
        // The install is one Raft request, cut at DotNext's request timeout (the lower election timeout, 300 ms here).
        // Before the fix the store was copied into place and opened inside that request: a replacement slower than the
        // timeout was abandoned by the leader and started again, forever, and the node never caught up.
        await using var c = await Cluster.StartAsync(snapshotInterval: 20);
        var (leader, wiped) = await WipeAFollowerBehindSnapshotsAsync(c);
        StoreStateMachine.SlowStoreReplaceForTests = TimeSpan.FromSeconds(1.5);
        try
        {
            var node = await ReplicatedStore.StartAsync(c.Options(wiped));
            c.Nodes[wiped] = node;
            await AssertCaughtUpFromSnapshotAsync(c.Node(leader), node);
            await AssertSameContent(c);
        }
        finally
        {
            StoreStateMachine.SlowStoreReplaceForTests = null;
        }
    }

    /// <summary>Stops a follower, writes k000..k099 (several snapshots at interval 20; the log is truncated below the
    /// newest) and deletes the follower's store and log: it can only catch up by snapshot install.</summary>
    private static async Task<(int Leader, int Wiped)> WipeAFollowerBehindSnapshotsAsync(Cluster c)
    {
        var leader = c.Leader();
        var wiped = c.Follower();
        await c.StopNodeAsync(wiped);
        for (var i = 0; i < 100; i++)
            await c.Node(leader).PutAsync($"k{i:D3}", $"v{i}");
        Assert.True(c.Node(leader).Status.SnapshotIndex >= 80);
        Directory.Delete(c.StoreDir(wiped), recursive: true);
        Directory.Delete(c.LogDir(wiped), recursive: true);
        return (leader, wiped);
    }

    [Fact]
    public async Task Concurrent_increments_from_three_nodes_sum_exactly()
    {
        await using var c = await Cluster.StartAsync();
        const int perWorker = 25;
        var workers = c.Running.SelectMany(i => Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            for (var k = 0; k < perWorker; k++)
                await c.Node(i).IncrementAsync("total");
        }))).ToArray();
        await Task.WhenAll(workers);
        foreach (var i in c.Running)
            Assert.Equal((workers.Length * perWorker).ToString(), await c.Node(i).GetStringAsync("total"));
    }

    [Fact]
    public async Task A_minority_cannot_commit_a_write()
    {
        await using var c = await Cluster.StartAsync(operationTimeout: TimeSpan.FromSeconds(3));
        var leader = c.Leader();
        var lone = c.Follower();
        await c.Node(leader).PutAsync("k", "committed");
        Assert.Equal("committed", await c.Node(lone).GetStringAsync("k"));
        foreach (var i in c.Running.Where(i => i != lone).ToArray())
            await c.StopNodeAsync(i);
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => c.Node(lone).PutAsync("k", "minority"));
        Assert.True(ex is TimeoutException or ReplicationOutcomeUnknownException, ex.ToString());
        Assert.Equal("committed", c.Node(lone).GetStaleString("k"));
        await Assert.ThrowsAsync<TimeoutException>(() => c.Node(lone).GetAsync(B("k")));
    }

    [Fact]
    public async Task A_node_added_through_a_configuration_change_catches_up_and_a_removed_node_leaves()
    {
        await using var c = await Cluster.StartAsync(size: 4, snapshotInterval: 20, initial: 3);
        var leader = c.Leader();
        for (var i = 0; i < 30; i++)
            await c.Node(leader).PutAsync($"k{i}", $"v{i}");
        var added = c.Options(3, members: []);
        c.Nodes[3] = await ReplicatedStore.StartAsync(added);
        Assert.True(await c.Node(leader).AddMemberAsync(c.EndPoints[3]));
        await Cluster.Eventually(() => c.Running.All(i => c.Node(i).Status.Members.Count == 4), "every node to see 4 members");
        await c.Node(leader).PutAsync("after-add", "yes");
        Assert.Equal("yes", await c.Node(3).GetStringAsync("after-add"));
        Assert.Equal("v0", c.Node(3).GetStaleString("k0"));
        var follower = c.Running.First(i => i != leader && i != 3);
        await Assert.ThrowsAsync<InvalidOperationException>(() => c.Node(follower).RemoveMemberAsync(c.EndPoints[3]));
        Assert.True(await c.Node(leader).RemoveMemberAsync(c.EndPoints[follower]));
        await c.StopNodeAsync(follower);
        await Cluster.Eventually(() => c.Running.All(i => c.Node(i).Status.Members.Count == 3), "the other nodes to see 3 members");
        await c.Node(3).PutAsync("after-remove", "yes"); // forwarded; commits with the three remaining members
        Assert.Equal("yes", await c.Node(c.Leader()).GetStringAsync("after-remove"));
        await AssertSameContent(c);
    }

    [Fact]
    public async Task An_idle_leader_snapshots_the_entries_applied_since_its_last_snapshot()
    {
        // A follower whose snapshot install timed out on the leader's side is sent the same snapshot again and refuses
        // it (not newer than what it installed); only a newer snapshot catches it up, which an idle cluster would never
        // take on the entry-count schedule alone.
        await using var c = await Cluster.StartAsync(snapshotInterval: 20);
        var leader = c.Leader();
        for (var i = 0; i < 26; i++)
            await c.Node(leader).PutAsync($"k{i}", $"v{i}");
        var node = c.Node(leader);
        Assert.True(node.Status.SnapshotIndex > 0 && node.Status.SnapshotIndex < node.Status.AppliedIndex,
            $"snapshot {node.Status.SnapshotIndex}, applied {node.Status.AppliedIndex}");
        await Cluster.Eventually(() => node.Status.SnapshotIndex >= node.Status.AppliedIndex - 1, "an idle snapshot on the leader");
        Assert.Equal("v25", await node.GetStringAsync("k25"));
    }

    [Fact]
    public async Task A_membership_changed_by_add_and_remove_survives_a_restart_of_every_node()
    {
        await using var c = await Cluster.StartAsync(size: 4, snapshotInterval: 20, initial: 3);
        var leader = c.Leader();
        await c.Node(leader).PutAsync("before", "yes");
        c.Nodes[3] = await ReplicatedStore.StartAsync(c.Options(3, members: []));
        Assert.True(await c.Node(leader).AddMemberAsync(c.EndPoints[3]));
        var removed = c.Running.First(i => i != leader && i != 3);
        Assert.True(await c.Node(leader).RemoveMemberAsync(c.EndPoints[removed]));
        await c.StopNodeAsync(removed);
        var expected = Enumerable.Range(0, 4).Where(i => i != removed).Select(i => c.EndPoints[i].ToString()).Order().ToArray();
        string[] MembersOf(int i) => c.Node(i).Status.Members.Select(m => m.ToString()!).Order().ToArray();
        await Cluster.Eventually(() => c.Running.All(i => MembersOf(i).SequenceEqual(expected)), "every node to see the changed membership");
        // Enough entries for snapshots to pass the configuration changes, so the log no longer holds them.
        for (var i = 0; i < 60; i++)
            await c.Node(c.Leader()).PutAsync($"k{i}", $"v{i}");
        await Cluster.Eventually(() => c.Running.All(i => c.Node(i).Status.SnapshotIndex > 40), "snapshots on every node");

        // Restart every node with the options it was first started with: the three original nodes still name the
        // removed node (and not the added one) in their static members; the added node names none.
        var running = c.Running.ToArray();
        foreach (var i in running) await c.StopNodeAsync(i);
        foreach (var i in running)
            c.Nodes[i] = await ReplicatedStore.StartAsync(i == 3 ? c.Options(3, members: []) : c.Options(i));
        await c.WaitForLeaderAsync();
        foreach (var i in c.Running)
            Assert.Equal(expected, MembersOf(i));
        await c.Node(c.Leader()).PutAsync("after-restart", "yes");
        Assert.Equal("yes", await c.Node(3).GetStringAsync("after-restart"));
        Assert.Equal("yes", await c.Node(3).GetStringAsync("before"));
    }

    [Fact]
    public async Task A_value_the_stores_refuse_fails_on_every_node_and_later_writes_still_apply()
    {
        await using var c = await Cluster.StartAsync();
        var follower = c.Node(c.Follower());
        var tooLarge = new byte[17 << 20]; // over the engine's default 16 MiB MaxValueBytes
        var ex = await Assert.ThrowsAsync<ReplicatedCommandException>(() => follower.PutAsync(B("big"), tooLarge));
        Assert.Contains("MaxValueBytes", ex.Message);
        await follower.PutAsync("small", "ok");
        foreach (var i in c.Running)
        {
            Assert.Null(await c.Node(i).GetAsync(B("big")));
            Assert.Equal("ok", await c.Node(i).GetStringAsync("small"));
        }
    }

    [Fact]
    public async Task A_malformed_forwarded_frame_is_refused_before_it_reaches_the_log()
    {
        await using var c = await Cluster.StartAsync();
        var leader = c.Node(c.Leader());
        var lastBefore = leader.Status.LastLogIndex;
        using var client = new ForwardClient();
        foreach (var garbage in new[] { new byte[] { 9 }, new byte[] { 1, 1, 5, 0, 0, 0 }, new byte[] { 1, 2, 3, 0, 0 }, new byte[] { 1, 7 } })
        {
            var reply = await client.SendAsync((System.Net.IPEndPoint)leader.ForwardEndPoint, garbage, CancellationToken.None);
            Assert.Equal(ForwardStatus.CommandFailed, reply.Status);
            Assert.False(string.IsNullOrEmpty(reply.Message));
        }
        Assert.Equal(lastBefore, leader.Status.LastLogIndex);
        await leader.PutAsync("still", "works");
        Assert.Equal("works", await c.Node(c.Follower()).GetStringAsync("still"));
    }

    [Fact]
    public async Task A_snapshot_stream_naming_a_path_outside_its_folder_is_refused()
    {
        var root = Path.Combine(Path.GetTempPath(), "bitcask-raft-snap-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var name = B("../escape");
            var stream = new MemoryStream();
            stream.Write("BCRSNAP1"u8);
            var buf = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(buf, 5); stream.Write(buf);
            BinaryPrimitives.WriteInt64LittleEndian(buf, 1); stream.Write(buf);
            BinaryPrimitives.WriteUInt32LittleEndian(buf, 1); stream.Write(buf.AsSpan(0, 4));
            BinaryPrimitives.WriteUInt16LittleEndian(buf, (ushort)name.Length); stream.Write(buf.AsSpan(0, 2));
            stream.Write(name);
            BinaryPrimitives.WriteInt64LittleEndian(buf, 3); stream.Write(buf);
            stream.Write("abc"u8);
            stream.Position = 0;
            await Assert.ThrowsAsync<InvalidDataException>(() => BackupSnapshot.UnpackAsync(stream, root, CancellationToken.None));
            Assert.False(File.Exists(Path.Combine(root, "5-1.tmp", "escape")));
            Assert.False(File.Exists(Path.Combine(root, "escape")));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    private static async Task AssertSameContent(Cluster c)
    {
        var leader = c.Node(c.Leader());
        var commit = leader.Status.CommitIndex;
        foreach (var i in c.Running)
            await Cluster.Eventually(() => c.Node(i).Status.AppliedIndex >= commit, $"node {i} to apply up to {commit}");
        var dumps = c.Running.Select(i => c.Node(i).ReadLocal(Dump)).ToArray();
        foreach (var d in dumps.Skip(1))
            Assert.Equal(dumps[0], d);
    }

    private static string Dump(BitcaskStore s)
    {
        var sb = new StringBuilder();
        foreach (var key in s.Keys().Where(k => !k.AsSpan().StartsWith("\0raft:"u8)).OrderBy(k => Convert.ToHexString(k)))
            sb.Append(Convert.ToHexString(key)).Append('=').Append(Convert.ToHexString(s.Get(key) ?? [])).Append(';');
        return sb.ToString();
    }
}
