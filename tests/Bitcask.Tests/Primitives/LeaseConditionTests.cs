using System.Text;

namespace Bitcask.Tests.Primitives;

/// <summary>Conditional writes of keys attached to a lease: a failed version condition is a false (or a retry), never a
/// <see cref="LeaseNotFoundException"/> for a lease that exists.</summary>
public class LeaseConditionTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static readonly BitcaskOptions Options = new() { CompactionEnabled = false };

    [Fact(Skip = "engine bug: a CompareAndSet with a lease whose version condition fails throws LeaseNotFoundException although the lease exists (Outcome treats every failed condition at or after the lease condition as the lease's)")]
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

    [Fact(Skip = "engine bug: Increment of a key attached to a lease throws LeaseNotFoundException when another write wins the race, instead of retrying (same cause as the CompareAndSet test above)")]
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
}
