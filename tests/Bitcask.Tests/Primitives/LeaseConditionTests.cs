using System.Text;

namespace Bitcask.Tests.Primitives;

/// <summary>Writes attached to a lease: a failed version condition is a false (or a retry), never a
/// <see cref="LeaseNotFoundException"/> for a lease that exists; and a revoke deletes every key whose put was acknowledged
/// before it, also one committed in the same group.</summary>
public class LeaseConditionTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static readonly BitcaskOptions Options = new() { CompactionEnabled = false };

    [Fact]
    public void Compare_and_set_with_a_live_lease_and_a_wrong_version_returns_false()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        var lease = store.GrantLease(TimeSpan.FromMinutes(1));
        store.Put("k", "1");
        var version = store.GetInfo(B("k"))!.Value.Version;
        Assert.False(store.CompareAndSet(B("k"), version + 1, B("2"), new WriteOptions(LeaseId: lease)));
        Assert.True(store.CompareAndSet(B("k"), version, B("2"), new WriteOptions(LeaseId: lease)));
        Assert.Equal(lease, store.GetInfo(B("k"))!.Value.LeaseId);
    }

    [Fact]
    public void Concurrent_increments_of_a_key_attached_to_a_live_lease_count_exactly()
    {
        using var dir = new TempDirectory();
        // Synced: while a group's fdatasync runs, the other threads read the same version, so most increments race.
        using var store = BitcaskStore.Open(dir.Path, Options with { Durability = Durability.Synced });
        var lease = store.GrantLease(TimeSpan.FromMinutes(1));
        store.Put(B("counter"), B("0"), lease);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, 8).Select(_ => new Thread(() =>
        {
            try
            {
                for (var i = 0; i < 100; i++) store.Increment(B("counter"));
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
            }
        })).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Assert.True(errors.IsEmpty, $"{errors.Count} of 8 threads failed; first: {errors.FirstOrDefault()}");
        Assert.Equal("800", store.GetString("counter"));
        Assert.Equal(lease, store.GetInfo(B("counter"))!.Value.LeaseId);
    }

    [Fact]
    public void A_conditional_batch_with_a_lease_put_and_a_failed_version_condition_returns_false_and_a_gone_lease_throws()
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, Options);
        var lease = store.GrantLease(TimeSpan.FromMinutes(1));
        store.Put("k", "1");
        var version = store.GetInfo(B("k"))!.Value.Version;
        Assert.False(store.TryWrite(new WriteBatch().Put(B("k"), B("2"), lease).RequireVersion(B("k"), version + 1)));
        Assert.True(store.TryWrite(new WriteBatch().Put(B("k"), B("2"), lease).RequireVersion(B("k"), version)));
        Assert.True(store.RevokeLease(lease));
        Assert.Null(store.GetString("k"));
        Assert.Throws<LeaseNotFoundException>(() => store.TryWrite(new WriteBatch().Put(B("k"), B("3"), lease).RequireAbsent(B("k"))));
    }

    [Theory]
    [InlineData(Durability.Flushed)]
    [InlineData(Durability.Synced)]
    public void A_revoke_racing_puts_attached_to_the_lease_leaves_no_live_key_attached_to_it(Durability durability)
    {
        using var dir = new TempDirectory();
        var options = Options with { Durability = durability };
        var attached = new System.Collections.Concurrent.ConcurrentBag<string>();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            for (var round = 0; round < 20; round++)
            {
                var lease = store.GrantLease(TimeSpan.FromMinutes(1));
                var putters = Enumerable.Range(0, 4).Select(t => new Thread(() =>
                {
                    try
                    {
                        for (var i = 0; ; i++)
                        {
                            var key = $"r{round}/t{t}/{i}";
                            store.Put(B(key), B("v"), lease); // succeeds until the revoke commits, then throws
                            attached.Add(key);
                        }
                    }
                    catch (LeaseNotFoundException)
                    {
                    }
                    catch (Exception e)
                    {
                        errors.Enqueue(e);
                    }
                })).ToList();
                foreach (var p in putters) p.Start();
                Thread.Sleep(2);
                Assert.True(store.RevokeLease(lease));
                foreach (var p in putters) p.Join();
                Assert.True(errors.IsEmpty, errors.FirstOrDefault()?.ToString());
                Assert.Throws<LeaseNotFoundException>(() => store.Put(B("late"), B("v"), lease));
            }
            var survivors = attached.Where(k => store.GetInfo(B(k)) is not null).ToList();
            Assert.True(survivors.Count == 0, $"{survivors.Count} of {attached.Count} acknowledged puts attached to a revoked lease are still live, e.g. {survivors.FirstOrDefault()}");
            Assert.Equal(0, store.Count);
        }
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            Assert.Equal(0, store.Count);
            Assert.DoesNotContain(attached, k => store.GetInfo(B(k)) is not null);
        }
        Assert.NotEmpty(attached);
    }

    [Fact]
    public async Task A_put_attached_to_a_lease_in_the_same_commit_group_before_its_revoke_is_deleted_by_the_revoke()
    {
        using var dir = new TempDirectory();
        var fs = new GatedFileSystem();
        using var store = BitcaskStore.Open(dir.Path, Options with { Durability = Durability.Synced }, fs);
        var lease = store.GrantLease(TimeSpan.FromMinutes(1));
        fs.HoldNextSync();
        var first = Task.Run(() => store.Put("first", "x")); // the leader: its fdatasync is held
        Assert.True(fs.Holding.Wait(TimeSpan.FromSeconds(30)));
        var put = store.PutAsync(B("member"), B("up"), new WriteOptions(LeaseId: lease)); // queued
        var revoke = store.RevokeLeaseAsync(lease); // queued after it: one group [put, revoke]
        fs.Release();
        await first;
        await put; // acknowledged: the lease existed when it committed
        Assert.True(await revoke);
        Assert.False(store.KeepAlive(lease));
        // Revoking deletes every key attached to the lease; this one is still live, attached to a lease that is gone.
        Assert.Null(store.GetInfo(B("member")));
    }
}
