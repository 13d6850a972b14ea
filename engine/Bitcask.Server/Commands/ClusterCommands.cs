using System.Text;
using Bitcask.Replication;

namespace Bitcask.Server.Commands;

/// <summary>READONLY READWRITE ROLE BITCASK.RAFT, and INFO's replication section: how a replicated node shows itself to
/// Redis clients (the leader as master, the others as slaves of it) and to operators (README, "Cluster").</summary>
internal static class ClusterCommands
{
    public const string NotClustered = "ERR this server is not a cluster node (start it with --cluster-id)";

    public static readonly CommandSpec Raft = new("bitcask.raft", -2, CommandFlags.Admin | CommandFlags.NoScript, 0, 0, 0, "server",
        "Raft cluster administration: STATUS, DIGEST, ADD ip:port, REMOVE ip:port.", RaftCommand);

    public static IEnumerable<CommandSpec> All() =>
    [
        new("readonly", 1, CommandFlags.Fast, 0, 0, 0, "cluster", "Serves this connection's reads from the node's store as it is (stale reads).", ReadOnly),
        new("readwrite", 1, CommandFlags.Fast, 0, 0, 0, "cluster", "Makes this connection's reads linearizable again.", ReadWrite),
        new("role", 1, CommandFlags.Fast | CommandFlags.NoScript, 0, 0, 0, "server", "Returns the replication role.", Role),
        Raft,
    ];

    private static void ReadOnly(CommandContext c)
    {
        if (c.Server.Node is null)
        {
            c.Reply.Error("ERR This instance has cluster support disabled");
            return;
        }
        c.Client!.ReadOnlyMode = true;
        c.Reply.Ok();
    }

    private static void ReadWrite(CommandContext c)
    {
        if (c.Server.Node is null)
        {
            c.Reply.Error("ERR This instance has cluster support disabled");
            return;
        }
        c.Client!.ReadOnlyMode = false;
        c.Reply.Ok();
    }

