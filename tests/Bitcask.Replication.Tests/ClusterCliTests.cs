using System.Net;
using Bitcask.Cli;

namespace Bitcask.Replication.Tests;

/// <summary><c>bitcask cluster status|add|remove</c> and the cluster-id check of <c>bitcask serve --cluster-id</c>.</summary>
public sealed class ClusterCliTests
{
    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Cluster_status_lists_every_member_and_exits_1_when_one_is_unreachable()
    {
        await using var c = await RespCluster.StartAsync();
        await c.WaitForAddressesAsync();
        var leader = c.Raft.Leader();
        var (code, output, _) = Cli("cluster", "status", "--server", $"127.0.0.1:{c.Ports[c.Raft.Follower()]}", "--digest");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("node", lines[0]);
        Assert.Contains("applied", lines[0]);
        Assert.Equal(4, lines.Length);
        Assert.Single(lines[1..], l => l.Contains("  leader  "));
        Assert.All(lines[1..], l => Assert.Contains(c.Raft.EndPoints[leader].ToString(), l));
        var stopped = c.Raft.Follower();
        await c.StopNodeAsync(stopped);
        var asked = c.Raft.Running.First();
        (code, output, _) = Cli("cluster", "status", "--server", $"127.0.0.1:{c.Ports[asked]}");
        Assert.Equal(1, code);
        Assert.Contains(output.Split('\n'), l => l.StartsWith(c.Raft.EndPoints[stopped].ToString(), StringComparison.Ordinal) && l.Contains("unreachable"));
        Assert.Equal(2, output.Split("\n").Skip(1).Count(l => l.Contains("  follower  ") || l.Contains("  leader  ")));
    }

    [Fact]
    public async Task Cluster_add_and_remove_change_the_membership_through_the_leader()
    {
        await using var c = await RespCluster.StartAsync(size: 4, initial: 3);
        using (var conn = c.Connect(0)) conn.Ok("SET", "before", "add");
        await c.StartNodeAsync(3); // started with no membership (--join)
        var follower = c.Raft.Follower();
        var (code, output, error) = Cli("cluster", "add", "--server", $"127.0.0.1:{c.Ports[follower]}", c.Raft.EndPoints[3].ToString());
        Assert.True(code == 0, error);
        Assert.Contains("Added", output);
        await Cluster.Eventually(() => c.Raft.Running.All(i => c.Raft.Node(i).Status.Members.Count == 4), "four members everywhere");
        using (var conn = c.Connect(3)) Assert.Equal("add", conn.Ok("GET", "before"));
        var removed = c.Raft.Running.First(i => i != c.Raft.Leader() && i != 3);
        (code, _, error) = Cli("cluster", "remove", "--server", $"127.0.0.1:{c.Ports[3]}", c.Raft.EndPoints[removed].ToString());
        Assert.True(code == 0, error);
        await Cluster.Eventually(() => c.Raft.Running.Where(i => i != removed).All(i => c.Raft.Node(i).Status.Members.Count == 3), "three members");
        (code, _, error) = Cli("cluster", "add", "--server", $"127.0.0.1:{c.Ports[3]}", "not-an-address");
        Assert.Equal(2, code);
        Assert.Contains("ip:port", error);
    }

    [Fact]
    public async Task Serving_a_directory_recorded_for_another_cluster_exits_2_naming_both_ids()
    {
        var dir = Path.Combine(Path.GetTempPath(), "bitcask-cid-" + Guid.NewGuid().ToString("N"));
        try
        {
            var node = new IPEndPoint(IPAddress.Loopback, 1);
            var options = new ReplicationOptions
            {
                NodeEndPoint = new IPEndPoint(IPAddress.Loopback, 0), Members = [], StoreDirectory = Path.Combine(dir, "store"),
                LogDirectory = Path.Combine(dir, "raft"), ClusterId = "alpha",
            };
            await (await ReplicatedStore.StartAsync(options)).DisposeAsync(); // records "alpha"
            var again = new ReplicationOptions
            {
                NodeEndPoint = options.NodeEndPoint, StoreDirectory = options.StoreDirectory, LogDirectory = options.LogDirectory, ClusterId = "beta",
            };
            var ex = await Assert.ThrowsAsync<ClusterIdMismatchException>(() => ReplicatedStore.StartAsync(again));
            Assert.Equal(("alpha", "beta"), (ex.RecordedId, ex.GivenId));
            var (code, _, error) = Cli("serve", dir, "--port", "0", "--cluster-id", "beta", "--node", "127.0.0.1:7999");
            Assert.Equal(2, code);
            Assert.Contains("'alpha'", error);
            Assert.Contains("'beta'", error);
            (code, _, error) = Cli("serve", dir, "--port", "0", "--node", "127.0.0.1:7999");
            Assert.Equal(2, code);
            Assert.Contains("--cluster-id", error);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
