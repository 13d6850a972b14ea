namespace Bitcask.Tests;

/// <summary>A watch that starts from the next revision while a put to its prefix is being committed must see that put:
/// the subscription reads the applied revision and the leader checks for subscribers; neither may miss the other.</summary>
public sealed class WatchSubscribeRaceTests
{
    [Fact]
    public async Task A_watch_from_the_next_revision_sees_a_put_committed_while_it_subscribes()
    {
        using var dir = new TempDirectory("watchrace");
        using var store = BitcaskStore.Open(dir.Path);
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("BITCASK_WATCH_RACE_ROUNDS"), out var r) ? r : 1000;
        for (var round = 0; round < rounds; round++)
        {
            var from = store.Revision + 1;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using var ready = new ManualResetEventSlim();
            var watcher = Task.Run(async () =>
            {
                ready.Set();
                await foreach (var e in store.Watch("race/"u8.ToArray(), from, cts.Token)) return e.Revision;
                return -1L;
            });
            ready.Wait();
            store.Put("race/k"u8, BitConverter.GetBytes(round)); // races with the watcher's subscription
            var seen = await watcher.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : -2);
            Assert.True(seen == from, $"round {round}: the watch from revision {from} saw {seen} (-2: nothing within 10 s)");
        }
    }
}
