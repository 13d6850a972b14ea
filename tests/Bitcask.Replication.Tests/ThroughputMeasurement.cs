using System.Diagnostics;
using Xunit.Abstractions;

namespace Bitcask.Replication.Tests;

/// <summary>Committed writes/s on a 3-node loopback cluster with 1 and 16 concurrent proposers, against a single
/// Synced store measured in the same run. Prints figures only (speed is never asserted); runs when
/// BITCASK_RAFT_BENCH is set (e.g. =3 seconds per measurement).</summary>
public sealed class ThroughputMeasurement(ITestOutputHelper output)
{
    [MeasurementFact]
    public async Task Measure_committed_writes_per_second_with_1_and_16_proposers()
    {
        var seconds = MeasurementFactAttribute.Seconds;
        await using var c = await Cluster.StartAsync();
        var leader = c.Node(c.Leader());
        var dir = Path.Combine(Path.GetTempPath(), "bitcask-raft-peer-" + Guid.NewGuid().ToString("N"));
        using (var single = BitcaskStore.Open(dir, new BitcaskOptions { Durability = Durability.Synced }))
        {
            foreach (var writers in new[] { 1, 16 })
            {
                var raft = await RunAsync(writers, seconds, (w, i) => leader.PutAsync($"w{w}:{i % 1000}", "value-0123456789"));
                var peer = await RunAsync(writers, seconds, (w, i) => single.PutAsync(System.Text.Encoding.UTF8.GetBytes($"w{w}:{i % 1000}"), "value-0123456789"u8.ToArray()).AsTask());
                output.WriteLine($"{writers} proposers: raft {raft:F0} writes/s, single Synced store {peer:F0} writes/s, ratio {raft / peer:F2}");
            }
        }
        Directory.Delete(dir, recursive: true);
        var last = await leader.GetStringAsync("w0:0");
        Assert.Equal("value-0123456789", last);
    }

    private static async Task<double> RunAsync(int writers, int seconds, Func<int, int, Task> write)
    {
        var until = Stopwatch.StartNew();
        var count = 0L;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; until.Elapsed.TotalSeconds < seconds; i++)
            {
                await write(w, i);
                Interlocked.Increment(ref count);
            }
        })));
        return count / until.Elapsed.TotalSeconds;
    }
}

/// <summary>A fact that runs only when BITCASK_RAFT_BENCH names a positive number of seconds per measurement.</summary>
internal sealed class MeasurementFactAttribute : FactAttribute
{
    internal static int Seconds =>
        int.TryParse(Environment.GetEnvironmentVariable("BITCASK_RAFT_BENCH"), out var s) && s > 0 ? s : 0;

    public MeasurementFactAttribute()
    {
        if (Seconds == 0) Skip = "measurement: set BITCASK_RAFT_BENCH=<seconds per run>";
    }
}
