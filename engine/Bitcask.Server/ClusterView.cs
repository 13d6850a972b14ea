using System.Collections.Concurrent;
using System.Net;
using Bitcask.Replication;
using Microsoft.Extensions.Logging;

namespace Bitcask.Server;

/// <summary>
/// What a replicated node's server knows of the other members: the RESP address each one publishes in its Raft member
/// metadata (<see cref="ReplicatedStore.ClientAddressMetadataKey"/>), looked up in the background every 250 ms for the
/// members not known yet (and every 5 s for all), so INFO, ROLE and BITCASK.RAFT STATUS answer without waiting on the network.
/// <para>Thread-safety: all members are safe to call concurrently.</para>
/// </summary>
internal sealed class ClusterView(ReplicatedStore node, ILogger logger)
{
    private readonly ConcurrentDictionary<string, string> _resp = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public ReplicatedStore Node => node;

    public void Start() => _loop = Task.Run(Loop);

    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>The RESP address ("ip:port") a member publishes, when known.</summary>
    public string? RespOf(EndPoint? member) => member is not null && _resp.TryGetValue(member.ToString()!, out var resp) ? resp : null;

    /// <summary>The leader's RESP address split for INFO (host, port); null when no leader or its address is not known.</summary>
    public (string Host, int Port)? LeaderResp(ReplicationStatus status)
    {
        if (RespOf(status.Leader) is not { } resp || !IPEndPoint.TryParse(resp, out var ep)) return null;
        return (ep.Address.ToString(), ep.Port);
    }

    private async Task Loop()
    {
        var token = _stop.Token;
        var rounds = 0;
        while (!token.IsCancellationRequested)
        {
            try
            {
                // Every 5 s the known addresses are asked again: a member that restarted may listen elsewhere.
                var refresh = ++rounds % 20 == 0;
                foreach (var member in node.Status.Members)
                {
                    var key = member.ToString()!;
                    if (!refresh && _resp.ContainsKey(key)) continue;
                    var metadata = await node.GetMemberMetadataAsync(member, refresh, token).ConfigureAwait(false);
                    if (metadata is not null && metadata.TryGetValue(ReplicatedStore.ClientAddressMetadataKey, out var resp))
                        _resp[key] = resp;
                }
                await Task.Delay(250, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogDebug(e, "Looking up the members' RESP addresses");
                try { await Task.Delay(250, token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        }
    }
}
