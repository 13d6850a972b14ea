using System.Text;
using Bitcask.Replication;

namespace Bitcask.Replication.Tests;

/// <summary>Proposal batching on the leader (issue 13, cluster write throughput): commands proposed while an entry is
/// being replicated wait and travel together in the next entry (a multi entry, FORMAT.md §8), each applied at its own
/// position with its own result, exactly once across a restart.</summary>
public sealed class ProposalBatchingTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Holds the leader's applier on the first entry after <paramref name="after"/> so that the sender loop
    /// waits on it and every command proposed meanwhile queues; returns the release.</summary>
    private static TaskCompletionSource HoldApplier(ReplicatedStore leader, long after)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        leader.Machine.BeforeApply = async (index, token) =>
        {
            if (index > after) await release.Task.WaitAsync(token);
        };
        return release;
    }

    [Fact]
    public async Task Concurrent_proposals_travel_in_one_log_entry_and_each_caller_gets_its_own_result()
    {
        await using var c = await Cluster.StartAsync();
        var leader = c.Node(c.Leader());
        await leader.PutAsync("text", "not a number");
        await leader.PutAsync("cas", "v1");
        var casVersion = (await leader.GetInfoAsync(B("cas")))!.Value.Version;
        var before = leader.Status.LastLogIndex;
        var (entriesBefore, commandsBefore) = leader.ProposalBatches;
        var release = HoldApplier(leader, before);

        var first = leader.PutAsync("first", "1"); // goes alone; its apply is held, so everything below queues behind it
        await Cluster.Eventually(() => leader.Status.LastLogIndex > before, "the first entry to be appended");
        var increments = Enumerable.Range(0, 10).Select(_ => leader.IncrementAsync("counter")).ToArray();
        var staleCas = leader.CompareAndSetAsync(B("cas"), casVersion + 5, B("lost")); // a failing condition in the middle
        var badIncrement = leader.IncrementAsync("text"); // a command error in the middle
        var goodCas = leader.CompareAndSetAsync(B("cas"), casVersion, B("v2"));
        var puts = Enumerable.Range(0, 5).Select(i => leader.PutAsync($"k{i}", $"v{i}")).ToArray();
        var deleteOfAbsent = leader.DeleteAsync("never-written");
        await Cluster.Eventually(() => leader.QueuedProposals == 19, "19 proposals to queue behind the held entry");
        Assert.Equal(before + 1, leader.Status.LastLogIndex); // nothing of them is in the log yet
        release.SetResult();

        await first;
        var counts = await Task.WhenAll(increments);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), counts.Order()); // each its own position, none lost
        Assert.False(await staleCas);
        var error = await Assert.ThrowsAsync<ReplicatedCommandException>(() => badIncrement);
        Assert.Contains("not an integer", error.Message);
        Assert.True(await goodCas); // judged after the failing ones, not affected by them
        await Task.WhenAll(puts);
        Assert.False(await deleteOfAbsent);

        // 20 commands, 2 log entries: the first alone, the 19 queued ones together
        Assert.Equal(before + 2, leader.Status.LastLogIndex);
        var (entries, commands) = leader.ProposalBatches;
        Assert.Equal((2L, 20L), (entries - entriesBefore, commands - commandsBefore));
        foreach (var i in c.Running)
        {
            var node = c.Node(i);
            Assert.Equal("10", await node.GetStringAsync("counter"));
            Assert.Equal("v2", await node.GetStringAsync("cas"));
            Assert.Equal("not a number", await node.GetStringAsync("text"));
            Assert.Equal("v4", await node.GetStringAsync("k4"));
        }
    }

    [Fact]
    public async Task A_follower_stopped_in_the_middle_of_a_batched_entry_applies_the_rest_of_it_exactly_once_after_restart()
    {
        await using var c = await Cluster.StartAsync();
        var leaderIndex = c.Leader();
        var leader = c.Node(leaderIndex);
        var follower = c.Follower();
        await leader.IncrementAsync("counter");
        await Cluster.Eventually(() => c.Node(follower).GetStaleString("counter") == "1", "the follower to apply the first increment");
        var before = leader.Status.LastLogIndex;

        // The follower's applier stops after 4 of the batched entry's commands (a crash in the middle of the entry).
        var stalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        c.Node(follower).Machine.BeforeCommand = async (_, command, token) =>
        {
            if (command < 4) return;
            stalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
        };
        var release = HoldApplier(leader, before);
        var first = leader.IncrementAsync("counter");
        await Cluster.Eventually(() => leader.Status.LastLogIndex > before, "the first entry to be appended");
        var batched = Enumerable.Range(0, 9).Select(_ => leader.IncrementAsync("counter")).ToArray();
        await Cluster.Eventually(() => leader.QueuedProposals == 9, "9 increments to queue");
        release.SetResult();
        await first;
        Assert.Equal(Enumerable.Range(3, 9).Select(i => (long)i), (await Task.WhenAll(batched)).Order());
        Assert.Equal(before + 2, leader.Status.LastLogIndex);
        await stalled.Task.WaitAsync(Cluster.Patience);
        Assert.Equal("6", c.Node(follower).GetStaleString("counter")); // 2 before the entry + 4 of its 9 commands

        await c.StopNodeAsync(follower);
        await c.StartNodeAsync(follower);
        await leader.IncrementAsync("counter");
        Assert.Equal("12", await c.Node(follower).GetStringAsync("counter"));
        Assert.Equal("12", await leader.GetStringAsync("counter"));
        await Cluster.Eventually(() => c.Running.All(i => c.Node(i).Status.AppliedIndex == leader.Status.AppliedIndex), "every node to apply everything");
        var digests = c.Running.Select(i => c.Node(i).ComputeDigest()).ToArray();
        Assert.All(digests, d => Assert.Equal(digests[0].Digest, d.Digest));
    }

    [Fact]
    public void A_multi_entry_is_never_accepted_from_a_follower()
    {
        var multi = Command.EncodeMulti([Command.EncodeIncrement(B("a"), 1), Command.EncodeIncrement(B("b"), 1)]);
        Assert.Contains("leader only", Command.Validate(multi));
        Assert.True(Command.IsMulti(multi));
        Assert.Equal(2, Command.SplitMulti(multi).Count);
    }

    [Fact]
    public void A_malformed_multi_entry_fails_as_one_command_on_every_node_instead_of_stopping_the_applier()
    {
        var multi = Command.EncodeMulti([Command.EncodeIncrement(B("a"), 1)]);
        var truncated = multi[..^3];
        var commands = Command.SplitMulti(truncated);
        var dir = Path.Combine(Path.GetTempPath(), "bitcask-multi-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var store = BitcaskStore.Open(dir);
            var result = Command.Apply(store, Assert.Single(commands).Span, 7, 0);
            Assert.False(result.Succeeded);
            Assert.NotNull(result.ErrorMessage);
            Assert.Null(store.Get(B("a")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
