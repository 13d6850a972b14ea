using System.Net;
using System.Text;
using Bitcask.Server.Commands;

namespace Bitcask.Server;

// A server over a replicated node (README, "Cluster"): one read barrier before each command or transaction that touches
// the keyspace (skipped for reads after READONLY), and the membership commands, which wait on Raft.
internal sealed partial class Connection
{
    /// <summary>READONLY: this client's reads are served from the node's store as it is (may lag the leader).</summary>
    public bool ReadOnlyMode { get; set; }


    /// <summary>Waits until this node applied every write committed before the command, unless the command does not touch
    /// the keyspace or only reads on a READONLY connection. False after writing the error reply (CLUSTERDOWN ...).</summary>
    private async ValueTask<bool> ReadBarrierAsync(CommandSpec spec, byte[][]? args = null)
    {
        var writes = spec.Has(CommandFlags.Write) || ReferenceEquals(spec, TransactionCommands.Exec)
            || ReferenceEquals(spec, ScriptCommands.Eval) || ReferenceEquals(spec, ScriptCommands.EvalSha);
        var reads = writes || spec.Has(CommandFlags.ReadOnly) || spec.Name == "watch";
        if (!reads || (ReadOnlyMode && !writes)) return true;
        // A write that reads nothing (SET without NX/XX/GET/KEEPTTL, MSET...) needs no barrier: its reply only says it
        // committed, and the commit itself is ordered by the log.
        if (args is not null && IsBlindWrite(spec, args)) return true;
        try
        {
            await _server.ReadBarrierAsync().ConfigureAwait(false);
            return true;
        }
        catch (ReplyErrorException e)
        {
            _reply.Error(e.Message);
            return false;
        }
    }

    /// <summary>BITCASK.RAFT ADD|REMOVE: a Raft configuration change, run on the leader (this node must be it).</summary>
    private async ValueTask<bool> TryRunClusterAsync(CommandSpec spec, byte[][] args)
    {
        if (!ReferenceEquals(spec, ClusterCommands.Raft) || args.Length < 2) return false;
        var sub = Encoding.UTF8.GetString(args[1]).ToUpperInvariant();
        if (sub is not ("ADD" or "REMOVE")) return false;
        if (_server.Node is not { } node)
        {
            _reply.Error(ClusterCommands.NotClustered);
            return true;
        }
        if (args.Length != 3 || !IPEndPoint.TryParse(Encoding.UTF8.GetString(args[2]), out var member) || member.Port == 0)
        {
            _reply.Error($"ERR BITCASK.RAFT {sub} takes one Raft address as ip:port (e.g. 127.0.0.1:7004)");
            return true;
        }
        try
        {
            var done = sub == "ADD" ? await node.AddMemberAsync(member).ConfigureAwait(false) : await node.RemoveMemberAsync(member).ConfigureAwait(false);
            if (done) _reply.Ok();
            else _reply.Error(sub == "ADD"
                ? $"CLUSTERDOWN {member} did not catch up in time (is it started with --join?); try again"
                : $"ERR {member} is not a member");
        }
        catch (InvalidOperationException e)
        {
            _reply.Error("ERR " + e.Message); // not the leader: the message names it
        }
        catch (Exception e) when (ServerState.ClusterError(e) is { } line)
        {
            _reply.Error(line);
        }
        return true;
    }
}
