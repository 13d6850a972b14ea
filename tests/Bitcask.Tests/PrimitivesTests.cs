using System.Buffers;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Tests;

/// <summary>Versions, conditional writes, counters, leases and watch: the primitives services build caches, configuration,
/// rate limits and leader election on.</summary>
public class PrimitivesTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static string S(byte[]? b) => b is null ? "<null>" : Encoding.UTF8.GetString(b);
    private static readonly BitcaskOptions Options = new() { CompactionEnabled = false, MaxSegmentBytes = 64 << 10 };

    [Fact]
    public void Versions_are_revisions_that_only_grow_and_create_revision_restarts_after_a_delete()
    {
        using var dir = new TempDirectory();
        long first, second;
        using (var store = BitcaskStore.Open(dir.Path, Options))
        {
            Assert.Equal(0, store.Revision);
            store.Put("k", "1");
            var info = store.GetInfo(B("k"))!.Value;
            first = info.Version;
            Assert.Equal(store.Revision, first);
            Assert.Equal(first, info.CreateRevision);
            Assert.Equal(1, info.ValueLength);
            store.Put("k", "22");
            info = store.GetInfo(B("k"))!.Value;
            second = info.Version;
            Assert.True(second > first);
            Assert.Equal(first, info.CreateRevision); // an overwrite keeps the create revision
            store.Delete("k");
            Assert.Null(store.GetInfo(B("k")));
            store.Put("k", "3");
            info = store.GetInfo(B("k"))!.Value;
            Assert.Equal(info.Version, info.CreateRevision); // created again
            store.Compact();
        }
        using (var store = BitcaskStore.Open(dir.Path, Options))
        {
            var info = store.GetInfo(B("k"))!.Value;
            Assert.True(info.Version > second);
            Assert.Equal(info.Version, store.Revision);
            var buffer = new ArrayBufferWriter<byte>();
            Assert.True(store.TryGetEntry(B("k"), buffer, out var entry));
            Assert.Equal("3", Encoding.UTF8.GetString(buffer.WrittenSpan));
            Assert.Equal(info, entry);
            store.Put("other", "x");
            Assert.True(store.Revision > info.Version);
        }
    }

    [Fact]
    public void Conditional_writes_apply_only_when_their_condition_holds_and_write_nothing_otherwise()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        Assert.True(store.PutIfAbsent(B("lock"), B("a")));
        Assert.False(store.PutIfAbsent(B("lock"), B("b")));
        var version = store.GetInfo(B("lock"))!.Value.Version;
        var revision = store.Revision;
        Assert.False(store.CompareAndSet(B("lock"), version + 1, B("c")));
        Assert.False(store.CompareAndSet(B("lock"), 0, B("c")));
        Assert.Equal(revision, store.Revision); // nothing written
        Assert.True(store.CompareAndSet(B("lock"), version, B("c")));
        Assert.Equal("c", store.GetString("lock"));
        var newer = store.GetInfo(B("lock"))!.Value.Version;
        Assert.False(store.CompareAndDelete(B("lock"), version));
        Assert.True(store.CompareAndDelete(B("lock"), newer));
        Assert.Null(store.GetString("lock"));
        Assert.False(store.CompareAndDelete(B("lock"), newer));

        var batch = new WriteBatch().Put("x", "1").Put("y", "2").RequireAbsent(B("x")).RequireExists(B("y"));
        Assert.False(store.TryWrite(batch)); // y does not exist
        Assert.Null(store.GetString("x"));
        store.Put("y", "0");
        Assert.True(store.TryWrite(batch));
        Assert.Equal(("1", "2"), (store.GetString("x"), store.GetString("y")));
        var yVersion = store.GetInfo(B("y"))!.Value.Version;
        Assert.True(store.TryWrite(new WriteBatch().Delete("x").RequireVersion(B("y"), yVersion)));
        Assert.False(store.TryWrite(new WriteBatch().Delete("y").RequireVersion(B("y"), yVersion + 100)));
        Assert.Equal("2", store.GetString("y"));
        Assert.Throws<ArgumentException>(() => store.Write(new WriteBatch().Put("z", "1").RequireAbsent(B("z"))));
    }

    [Fact]
    public void Conditions_see_the_writes_before_them_in_the_same_commit_group()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options with { Durability = Durability.Synced });
        // 16 threads race PutIfAbsent on the same 20 keys: every key has exactly one winner, whatever groups form.
        var wins = new int[20];
        Parallel.For(0, 16, t =>
        {
            for (var k = 0; k < 20; k++)
                if (store.PutIfAbsent(B($"race{k}"), B($"t{t}"))) Interlocked.Increment(ref wins[k]);
        });
        Assert.All(wins, w => Assert.Equal(1, w));
    }

    [Fact]
    public void Increment_counts_exactly_under_16_threads_and_rejects_what_is_not_an_integer()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path, Options))
        {
            Parallel.For(0, 16, t =>
            {
                for (var i = 0; i < 200; i++) store.Increment(B($"counter{i % 10}"), 2);
            });
            for (var k = 0; k < 10; k++) Assert.Equal((16 * 200 / 10 * 2).ToString(), store.GetString($"counter{k}"));
            Assert.Equal(-5, store.Increment(B("fresh"), -5));
            store.Put("text", "12a");
            var revision = store.Revision;
            Assert.Throws<InvalidOperationException>(() => store.Increment(B("text")));
            store.Put("max", long.MaxValue.ToString());
            Assert.Throws<InvalidOperationException>(() => store.Increment(B("max")));
            Assert.Equal(long.MaxValue.ToString(), store.GetString("max"));
            Assert.Equal("12a", store.GetString("text"));
            Assert.Equal(revision + 1, store.Revision); // only the "max" put
        }
        using (var store = BitcaskStore.Open(dir.Path, Options))
            Assert.Equal("40", store.GetString("counter3") is { } c ? (long.Parse(c) / 16).ToString() : null);
    }

    [Fact]
    public void Increment_keeps_an_existing_expiry_and_gives_a_new_key_its_ttl()
    {
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var store = BitcaskStore.Open(dir.Path, Options with { TimeProvider = clock });
        Assert.Equal(1, store.Increment(B("window"), 1, TimeSpan.FromSeconds(10)));
        var expiry = store.GetInfo(B("window"))!.Value.ExpiresAt;
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(2, store.Increment(B("window"), 1, TimeSpan.FromSeconds(10)));
        Assert.Equal(expiry, store.GetInfo(B("window"))!.Value.ExpiresAt);
        clock.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(store.GetString("window"));
        Assert.Equal(1, store.Increment(B("window"), 1, TimeSpan.FromSeconds(10))); // a new window
    }

    [Fact]
    public void Update_is_an_atomic_read_modify_write_that_retries_on_a_race()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        static string Append(ReadOnlySpan<byte> value, EntryInfo? current, string add, out KeyUpdateAction action)
        {
            var next = (current is null ? "" : Encoding.UTF8.GetString(value)) + add;
            action = KeyUpdateAction.Put(Encoding.UTF8.GetBytes(next));
            return next;
        }
        Parallel.For(0, 8, t =>
        {
            for (var i = 0; i < 25; i++) store.Update(B("log"), "x", Append);
        });
        Assert.Equal(200, store.GetString("log")!.Length);
        var removed = store.Update(B("log"), 0, (ReadOnlySpan<byte> v, EntryInfo? c, int _, out KeyUpdateAction a) =>
        {
            a = KeyUpdateAction.Delete;
            return c is not null;
        });
        Assert.True(removed);
        Assert.Null(store.GetString("log"));
    }

    [Fact]
    public async Task Async_conditional_writes_and_update_behave_like_their_synchronous_forms_in_synced_mode()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options with { Durability = Durability.Synced });
        Assert.True(await store.PutIfAbsentAsync(B("k"), B("1")));
        Assert.False(await store.PutIfAbsentAsync(B("k"), B("2")));
        var version = store.GetInfo(B("k"))!.Value.Version;
        Assert.True(await store.CompareAndSetAsync(B("k"), version, B("3")));
        Assert.Equal(5, await store.IncrementAsync(B("n"), 5));
        var doubled = await store.UpdateAsync(B("n"), 2, (ReadOnlySpan<byte> v, EntryInfo? c, int factor, out KeyUpdateAction a) =>
        {
            var next = long.Parse(Encoding.UTF8.GetString(v)) * factor;
            a = KeyUpdateAction.Put(Encoding.UTF8.GetBytes(next.ToString()));
            return next;
        });
        Assert.Equal(10, doubled);
        Assert.Equal("10", store.GetString("n"));
        Assert.True(await store.TryWriteAsync(new WriteBatch().Delete("k").RequireExists(B("k"))));
        Assert.Null(store.GetString("k"));
        var lease = await store.GrantLeaseAsync(TimeSpan.FromMinutes(1));
        await store.PutAsync(B("leased"), B("x"), new WriteOptions(LeaseId: lease));
        Assert.True(await store.RevokeLeaseAsync(lease));
        Assert.Null(store.GetString("leased"));
    }

    [Fact]
    public void With_ExpireInBackground_off_the_store_hides_expired_keys_but_writes_no_tombstone_and_revokes_no_lease()
    {
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var store = BitcaskStore.Open(dir.Path, Options with { TimeProvider = clock, ExpireInBackground = false });
        var lease = store.GrantLease(TimeSpan.FromSeconds(1));
        store.Put(B("leased"), B("x"), lease);
        store.Put(B("ttl"), B("t"), TimeSpan.FromSeconds(1));
        var revision = store.Revision;
        clock.Advance(TimeSpan.FromSeconds(5)); // the sweeper's timer (on this clock) would have run many times
        store.SweepExpiredForTests();
        Assert.Null(store.Get(B("ttl")));             // hidden by the clock
        Assert.Equal(revision, store.Revision);         // but nothing written: no tombstone, no revoke
        Assert.Equal("x", store.GetString("leased"));   // the lease ends only when revoked
        Assert.True(store.RevokeLease(lease));
        Assert.Null(store.GetString("leased"));
    }

    [Fact]
    public void Leases_expire_with_a_fake_clock_deleting_every_attached_key_at_one_revision_and_keep_alive_extends_them()
    {
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var options = Options with { TimeProvider = clock };
        long lease;
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            lease = store.GrantLease(TimeSpan.FromSeconds(10));
            Assert.True(lease > 0);
            store.Put(B("leader"), B("node-1"), lease);
            store.Put(B("member/1"), B("up"), new WriteOptions(LeaseId: lease));
            store.Write(new WriteBatch().Put(B("member/2"), B("up"), lease));
            store.Put("unrelated", "stays");
            Assert.Equal(4, store.Count); // the grant is the engine's, not a key
            Assert.Throws<LeaseNotFoundException>(() => store.Put(B("x"), B("y"), 999_999));
            Assert.Null(store.GetString("x"));
            clock.Advance(TimeSpan.FromSeconds(8));
            Assert.True(store.KeepAlive(lease));
            clock.Advance(TimeSpan.FromSeconds(8)); // 16 s after the grant, 8 s after the keep-alive
            Assert.Equal("node-1", store.GetString("leader"));
        }
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            Assert.Equal("node-1", store.GetString("leader")); // a reopen gives the lease its full TTL again
            var before = store.Revision;
            clock.Advance(TimeSpan.FromSeconds(11));
            store.SweepExpiredForTests();
            Assert.Null(store.GetString("leader"));
            Assert.Null(store.GetString("member/1"));
            Assert.Null(store.GetString("member/2"));
            Assert.Equal("stays", store.GetString("unrelated"));
            Assert.False(store.KeepAlive(lease));
            Assert.Equal(before + 4, store.Revision); // one batch: three keys and the grant
            Assert.Throws<LeaseNotFoundException>(() => store.Put(B("leader"), B("node-2"), lease));
        }
    }

    [Fact]
    public void Revoking_a_lease_deletes_the_keys_still_attached_and_spares_keys_overwritten_without_it()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        var lease = store.GrantLease(TimeSpan.FromMinutes(1));
        store.Put(B("a"), B("1"), lease);
        store.Put(B("b"), B("1"), lease);
        store.Put("b", "no lease now");
        Assert.Equal(lease, store.GetInfo(B("a"))!.Value.LeaseId);
        Assert.True(store.RevokeLease(lease));
        Assert.Null(store.GetString("a"));
        Assert.Equal("no lease now", store.GetString("b"));
        Assert.False(store.RevokeLease(lease));
    }

    [Fact]
    public async Task Watch_from_every_revision_replays_exactly_the_changes_from_there_then_goes_live_without_gap_or_duplicate()
    {
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var options = Options with { TimeProvider = clock };
        var history = new List<(WatchEventKind Kind, string Key, string? Value, long Revision)>();
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            void Record(WatchEventKind kind, string key, string? value) => history.Add((kind, key, value, store.Revision));
            store.Put("cfg/a", "1"); Record(WatchEventKind.Put, "cfg/a", "1");
            store.Put("other", "x");
            store.Put("cfg/b", "2"); Record(WatchEventKind.Put, "cfg/b", "2");
            store.Delete("cfg/a"); Record(WatchEventKind.Delete, "cfg/a", null);
            store.Write(new WriteBatch().Put("cfg/c", "3").Put("cfg/d", "4"));
            history.Add((WatchEventKind.Put, "cfg/c", "3", store.Revision - 1));
            history.Add((WatchEventKind.Put, "cfg/d", "4", store.Revision));
            store.Put(B("cfg/ttl"), B("t"), TimeSpan.FromSeconds(1)); Record(WatchEventKind.Put, "cfg/ttl", "t");
            clock.Advance(TimeSpan.FromSeconds(2));
            store.SweepExpiredForTests(); Record(WatchEventKind.Expire, "cfg/ttl", null);
        }
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            foreach (var revision in history.Select(h => h.Revision).ToList())
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var expected = history.Where(h => h.Revision >= revision).ToList();
                var seen = new List<(WatchEventKind, string, string?, long)>();
                await using var e = store.Watch(B("cfg/"), revision, cts.Token).GetAsyncEnumerator(cts.Token);
                while (seen.Count < expected.Count && await e.MoveNextAsync()) seen.Add((e.Current.Kind, S(e.Current.Key), e.Current.Value is null ? null : S(e.Current.Value), e.Current.Revision));
                Assert.Equal(expected, seen);
                // Then live: the next change arrives once, right after the replay.
                store.Put("cfg/live", revision.ToString());
                Assert.True(await e.MoveNextAsync());
                Assert.Equal(("cfg/live", store.Revision), (S(e.Current.Key), e.Current.Revision));
                history.Add((WatchEventKind.Put, "cfg/live", revision.ToString(), store.Revision));
            }
        }
    }

    [Fact]
    public async Task Watch_below_the_compaction_horizon_throws_revision_compacted_and_a_slow_watcher_catches_up_from_the_log()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        for (var i = 0; i < 50; i++) store.Put($"k{i % 5}", $"v{i}");
        store.Compact();
        var error = await Assert.ThrowsAsync<RevisionCompactedException>(async () =>
        {
            await foreach (var _ in store.Watch(B("k"), 1)) { }
        });
        Assert.True(error.CompactedRevision > 1);
        Assert.Equal(1, error.RequestedRevision);

        // A watcher that reads nothing while 3 × the buffer of events is written still gets every one, in order.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var start = store.Revision + 1;
        await using var slow = store.Watch(B("s/"), start, cts.Token).GetAsyncEnumerator(cts.Token);
        var first = slow.MoveNextAsync(); // subscribes
        var total = 3 * WatchHub.BufferedEvents;
        for (var i = 0; i < total; i++) store.Put($"s/{i % 100}", i.ToString());
        Assert.True(await first);
        var revisions = new List<long> { slow.Current.Revision };
        while (revisions.Count < total && await slow.MoveNextAsync()) revisions.Add(slow.Current.Revision);
        Assert.Equal(Enumerable.Range(0, total).Select(i => start + i), revisions);
    }

    [Fact]
    public async Task A_read_only_store_beside_a_writer_watches_its_changes()
    {
        using var dir = new TempDirectory();
        using var writer = BitcaskStore.Open(dir.Path, Options);
        writer.Put("cfg/flag", "off");
        using var reader = BitcaskStore.Open(dir.Path, Options with { ReadOnly = true });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var e = reader.Watch(B("cfg/"), 1, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await e.MoveNextAsync());
        Assert.Equal(("cfg/flag", "off"), (S(e.Current.Key), S(e.Current.Value)));
        writer.Put("cfg/flag", "on");
        writer.Delete("cfg/flag");
        Assert.True(await e.MoveNextAsync());
        Assert.Equal((WatchEventKind.Put, "on"), (e.Current.Kind, S(e.Current.Value)));
        Assert.True(await e.MoveNextAsync());
        Assert.Equal(WatchEventKind.Delete, e.Current.Kind);
        Assert.Equal(writer.Revision, e.Current.Revision);
    }

    [Fact]
    public async Task A_watch_ends_with_object_disposed_when_its_store_closes()
    {
        using var dir = new TempDirectory();
        var store = BitcaskStore.Open(dir.Path, Options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var e = store.Watch(B("k"), 0, cts.Token).GetAsyncEnumerator(cts.Token);
        var pending = e.MoveNextAsync().AsTask();
        await Task.Delay(50);
        store.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending);
    }

    [Fact]
    public void Reserved_keys_are_refused_for_user_writes()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        Assert.Throws<ArgumentException>(() => store.Put(B("\0bitcask:lease:x"), B("v")));
        Assert.Throws<ArgumentException>(() => store.Write(new WriteBatch().Put(B("\0bitcask:x"), B("v"))));
    }
}
