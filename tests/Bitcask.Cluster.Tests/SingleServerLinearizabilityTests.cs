using System.Diagnostics;
using Bitcask.Cluster.Tests.Infrastructure;
using Bitcask.Testing.Linearizability;
using Xunit.Abstractions;

namespace Bitcask.Cluster.Tests;

/// <summary>
/// RELIABILITY item 32 for one server: a concurrent RESP client history against a 'bitcask serve --durability Synced'
/// child that is killed with SIGKILL and restarted several times during the workload is linearizable (operations whose
/// outcome a client never learned count as possibly applied), and no acknowledged write is lost.
/// </summary>
public class SingleServerLinearizabilityTests(ITestOutputHelper output)
{
    [Fact]
    public void A_history_of_6_clients_across_kill_9_and_restarts_of_a_synced_server_is_linearizable_and_loses_no_acknowledged_write()
    {
        var directory = TestEnvironment.NewDirectory("lin-single");
        var port = TestEnvironment.FreePort();
        string[] arguments = [directory, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--durability", "Synced"];
        var seed = Environment.TickCount;
        var soak = TestEnvironment.Soak;
        var server = new ServeProcess(arguments, "bitcask serve");
        try
        {
            server.WaitReady();
            using var workload = new RegisterWorkload([port], clients: 6, keys: 8, prefix: "", seed, TimeSpan.FromSeconds(10));
            workload.Start();
            var random = new Random(seed);
            var kills = 0;
            var clock = Stopwatch.StartNew();
            while (kills < 3 || (soak is { } s && clock.Elapsed < s))
            {
                Thread.Sleep(random.Next(600, 1500));
                server.Kill9();
                server.Dispose();
                kills++;
                Thread.Sleep(random.Next(0, 300));
                server = new ServeProcess(arguments, "bitcask serve");
                server.WaitReady();
            }
            Thread.Sleep(500);
            var history = workload.Stop();
            workload.AppendFinalReads(history, port, client: 99);

            var watch = Stopwatch.StartNew();
            var result = LinearizabilityChecker.Check(history);
            output.WriteLine($"seed {seed}, {kills} kills in {clock.Elapsed.TotalSeconds:0.0} s: {RegisterWorkload.Describe(history, workload.Errors)}; " +
                $"{workload.Journal.Count} journal writes acknowledged; {result.States} states searched in {watch.ElapsedMilliseconds} ms: {result.Explanation}");
            Assert.True(history.Count(o => !o.OutcomeUnknown && o.Kind != RegisterOpKind.Get) > 100, "the workload made too little progress");
            Assert.False(result.Inconclusive, result.Explanation);
            Assert.True(result.Linearizable, $"seed {seed}: {result.Explanation}");

            using var client = RespConnection.Open(port);
            foreach (var (key, value) in workload.Journal)
            {
                var actual = client.Call("GET", key);
                Assert.True(value == actual as string, $"acknowledged write of {key} lost: expected {value}, found {actual ?? "(nil)"}");
            }
            Assert.Equal(0, server.Terminate());
        }
        finally
        {
            server.Dispose();
            TestEnvironment.DeleteDirectory(directory);
        }
    }
}
