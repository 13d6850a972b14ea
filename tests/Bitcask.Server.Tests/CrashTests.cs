using System.Collections.Concurrent;
using System.Diagnostics;
using Bitcask.Server.Tests.Infrastructure;

namespace Bitcask.Server.Tests;

/// <summary>kill -9 of a child 'bitcask serve' during a client workload in Synced mode loses no acknowledged write.</summary>
public class CrashTests
{
    [Fact]
    public async Task Kill_9_of_the_server_during_a_synced_client_workload_loses_no_acknowledged_write()
    {
        var directory = Path.Combine(Path.GetTempPath(), "bitcask-server-crash-" + Guid.NewGuid().ToString("N")[..8]);
        var acknowledged = new ConcurrentDictionary<string, string>();
        var counterAcks = new ConcurrentBag<long>();
        try
        {
            for (var round = 0; round < 3; round++)
            {
                using var child = new ServeProcess(directory, "Synced");
                var port = child.WaitReady();
                using var stop = new CancellationTokenSource();
                var clients = Enumerable.Range(0, 4).Select(c => Task.Factory.StartNew(() =>
                {
                    try
                    {
                        using var client = RespConnection.Open(port);
                        for (var i = 0; !stop.IsCancellationRequested; i++)
                        {
                            var key = $"r{round}:c{c}:{i}";
                            var value = $"value-{round}-{c}-{i}";
                            if (client.Call("SET", key, value) is RespSimple { Text: "OK" }) acknowledged[key] = value;
                            if (client.Call("HSET", $"h{c}", $"r{round}:{i}", value) is long) acknowledged[$"h{c}|r{round}:{i}"] = value;
                            if (client.Call("INCR", "counter") is long n) counterAcks.Add(n);
                        }
                    }
                    catch (Exception e) when (e is IOException or EndOfStreamException or System.Net.Sockets.SocketException)
                    {
                        // the server died under us: the write in flight may or may not have applied
                    }
                }, TaskCreationOptions.LongRunning)).ToArray();
                await Task.Delay(TimeSpan.FromMilliseconds(800 + 400 * round));
                child.Kill9();
                stop.Cancel();
                await Task.WhenAll(clients);
            }
            Assert.True(acknowledged.Count > 50, $"the workload made too little progress ({acknowledged.Count} acknowledged writes)");
            using (var check = new ServeProcess(directory, "Synced"))
            {
                var port = check.WaitReady();
                using var client = RespConnection.Open(port);
                foreach (var (key, value) in acknowledged)
                {
                    var parts = key.Split('|');
                    var actual = parts.Length == 2 ? client.Call("HGET", parts[0], parts[1]) : client.Call("GET", key);
                    Assert.True(value == (string?)actual, $"acknowledged write of {key} lost: expected {value}, found {actual ?? "(nil)"}");
                }
                var counter = long.Parse((string)client.Call("GET", "counter")!);
                Assert.True(counter >= counterAcks.Max(), $"counter {counter} is below an acknowledged INCR reply {counterAcks.Max()}");
                Assert.Equal(0, check.Terminate()); // SIGTERM: a graceful stop, exit 0
            }
        }
        finally
        {
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }
}
