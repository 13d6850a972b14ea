using Bitcask.CrashTests.Infrastructure;

namespace Bitcask.CrashTests;

/// <summary>An async write that has to lead its commit group hands the write and the fdatasync to the committer thread:
/// the calling (thread-pool) thread is never blocked on the disk.</summary>
public class AsyncCommitTests
{
    [Fact]
    public async Task A_lone_async_put_in_synced_mode_returns_before_its_fdatasync_and_completes_after_it()
    {
        var fs = new FaultFileSystem();
        using var store = BitcaskStore.Open(Workloads.Directory, Workloads.Options(Durability.Synced), fs);
        store.Put("warm"u8, "up"u8); // the active segment exists: the next put's only slow step is its fdatasync
        using var release = new ManualResetEventSlim();
        var syncThread = -1;
        fs.BeforeOperation = op =>
        {
            if (op.Kind != FsOpKind.Sync || !op.Path.EndsWith(".seg", StringComparison.Ordinal)) return;
            syncThread = Environment.CurrentManagedThreadId;
            release.Wait(TimeSpan.FromSeconds(20)); // the disk is slow
        };
        var caller = Environment.CurrentManagedThreadId;
        var put = store.PutAsync("k"u8.ToArray(), "v"u8.ToArray());
        Assert.False(put.IsCompleted); // PutAsync returned while its fdatasync is still held
        release.Set();
        await put;
        fs.BeforeOperation = null;
        Assert.NotEqual(caller, syncThread);
        Assert.Equal("v", store.GetString("k"));
    }

    [Fact]
    public async Task Async_writes_that_fail_their_fdatasync_throw_to_their_caller_and_refuse_later_writes()
    {
        var fs = new FaultFileSystem();
        using var store = BitcaskStore.Open(Workloads.Directory, Workloads.Options(Durability.Synced), fs);
        store.Put("warm"u8, "up"u8);
        fs.BeforeOperation = op =>
        {
            if (op.Kind == FsOpKind.Sync && op.Path.EndsWith(".seg", StringComparison.Ordinal)) throw new IOException("EIO (injected)");
        };
        await Assert.ThrowsAnyAsync<IOException>(async () => await store.PutAsync("k"u8.ToArray(), "v"u8.ToArray()));
        fs.BeforeOperation = null;
        await Assert.ThrowsAnyAsync<IOException>(async () => await store.PutAsync("k2"u8.ToArray(), "v"u8.ToArray()));
        Assert.Null(store.GetString("k"));
    }
}