    /// <summary>Redis's ROLE: master with its replicas, or slave with its master's address and link state.</summary>
    private static void Role(CommandContext c)
    {
        if (c.Server.Cluster is not { } cluster)
        {
            c.Reply.Array(3);
            c.Reply.Bulk("master"u8);
            c.Reply.Integer(0);
            c.Reply.Array(0);
            return;
        }
        var status = cluster.Node.Status;
        if (status.Role == ReplicaRole.Leader)
        {
            var replicas = Replicas(cluster, status);
            c.Reply.Array(3);
            c.Reply.Bulk("master"u8);
            c.Reply.Integer(status.AppliedIndex);
            c.Reply.Array(replicas.Count);
            foreach (var (host, port) in replicas)
            {
                c.Reply.Array(3);
                c.Reply.Bulk(host);
                c.Reply.Bulk(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
                c.Reply.Bulk(status.AppliedIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            return;
        }
        var leader = cluster.LeaderResp(status);
        c.Reply.Array(5);
        c.Reply.Bulk("slave"u8);
        c.Reply.Bulk(leader?.Host ?? "");
        c.Reply.Integer(leader?.Port ?? 0);
        c.Reply.Bulk(leader is null ? "connect"u8 : "connected"u8);
        c.Reply.Integer(status.AppliedIndex);
    }

    private static List<(string Host, int Port)> Replicas(ClusterView cluster, ReplicationStatus status)
    {
        var replicas = new List<(string, int)>();
        foreach (var member in status.Members)
            if (!member.Equals(status.Node) && cluster.RespOf(member) is { } resp && System.Net.IPEndPoint.TryParse(resp, out var ep))
                replicas.Add((ep.Address.ToString(), ep.Port));
        return replicas;
    }

    /// <summary>INFO replication on a replicated node: Redis's fields (what StackExchange.Redis reads to find the master),
    /// then this node's Raft state.</summary>
    public static void AppendReplicationInfo(StringBuilder text, ServerState server)
    {
        var cluster = server.Cluster!;
        var status = cluster.Node.Status;
        text.Append("# Replication\r\n");
        if (status.Role == ReplicaRole.Leader)
        {
            var replicas = Replicas(cluster, status);
            text.Append("role:master\r\n").Append($"connected_slaves:{replicas.Count}\r\n");
            for (var i = 0; i < replicas.Count; i++)
                text.Append($"slave{i}:ip={replicas[i].Host},port={replicas[i].Port},state=online,offset={status.AppliedIndex},lag=0\r\n");
        }
        else
        {
            var leader = cluster.LeaderResp(status);
            text.Append("role:slave\r\n")
                .Append($"master_host:{leader?.Host}\r\n")
                .Append($"master_port:{leader?.Port ?? 0}\r\n")
                .Append($"master_link_status:{(leader is null ? "down" : "up")}\r\n")
                .Append("master_last_io_seconds_ago:0\r\n")
                .Append("master_sync_in_progress:0\r\n")
                .Append($"slave_read_repl_offset:{status.AppliedIndex}\r\n")
                .Append($"slave_repl_offset:{status.AppliedIndex}\r\n")
                .Append("slave_priority:100\r\n")
                .Append("slave_read_only:0\r\n")
                .Append("replica_announced:1\r\n")
                .Append("connected_slaves:0\r\n");
        }
        text.Append("master_failover_state:no-failover\r\n")
            .Append("master_replid:0000000000000000000000000000000000000000\r\n")
            .Append($"master_repl_offset:{status.AppliedIndex}\r\n")
            .Append($"cluster_id:{server.Options.ClusterId}\r\n")
            .Append($"raft_node:{status.Node}\r\n")
            .Append($"raft_role:{status.Role.ToString().ToLowerInvariant()}\r\n")
            .Append($"raft_term:{status.Term}\r\n")
            .Append($"raft_leader:{status.Leader}\r\n")
            .Append($"raft_commit_index:{status.CommitIndex}\r\n")
            .Append($"raft_applied_index:{status.AppliedIndex}\r\n")
            .Append($"raft_last_log_index:{status.LastLogIndex}\r\n")
            .Append($"raft_snapshot_index:{status.SnapshotIndex}\r\n")
            .Append($"raft_members:{string.Join(',', status.Members)}\r\n");
    }

    /// <summary>The role HELLO reports.</summary>
    public static string RoleName(ServerState server) =>
        server.Node is null || server.Node.IsLeader ? "master" : "replica";

    private static void RaftCommand(CommandContext c)
    {
        if (c.Server.Cluster is not { } cluster)
        {
            c.Reply.Error(NotClustered);
            return;
        }
        var sub = c.Text(1).ToUpperInvariant();
        switch (sub)
        {
            case "STATUS" when c.Count == 2:
                var status = cluster.Node.Status;
                c.Reply.Map(12);
                Pair(c, "cluster_id", c.Server.Options.ClusterId ?? "");
                Pair(c, "node", status.Node.ToString()!);
                Pair(c, "role", status.Role.ToString().ToLowerInvariant());
                c.Reply.Bulk("term"u8); c.Reply.Integer(status.Term);
                Pair(c, "leader", status.Leader?.ToString() ?? "");
                c.Reply.Bulk("commit_index"u8); c.Reply.Integer(status.CommitIndex);
                c.Reply.Bulk("applied_index"u8); c.Reply.Integer(status.AppliedIndex);
                c.Reply.Bulk("last_log_index"u8); c.Reply.Integer(status.LastLogIndex);
                c.Reply.Bulk("snapshot_index"u8); c.Reply.Integer(status.SnapshotIndex);
                Pair(c, "leader_resp", cluster.RespOf(status.Leader) ?? "");
                c.Reply.Bulk("members"u8);
                c.Reply.Array(status.Members.Count);
                foreach (var member in status.Members) c.Reply.Bulk(member.ToString()!);
                c.Reply.Bulk("resp"u8);
                c.Reply.Map(status.Members.Count);
                foreach (var member in status.Members)
                {
                    c.Reply.Bulk(member.ToString()!);
                    c.Reply.Bulk(cluster.RespOf(member) ?? "");
                }
                return;
            case "DIGEST" when c.Count == 2:
                var (applied, digest) = cluster.Node.ComputeDigest();
                c.Reply.Map(2);
                c.Reply.Bulk("applied_index"u8); c.Reply.Integer(applied);
                Pair(c, "digest", digest);
                return;
            case "ADD" or "REMOVE":
                c.Reply.Error($"ERR BITCASK.RAFT {sub} takes one Raft address as ip:port (e.g. 127.0.0.1:7004)");
                return;
            default:
                c.Reply.Error($"ERR unknown subcommand or wrong number of arguments for 'BITCASK.RAFT {c.Text(1)}'. Try STATUS, DIGEST, ADD ip:port, REMOVE ip:port.");
                return;
        }
    }

    private static void Pair(CommandContext c, string name, string value)
    {
        c.Reply.Bulk(name);
        c.Reply.Bulk(value);
    }
}
