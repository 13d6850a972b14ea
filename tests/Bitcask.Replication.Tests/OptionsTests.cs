using System.Net;

namespace Bitcask.Replication.Tests;

public sealed class OptionsTests
{
    private static ReplicationOptions Valid(string root) => new()
    {
        NodeEndPoint = new IPEndPoint(IPAddress.Loopback, 1),
        StoreDirectory = Path.Combine(root, "store"),
        LogDirectory = Path.Combine(root, "raft"),
    };

    [Fact]
    public async Task Start_refuses_a_log_directory_inside_the_store_directory_and_names_the_option()
    {
        var root = Path.Combine(Path.GetTempPath(), "bitcask-raft-opt-" + Guid.NewGuid().ToString("N"));
        var bad = new ReplicationOptions
        {
            NodeEndPoint = new IPEndPoint(IPAddress.Loopback, 1),
            StoreDirectory = Path.Combine(root, "store"),
            LogDirectory = Path.Combine(root, "store", "raft"),
        };
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => ReplicatedStore.StartAsync(bad));
        Assert.Contains("LogDirectory", ex.Message);
        Assert.False(Directory.Exists(root)); // nothing created
    }

    [Fact]
    public async Task Start_refuses_out_of_range_snapshot_and_election_settings()
    {
        var root = Path.Combine(Path.GetTempPath(), "bitcask-raft-opt-" + Guid.NewGuid().ToString("N"));
        var v = Valid(root);
        var e1 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ReplicatedStore.StartAsync(new ReplicationOptions
            { NodeEndPoint = v.NodeEndPoint, StoreDirectory = v.StoreDirectory, LogDirectory = v.LogDirectory, SnapshotInterval = 1 }));
        Assert.Contains("SnapshotInterval", e1.Message);
        var e2 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ReplicatedStore.StartAsync(new ReplicationOptions
            { NodeEndPoint = v.NodeEndPoint, StoreDirectory = v.StoreDirectory, LogDirectory = v.LogDirectory, LowerElectionTimeout = 500, UpperElectionTimeout = 400 }));
        Assert.Contains("ElectionTimeout", e2.Message);
        Assert.False(Directory.Exists(root));
    }

    [Fact]
    public void A_batch_refuses_reserved_and_empty_keys()
    {
        var batch = new ReplicatedBatch();
        Assert.Throws<ArgumentException>(() => batch.Put("\0raft:applied"u8, "1"u8));
        Assert.Throws<ArgumentException>(() => batch.Delete("\0bitcask:lease:1"u8));
        Assert.Throws<ArgumentException>(() => batch.Put(ReadOnlySpan<byte>.Empty, "1"u8));
        Assert.Throws<ArgumentException>(() => batch.RequireExists(new byte[70_000]));
        Assert.Equal(0, batch.Count + batch.ConditionCount);
    }
}
