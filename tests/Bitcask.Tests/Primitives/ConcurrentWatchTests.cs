using System.Text;
using Xunit.Abstractions;

namespace Bitcask.Tests.Primitives;

/// <summary>A watcher running beside 4 writer threads (puts, CAS, deletes, batches, increments) sees every revision
/// exactly once, in order, and what it sees replays to the store's final state.</summary>
public class ConcurrentWatchTests(ITestOutputHelper output)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData(Durability.Flushed)]
    [InlineData(Durability.Synced)]
    public async Task A_live_watch_beside_4_writer_threads_sees_every_revision_once_in_order_and_replays_to_the_final_state(Durability durability)
    {
        using var dir = new TempDirectory("watch-concurrent");
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false, Durability = durability, MaxSegmentBytes = 16 << 10 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = new List<WatchEvent>();
        await using var watch = store.Watch(B("w/"), 1, cts.Token).GetAsyncEnumerator(cts.Token);
        var first = watch.MoveNextAsync(); // subscribes from revision 1
        var perThread = durability == Durability.Synced ? 150 : 500;
        var writers = Enumerable.Range(0, 4).Select(t => Task.Factory.StartNew(() =>
        {
            var random = new Random(t);
            for (var i = 0; i < perThread; i++)
            {
                var key = B($"w/{random.Next(8)}");
                switch (random.Next(5))
                {
                    case 0:
                        store.Put(key, B($"t{t}-{i}"));
                        break;
                    case 1:
                        var version = store.GetInfo(key)?.Version ?? 0;
                        store.CompareAndSet(key, version, B($"cas{t}-{i}"));
                        break;
                    case 2:
                        store.Delete(key);
                        break;
                    case 3:
                        store.Write(new WriteBatch().Put(key, B($"b{t}-{i}")).Put(B($"w/{random.Next(8)}"), B($"b{t}-{i}'")));
                        break;
                    default:
                        store.Increment(B($"w/n{random.Next(2)}"));
                        break;
                }
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(writers);
        var last = store.Revision;
        Assert.True(await first);
        seen.Add(watch.Current);
        while (seen[^1].Revision < last && await watch.MoveNextAsync()) seen.Add(watch.Current);
        Assert.Equal(Enumerable.Range(1, (int)last).Select(r => (long)r), seen.Select(e => e.Revision));
        var replayed = new Dictionary<string, (string Value, long Version)>();
        foreach (var e in seen)
        {
            var key = Encoding.UTF8.GetString(e.Key);
            var previous = replayed.TryGetValue(key, out var p) ? p.Version : 0;
            Assert.True(previous == e.PreviousVersion, $"{e.Kind} {key}@{e.Revision}: previous version {e.PreviousVersion}, replay says {previous}");
            if (e.Kind == WatchEventKind.Put) replayed[key] = (Encoding.UTF8.GetString(e.Value!), e.Revision);
            else replayed.Remove(key);
        }
        foreach (var key in store.Keys(B("w/")).Select(k => Encoding.UTF8.GetString(k)).Union(replayed.Keys))
        {
            var info = store.GetInfo(B(key));
            Assert.True(replayed.TryGetValue(key, out var r) ? info?.Version == r.Version && store.GetString(key) == r.Value : info is null, $"{key}: store {info}, replay {r}");
        }
        output.WriteLine($"{durability}: {seen.Count} events");
    }
}
