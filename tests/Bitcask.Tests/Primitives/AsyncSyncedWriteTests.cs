namespace Bitcask.Tests.Primitives;

/// <summary>
/// A lone asynchronous write in Synced mode must not run the group's fdatasync on the caller's thread (a thread-pool
/// thread in a server): the call returns an incomplete task while the fsync is held, and the caller's thread is free.
/// </summary>
public class AsyncSyncedWriteTests
{
    public static TheoryData<string> AsyncWrites => ["PutAsync", "PutAsync with options", "TryWriteAsync", "WriteAsync", "IncrementAsync", "CompareAndSetAsync"];

    [Theory]
    [MemberData(nameof(AsyncWrites))]
    public async Task A_lone_async_write_in_synced_mode_returns_before_its_fdatasync_and_completes_after_it(string call)
    {
        using var dir = new TempDirectory();
        var fs = new GatedFileSystem();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Synced, CompactionEnabled = false }, fs);
        store.Put("warm"u8, "up"u8); // the segment exists: the write below only appends and syncs
        var key = "k"u8.ToArray();
        var value = "v"u8.ToArray();
        fs.HoldNextSync();
        Task? pending = null;
        var caller = new Thread(() => pending = call switch
        {
            "PutAsync" => store.PutAsync(key, value).AsTask(),
            "PutAsync with options" => store.PutAsync(key, value, new WriteOptions(TimeToLive: TimeSpan.FromMinutes(1))).AsTask(),
            "TryWriteAsync" => store.TryWriteAsync(new WriteBatch().RequireAbsent(key).Put(key, value)).AsTask(),
            "WriteAsync" => store.WriteAsync(new WriteBatch().Put(key, value)).AsTask(),
            "IncrementAsync" => store.IncrementAsync(key, 1).AsTask(),
            _ => store.CompareAndSetAsync(key, 0, value).AsTask(),
        });
        caller.Start();
        try
        {
            Assert.True(fs.Holding.Wait(TimeSpan.FromSeconds(20)), "the write never reached its fdatasync");
            Assert.True(caller.Join(TimeSpan.FromSeconds(20)), $"{call} blocked its caller's thread during the group's fdatasync");
            Assert.NotNull(pending);
            Assert.False(pending!.IsCompleted, $"{call} completed before its fdatasync finished");
        }
        finally
        {
            fs.Release();
        }
        await pending!.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.NotNull(store.Get(key));
    }
}
