using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Tests.Primitives;

/// <summary>Minimal repros found by <see cref="PrimitivesModelTests"/>: every TTL expiry must reach a watcher.</summary>
public class ExpireEventTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task Compaction_of_an_expired_unswept_key_loses_its_expire_event()
    {
        using var dir = new TempDirectory();
        var clock = new ManualSweepClock(new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false, TimeProvider = clock });
        store.Put(B("cfg/session"), B("s1"), TimeSpan.FromSeconds(1)); // revision 1
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var watch = store.Watch(B("cfg/"), 2, cts.Token).GetAsyncEnumerator(cts.Token);
        var next = watch.MoveNextAsync(); // subscribed: live from revision 2
        clock.Fake.Advance(TimeSpan.FromSeconds(2)); // expired: reads miss it, the keydir still holds it until a sweep
        store.Compact(); // runs before the sweeper's next tick (250 ms in production; a background compaction may too)
        store.SweepExpiredForTests();
        store.Put(B("cfg/other"), B("x"));
        Assert.True(await next);
        // Expected: an Expire event for cfg/session (previous version 1) before the put. Today the first event is the put:
        // the watcher's view keeps cfg/session = s1 forever.
        Assert.Equal((WatchEventKind.Expire, "cfg/session", 1L), (watch.Current.Kind, Encoding.UTF8.GetString(watch.Current.Key), watch.Current.PreviousVersion));
    }
}
