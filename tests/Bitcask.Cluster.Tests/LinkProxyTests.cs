using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bitcask.Cluster.Tests.Infrastructure;

namespace Bitcask.Cluster.Tests;

/// <summary>
/// The partition proxy on its own: it forwards, tells which process opened a connection (a bash child standing in for
/// node 1, talking to an echo listener standing in for node 0's Raft port), holds exactly the blackholed direction and
/// forwards again after a heal.
/// </summary>
public class LinkProxyTests
{
    [Fact]
    public async Task The_proxy_identifies_the_opening_process_blackholes_only_the_named_direction_and_heals()
    {
        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        using var stop = new CancellationTokenSource();
        var echoLoop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var socket = await echo.AcceptSocketAsync(stop.Token);
                _ = Task.Run(async () =>
                {
                    using var stream = new NetworkStream(socket, ownsSocket: true);
                    try { await stream.CopyToAsync(stream, stop.Token); } catch (Exception e) when (e is IOException or OperationCanceledException) { }
                });
            }
        });
        var bashPid = 0;
        using var proxy = new LinkProxy(2, _ => ((IPEndPoint)echo.LocalEndpoint).Port, node => node == 1 && Volatile.Read(ref bashPid) is > 0 and var pid ? pid : null);

        string Ping()
        {
            // bash opens the connection itself (/dev/tcp), after its pid is known to the proxy
            var script = $"sleep 0.3; exec 3<>/dev/tcp/127.0.0.1/{proxy.ProxyPort(0)} || exit 3; echo ping >&3; read -t 2 line <&3 && echo \"got $line\"";
            using var bash = Process.Start(new ProcessStartInfo("bash", ["-c", script]) { RedirectStandardOutput = true, UseShellExecute = false })!;
            Volatile.Write(ref bashPid, bash.Id);
            var text = bash.StandardOutput.ReadToEnd();
            bash.WaitForExit();
            return text.Trim();
        }

        try
        {
            Assert.Equal("got ping", Ping());
            Assert.Equal(0, proxy.Counters.Unidentified);

            proxy.Blackhole(0, 1); // the other direction: node 1's connections to node 0 still pass
            Assert.Equal("got ping", Ping());

            proxy.Blackhole(1, 0);
            Assert.Equal("", Ping());
            Assert.Equal(1, proxy.Counters.Held);
            Assert.Equal(0, proxy.Counters.Unidentified);

            proxy.HealAll();
            Assert.Equal("got ping", Ping());
        }
        finally
        {
            stop.Cancel();
            echo.Stop();
            try { await echoLoop; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        }
    }
}
