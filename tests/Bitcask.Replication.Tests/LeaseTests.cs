using System.Text;

namespace Bitcask.Replication.Tests;

/// <summary>Replicated leases: grant, keep-alive, revoke and expiry are log entries, decided by the leader.</summary>
public sealed class LeaseTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task SameDigestEverywhere(Cluster c)
    {
        await Cluster.Eventually(() =>
        {
            var digests = c.Running.Select(i => c.Node(i).ComputeDigest()).ToArray();
            return digests.All(d => d == digests[0]);
        }, "every node to reach the same applied index and digest");
    }

    [Fact]
    public async Task Revoking_a_lease_deletes_its_attached_keys_on_every_node_but_not_keys_written_again_without_it()
    {
        await using var c = await Cluster.StartAsync();
        var follower = c.Node(c.Follower());
        var lease = await follower.GrantLeaseAsync(TimeSpan.FromMinutes(5)); // forwarded to the leader
        Assert.True(lease > 0);
        Assert.True(await follower.WriteAsync(new ReplicatedBatch().Put(B("a"), B("1"), lease).Put(B("b"), B("2"), lease).Put(B("c"), B("3"))));
        await follower.PutAsync("b", "rewritten"); // a put without the lease detaches b
        Assert.True(await follower.RevokeLeaseAsync(lease));
        Assert.False(await follower.RevokeLeaseAsync(lease));
        Assert.False(await follower.KeepAliveAsync(lease));
        await SameDigestEverywhere(c);
        foreach (var i in c.Running)
        {
            Assert.Null(await c.Node(i).GetAsync(B("a")));
            Assert.Equal("rewritten", await c.Node(i).GetStringAsync("b"));
            Assert.Equal("3", await c.Node(i).GetStringAsync("c"));
            Assert.False(c.Node(i).LeaseExists(lease));
        }
        var ex = await Assert.ThrowsAsync<ReplicatedCommandException>(() => follower.WriteAsync(new ReplicatedBatch().Put(B("d"), B("4"), lease)));
        Assert.Contains("not found", ex.Message);
    }

    [Fact]
    public async Task The_leader_expires_a_lease_not_kept_alive_and_keep_alives_defer_it()
    {
        await using var c = await Cluster.StartAsync();
        var node = c.Node(c.Follower());
        var lease = await node.GrantLeaseAsync(TimeSpan.FromMilliseconds(3000));
        Assert.True(await node.WriteAsync(new ReplicatedBatch().Put(B("session"), B("on"), lease)));
        for (var i = 0; i < 14; i++) // 7 s of keep-alives, more than twice the time to live
        {
            await Task.Delay(500);
            Assert.True(await node.KeepAliveAsync(lease));
        }
        Assert.Equal("on", await node.GetStringAsync("session"));
        await Cluster.Eventually(() => c.Running.All(i => c.Node(i).GetStaleString("session") is null && !c.Node(i).LeaseExists(lease)),
            "the lease to expire on every node");
        await SameDigestEverywhere(c);
    }

    [Fact]
    public async Task A_new_leader_gives_a_lease_a_full_time_to_live_before_expiring_it()
    {
        await using var c = await Cluster.StartAsync();
        var ttl = TimeSpan.FromSeconds(6);
        var lease = await c.Node(c.Leader()).GrantLeaseAsync(ttl);
        Assert.True(await c.Node(c.Leader()).WriteAsync(new ReplicatedBatch().Put(B("held"), B("yes"), lease)));
        await Task.Delay(TimeSpan.FromSeconds(4)); // two thirds of the ttl used up under the first leader
        await c.StopNodeAsync(c.Leader());
        var newLeader = await c.WaitForLeaderAsync();
        var elected = DateTime.UtcNow;
        // By the old renewal the lease is due about 2 s from now; the new leader must wait a full ttl from its election.
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        Assert.True(DateTime.UtcNow - elected < ttl);
        Assert.Equal("yes", c.Node(newLeader).GetStaleString("held"));
        Assert.True(c.Node(newLeader).LeaseExists(lease));
        await Cluster.Eventually(() => c.Node(newLeader).GetStaleString("held") is null, "the lease to expire under the new leader");
    }
}
