using System.Net.Sockets;
using Bitcask.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.Server.Tests;

/// <summary>
/// RELIABILITY.md §6 item 30, the many-clients variants: 10,000 idle connections hold little memory (no read buffer
/// each), do not stop other clients being served, and each stays usable; a slowloris client (a request a byte at a
/// time) is cut by the idle timeout, and one trickling a huge request by the query-buffer limit, while the others are
/// served. Behaviour is asserted, never a time.
/// </summary>
public class ConnectionLimitTests(ITestOutputHelper output)
{
    [NeedsOpenFilesFact(10_500)]
    public void Ten_thousand_idle_connections_hold_little_memory_and_do_not_stop_other_clients_being_served()
    {
        const int idle = 10_000;
        var directory = Path.Combine(Path.GetTempPath(), "bitcask-server-idle-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var clients = new List<TcpClient>(idle);
        try
        {
            // A child process: the 10,000 server-side sockets and the 10,000 client-side ones each stay within the
            // per-process descriptor limit.
            using var server = new ServeProcess(directory, "Flushed", "--maxclients", (idle + 100).ToString());
            var port = server.WaitReady();
            using var active = RespConnection.Open(port);
            var before = server.ResidentBytes();
            for (var i = 0; i < idle; i++)
            {
                var client = new TcpClient { NoDelay = true };
                client.Connect("127.0.0.1", port);
                clients.Add(client);
                if (i % 1000 == 999) Assert.Equal(new RespSimple("OK"), active.Call("SET", $"progress{i}", "v"));
            }
            // The accept loop takes the last connections from the listen backlog while the active client is served.
            int Connected()
            {
                var info = (string)active.Call("INFO", "clients")!;
                return int.Parse(info.Split("\r\n").Single(l => l.StartsWith("connected_clients:", StringComparison.Ordinal)).Split(':')[1]);
            }
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (Connected() < idle + 1 && DateTime.UtcNow < deadline) Thread.Sleep(100);
            Assert.True(Connected() >= idle + 1, $"the server reports {Connected()} clients, expected every idle one and the active one");
            for (var i = 0; i < 500; i++)
            {
                Assert.Equal(new RespSimple("OK"), active.Call("SET", $"k{i}", $"v{i}"));
                Assert.Equal($"v{i}", active.Call("GET", $"k{i}"));
            }
            using (var late = RespConnection.Open(port))
                Assert.Equal(new RespSimple("PONG"), late.Call("PING"));
            var rng = new Random(5);
            for (var n = 0; n < 100; n++)
            {
                var stream = clients[rng.Next(idle)].GetStream();
                stream.Write("*1\r\n$4\r\nPING\r\n"u8);
                var reply = new byte[7];
                stream.ReadExactly(reply);
                Assert.Equal("+PONG\r\n"u8.ToArray(), reply);
            }
            var after = server.ResidentBytes();
            output.WriteLine($"server resident memory: {before / 1048576.0:F0} MiB before, {after / 1048576.0:F0} MiB with {idle} idle clients " +
                             $"({(after - before) / (double)idle / 1024:F1} KiB each)");
            // An idle client holds no read buffer (60 KiB each before): 10,000 of them cannot exhaust the server's memory.
            Assert.True(after - before < idle * 32L * 1024, $"{idle} idle clients took {(after - before) / 1048576} MiB of server memory");
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task A_slowloris_client_sending_a_byte_at_a_time_is_cut_by_the_idle_timeout_while_others_are_served()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { IdleTimeout = TimeSpan.FromSeconds(1) });
        using var slow = host.Connect();
        using var active = host.Connect();
        var request = RespConnection.Encode("SET", "slow", new string('x', 200)); // 200+ bytes at one per 20 ms: over 4 s
        var cut = false;
        var served = 0;
        for (var i = 0; i < request.Length && !cut; i++)
        {
            try
            {
                slow.Socket.Send(request.AsSpan(i, 1));
            }
            catch (SocketException)
            {
                cut = true;
                break;
            }
            Assert.Equal(new RespSimple("PONG"), active.Call("PING"));
            served++;
            await Task.Delay(20);
            cut = slow.Socket.Poll(0, SelectMode.SelectRead) && slow.Socket.Available == 0; // the server closed it
        }
        Assert.True(cut || slow.IsClosedByServer(TimeSpan.FromSeconds(5)), "the slowloris client was never closed");
        Assert.True(served > 0);
        Assert.Null(host.Store.Get("slow"u8));
        Assert.Equal(new RespSimple("PONG"), active.Call("PING"));
    }

    [Fact]
    public async Task A_client_trickling_a_huge_request_is_cut_by_the_query_buffer_limit_while_others_are_served()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions
        {
            IdleTimeout = TimeSpan.FromSeconds(60), // never reached: the query-buffer limit cuts first
            MaxQueryBufferBytes = 64 * 1024,
        });
        using var slow = host.Connect();
        using var active = host.Connect();
        slow.SendRaw("*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$1000000\r\n");
        var chunk = new byte[2048];
        var sent = 0;
        var cut = false;
        while (sent < 1_000_000 && !cut)
        {
            try
            {
                slow.Socket.Send(chunk);
                sent += chunk.Length;
            }
            catch (SocketException)
            {
                cut = true;
            }
            Assert.Equal(new RespSimple("PONG"), active.Call("PING"));
            await Task.Delay(5);
            cut |= slow.Socket.Poll(0, SelectMode.SelectRead) && slow.Socket.Available == 0;
        }
        Assert.True(cut || slow.IsClosedByServer(TimeSpan.FromSeconds(5)), "the client was never cut");
        Assert.True(sent < 1_000_000, $"the whole request ({sent} bytes) was taken although the limit is 64 KiB");
        Assert.Null(host.Store.Get("huge"u8));
    }
}
