using System.Net;
using System.Net.Sockets;
using Bitcask.Server.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Bitcask.Replication.Tests;

/// <summary>A cluster node run from Microsoft.Extensions.Hosting with its options bound from configuration.</summary>
public sealed class HostingTests
{
    /// <summary>A loopback port to listen on (<see cref="Bitcask.Testing.TestPorts"/>).</summary>
    private static int FreePort() => Bitcask.Testing.TestPorts.Free();

    [Fact]
    public async Task Three_hosts_bound_from_configuration_form_a_cluster_that_replicates_RESP_writes()
    {
        var root = Path.Combine(Path.GetTempPath(), "bitcask-hosted-" + Guid.NewGuid().ToString("N"));
        var raft = Enumerable.Range(0, 3).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
        var resp = Enumerable.Range(0, 3).Select(_ => FreePort()).ToArray();
        var hosts = new List<IHost>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var settings = new Dictionary<string, string?>
                {
                    ["BitcaskServer:Directory"] = Path.Combine(root, $"n{i}"),
                    ["BitcaskServer:Port"] = resp[i].ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["BitcaskServer:Durability"] = "Flushed",
                    ["BitcaskServer:Cluster:ClusterId"] = "hosted",
                    ["BitcaskServer:Cluster:Node"] = raft[i],
                    ["BitcaskServer:Cluster:LowerElectionTimeout"] = "800",
                    ["BitcaskServer:Cluster:UpperElectionTimeout"] = "1600",
                    ["BitcaskServer:Cluster:OperationTimeout"] = "00:00:15",
                };
                var peers = raft.Where((_, j) => j != i).ToArray();
                for (var j = 0; j < peers.Length; j++) settings[$"BitcaskServer:Cluster:Peers:{j}"] = peers[j];
                var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
                builder.Configuration.AddInMemoryCollection(settings);
                builder.Services.AddBitcaskServer(builder.Configuration.GetSection(BitcaskServerServiceCollectionExtensions.SectionName));
                hosts.Add(builder.Build());
            }
            await Task.WhenAll(hosts.Select(h => h.StartAsync()));
            var services = hosts.Select(h => h.Services.GetRequiredService<BitcaskServerHostedService>()).ToArray();
            Assert.All(services, s => Assert.Equal("hosted", File.ReadAllText(Path.Combine(root, $"n{Array.IndexOf(services, s)}", "raft", "cluster-id")).Trim()));
            await Cluster.Eventually(() => services.Count(s => s.Node!.IsLeader) == 1, "one leader");
            var follower = Array.FindIndex(services, s => !s.Node!.IsLeader);
            using (var conn = new RespConnection(resp[follower]))
                Assert.Equal("OK", conn.Ok("SET", "hosted", "yes"));
            for (var i = 0; i < 3; i++)
            {
                using var conn = new RespConnection(resp[i]);
                Assert.Equal("yes", conn.Ok("GET", "hosted"));
                Assert.Contains("cluster_id:hosted\r\n", (string)conn.Ok("INFO", "replication")!);
            }
        }
        finally
        {
            foreach (var h in hosts) { await h.StopAsync(); h.Dispose(); }
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
