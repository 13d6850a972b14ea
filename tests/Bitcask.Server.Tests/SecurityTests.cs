using System.Net;
using System.Text;
using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>RELIABILITY.md §6 for the server (items 28–30 and 32): loopback by default, a password for anything else,
/// limits on clients, idle time, query and output buffers, and no half-applied command.</summary>
public class SecurityTests
{
    [Fact]
    public async Task A_non_loopback_bind_without_a_password_is_refused_and_loopback_is_the_default()
    {
        using var dir = new TempDir();
        using var store = BitcaskStore.Open(dir.Path);
        var e = Assert.Throws<ArgumentException>(() => new BitcaskServer(store, new BitcaskServerOptions { BindAddress = IPAddress.Any }));
        Assert.Contains("without a password", e.Message);
        Assert.Equal(IPAddress.Loopback, new BitcaskServerOptions().BindAddress);
        await using var server = new BitcaskServer(store, new BitcaskServerOptions { BindAddress = IPAddress.Any, Password = "pw", Port = 0 });
        await server.StartAsync();
        Assert.Equal(IPAddress.Any, server.EndPoint!.Address);
    }

    [Fact]
    public async Task With_a_password_every_command_but_auth_hello_quit_answers_noauth_and_a_wrong_password_wrongpass()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { Password = "s3cret" });
        using var client = host.Connect();
        Assert.Equal(new RespError("NOAUTH Authentication required."), client.Call("SET", "k", "v"));
        Assert.Equal(new RespError("NOAUTH Authentication required."), client.Call("GET", "k"));
        Assert.Equal(new RespError("WRONGPASS invalid username-password pair or user is disabled."), client.Call("AUTH", "nope"));
        Assert.Equal(new RespError("WRONGPASS invalid username-password pair or user is disabled."), client.Call("AUTH", "other", "s3cret"));
        Assert.StartsWith("NOAUTH HELLO must be called", ((RespError)client.Call("HELLO", "3")!).Message);
        Assert.Equal(new RespSimple("OK"), client.Call("AUTH", "s3cret"));
        Assert.Equal(new RespSimple("OK"), client.Call("SET", "k", "v"));
        using var second = host.Connect();
        var hello = Assert.IsType<RespMap>(second.Call("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "app"));
        Assert.Contains(hello.Pairs, p => Equals(p.Key, "proto") && Equals(p.Value, 3L));
        Assert.Equal("v", second.Call("GET", "k"));
        Assert.Equal("app", second.Call("CLIENT", "GETNAME"));
        Assert.Equal(new RespSimple("RESET"), second.Call("RESET"));
        Assert.Equal(new RespError("NOAUTH Authentication required."), second.Call("GET", "k")); // RESET signs out
        using var fresh = host.Connect();
        Assert.Equal(new RespError("NOAUTH Authentication required."), fresh.Call("CONFIG", "GET", "requirepass"));
        Assert.Equal(new RespSimple("OK"), fresh.Call("QUIT"));
    }

    [Fact]
    public async Task Before_auth_a_request_of_more_than_10_arguments_or_a_bulk_over_16_KiB_is_a_protocol_error()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { Password = "pw" });
        using (var client = host.Connect())
        {
            client.SendRaw("*11\r\n");
            Assert.Equal(new RespError("ERR Protocol error: invalid multibulk length"), client.Read());
            Assert.True(client.IsClosedByServer(TimeSpan.FromSeconds(10)));
        }
        using (var client = host.Connect())
        {
            client.SendRaw("*2\r\n$4\r\nAUTH\r\n$20000\r\n");
            Assert.Equal(new RespError("ERR Protocol error: invalid bulk length"), client.Read());
            Assert.True(client.IsClosedByServer(TimeSpan.FromSeconds(10)));
        }
    }

    [Fact]
    public async Task Clients_over_maxclients_get_the_redis_error_and_are_closed_and_a_freed_slot_is_reusable()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { MaxClients = 2 });
        using var first = host.Connect();
        using var second = host.Connect();
        Assert.Equal(new RespSimple("PONG"), first.Call("PING"));
        Assert.Equal(new RespSimple("PONG"), second.Call("PING"));
        using (var third = host.Connect())
        {
            Assert.Equal(new RespError("ERR max number of clients reached"), third.Read());
            Assert.True(third.IsClosedByServer(TimeSpan.FromSeconds(10)));
        }
        first.Call("QUIT");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (host.Server.ClientCount > 1 && DateTime.UtcNow < deadline) await Task.Delay(20);
        using var fourth = host.Connect();
        Assert.Equal(new RespSimple("PONG"), fourth.Call("PING"));
    }

    [Fact]
    public async Task An_idle_client_is_closed_after_the_timeout_but_an_active_one_and_a_subscriber_stay()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { IdleTimeout = TimeSpan.FromMilliseconds(1500) });
        using var idle = host.Connect();
        using var active = host.Connect();
        using var subscriber = host.Connect();
        Assert.Equal(new RespSimple("PONG"), idle.Call("PING"));
        subscriber.Call("SUBSCRIBE", "ch");
        for (var i = 0; i < 60; i++) // 3 s: twice the timeout
        {
            Assert.Equal(new RespSimple("PONG"), active.Call("PING"));
            await Task.Delay(50);
        }
        Assert.True(idle.IsClosedByServer(TimeSpan.FromSeconds(5)), "the idle client was not closed");
        Assert.Equal(new RespSimple("PONG"), active.Call("PING"));
        Assert.Equal(1L, active.Call("PUBLISH", "ch", "still here"));
        Assert.Equal(new List<object?> { "message", "ch", "still here" }, subscriber.Read());
    }

    [Fact]
    public async Task A_partial_command_over_the_query_buffer_limit_closes_that_client_only()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { MaxQueryBufferBytes = 64 * 1024 });
        using var bystander = host.Connect();
        using var greedy = host.Connect();
        greedy.SendRaw("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n");
        greedy.SendRaw(new byte[100 * 1024]); // never completes the value: over the limit
        Assert.True(greedy.IsClosedByServer(TimeSpan.FromSeconds(10)), "a client over the query buffer limit stayed connected");
        Assert.Equal(new RespSimple("PONG"), bystander.Call("PING"));
        Assert.Null(host.Store.Get("k"u8));
    }

    [Fact]
    public async Task A_bulk_longer_than_the_stores_largest_value_is_a_protocol_error_before_any_byte_of_it_is_buffered()
    {
        await using var host = await ServerHost.StartAsync(storeOptions: new BitcaskOptions { MaxValueBytes = 1 << 20 });
        using var client = host.Connect();
        Assert.Equal(new List<object?> { "proto-max-bulk-len", (1 << 20).ToString() }, client.Call("CONFIG", "GET", "proto-max-bulk-len"));
        client.SendRaw($"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${(1 << 20) + 1}\r\n");
        Assert.Equal(new RespError("ERR Protocol error: invalid bulk length"), client.Read());
        Assert.True(client.IsClosedByServer(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_client_that_disconnects_halfway_through_a_set_leaves_nothing_applied()
    {
        await using var host = await ServerHost.StartAsync(durability: Durability.Synced);
        using (var client = host.Connect())
        {
            client.SendRaw("*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100\r\n" + new string('x', 50));
            client.SendRaw("");
        }
        using (var client = host.Connect())
        {
            client.SendRaw("MULTI\r\nSET t1 a\r\n*3\r\n$3\r\nSET\r\n$2\r\nt2\r\n$10\r\nabc"); // mid-transaction, mid-frame
        }
        await Task.Delay(300);
        using var check = host.Connect();
        Assert.Equal(0L, check.Call("EXISTS", "half", "t1", "t2"));
        Assert.Equal(0L, host.Store.Count);
    }

    [Fact]
    public async Task A_subscriber_that_never_reads_is_disconnected_at_the_output_limit_and_the_publisher_is_not_slowed()
    {
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { MaxOutputBufferBytes = 1 << 20 });
        using var slow = host.Connect();
        slow.Call("SUBSCRIBE", "firehose");
        slow.Socket.ReceiveBufferSize = 4096;
        using var publisher = host.Connect();
        var message = new string('m', 64 * 1024);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        long receivers = 1;
        while (receivers == 1 && DateTime.UtcNow < deadline) receivers = (long)publisher.Call("PUBLISH", "firehose", message)!;
        Assert.Equal(0L, receivers); // the slow subscriber was dropped: nobody listens any more
        Assert.Contains("client_output_buffer_limit_disconnections:1", (string)publisher.Call("INFO", "stats")!);
    }

    [Fact]
    public async Task A_client_pipelining_big_gets_without_reading_has_its_buffered_replies_bounded()
    {
        const int limit = 1 << 20;
        await using var host = await ServerHost.StartAsync(new BitcaskServerOptions { MaxOutputBufferBytes = limit });
        using var setup = host.Connect();
        setup.SendRaw(RespConnection.Encode("SET", "big", new byte[256 * 1024]));
        Assert.Equal(new RespSimple("OK"), setup.Read());
        using var slow = host.Connect();
        slow.Socket.ReceiveBufferSize = 4096;
        slow.Call("CLIENT", "SETNAME", "slow");
        var request = RespConnection.Encode("GET", "big");
        var all = new byte[request.Length * 200];
        for (var i = 0; i < 200; i++) request.CopyTo(all, i * request.Length);
        _ = Task.Run(() => { try { slow.SendRaw(all); } catch (IOException) { } });
        await Task.Delay(1500);
        var list = (string)setup.Call("CLIENT", "LIST")!;
        var line = list.Split('\n').Single(l => l.Contains("name=slow "));
        var omem = long.Parse(line.Split(' ').Single(f => f.StartsWith("omem=")).Split('=')[1]);
        Assert.InRange(omem, 0, limit + 300 * 1024); // 200 replies would be 50 MiB: the server stopped reading instead
        Assert.Equal(new RespSimple("PONG"), setup.Call("PING"));
    }

    [Fact]
    public async Task Graceful_stop_answers_the_command_in_flight_syncs_and_refuses_new_clients()
    {
        var host = await ServerHost.StartAsync(durability: Durability.Synced);
        var port = host.Port;
        try
        {
            using var client = host.Connect();
            Assert.Equal(new RespSimple("OK"), client.Call("SET", "before", "stop"));
            client.SendRaw(RespConnection.Encode("SET", "during", "stop"));
            var stopping = host.Server.StopAsync();
            Assert.Equal(new RespSimple("OK"), client.Read());
            await stopping.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(client.IsClosedByServer(TimeSpan.FromSeconds(10)));
            Assert.Throws<System.Net.Sockets.SocketException>(() => RespConnection.Open(port));
            Assert.Equal("stop"u8.ToArray(), host.Store.Get("during"u8));
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bitcask-server-tests", Guid.NewGuid().ToString("N")[..12]);
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
