namespace Bitcask.Tests.Primitives;

/// <summary>
/// <see cref="BitcaskOptions.InlineAsyncCompletions"/>: in Synced mode the callers of async writes resume on the store's
/// completion thread instead of one thread-pool work item each; a continuation that blocks there must not hold up the
/// writes committed after it, even one that waits for such a write; and the writes stay correct and durable.
/// </summary>
public class InlineAsyncCompletionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_synced_async_write_resumes_on_the_completion_thread_only_with_inline_completions(bool inline)
    {
        using var dir = new TempDirectory();
        var fs = new GatedFileSystem();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Synced, CompactionEnabled = false, InlineAsyncCompletions = inline }, fs);
        store.Put("warm"u8, "up"u8);
        fs.HoldNextSync(); // the write below is still pending when it is awaited, so its continuation is really resumed
        var resumedOn = Task.Run(async () =>
        {
            await store.PutAsync("k"u8.ToArray(), "v"u8.ToArray());
            return (Thread.CurrentThread.IsThreadPoolThread, Thread.CurrentThread.Name);
        });
        Assert.True(fs.Holding.Wait(Patience), "the write never reached its fdatasync");
        fs.Release();
        var (poolThread, name) = await resumedOn.WaitAsync(Patience);
        if (inline)
        {
            Assert.False(poolThread, "with inline completions the caller resumed on a thread-pool thread");
            Assert.Equal("Bitcask completions", name);
        }
        else Assert.True(poolThread, "without inline completions the caller must resume on the thread pool, never on an engine thread");
        Assert.Equal("v"u8.ToArray(), store.Get("k"u8));
    }

    [Fact]
    public async Task A_continuation_that_blocks_on_the_completion_thread_does_not_hold_up_a_later_write_it_waits_for()
    {
        using var dir = new TempDirectory();
        var fs = new GatedFileSystem();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Synced, CompactionEnabled = false, InlineAsyncCompletions = true }, fs);
        store.Put("warm"u8, "up"u8);
        var blocking = new ManualResetEventSlim();
        var laterDone = new ManualResetEventSlim();
        fs.HoldNextSync();
        var first = Task.Run(async () =>
        {
            await store.PutAsync("first"u8.ToArray(), "1"u8.ToArray());
            blocking.Set();
            // Sync-over-async on the completion thread: waits for a write committed after this one.
            return laterDone.Wait(Patience);
        });
        Assert.True(fs.Holding.Wait(Patience), "the first write never reached its fdatasync");
        fs.Release();
        Assert.True(blocking.Wait(Patience), "the first write's continuation never ran");
        Thread.Sleep(20); // the completion thread has been stuck in that continuation for longer than the engine tolerates
        await store.PutAsync("later"u8.ToArray(), "2"u8.ToArray()).AsTask().WaitAsync(Patience);
        laterDone.Set();
        Assert.True(await first.WaitAsync(Patience), "the blocked continuation never saw the later write complete");
        Assert.Equal("2"u8.ToArray(), store.Get("later"u8));
    }

    [Fact]
    public async Task Many_async_and_sync_writers_with_inline_completions_all_complete_and_survive_reopen()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { Durability = Durability.Synced, InlineAsyncCompletions = true };
        static byte[] Key(int w, int i) => System.Text.Encoding.UTF8.GetBytes($"w{w}-k{i}");
        static byte[] Value(int w, int i) => System.Text.Encoding.UTF8.GetBytes($"value {w} {i}");
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            // Each async writer awaits its write and then writes the next: every continuation runs on the completion thread.
            var asyncWriters = Enumerable.Range(0, 24).Select(w => Task.Run(async () =>
            {
                for (var i = 0; i < 40; i++)
                {
                    if (i % 2 == 0) await store.PutAsync(Key(w, i), Value(w, i));
                    else await store.WriteAsync(new WriteBatch().Put(Key(w, i), Value(w, i)));
                }
            }));
            var syncWriters = Enumerable.Range(100, 4).Select(w => Task.Run(() =>
            {
                for (var i = 0; i < 40; i++) store.Put(Key(w, i), Value(w, i));
            }));
            await Task.WhenAll(asyncWriters.Concat(syncWriters)).WaitAsync(TimeSpan.FromSeconds(60));
        }
        using (var store = BitcaskStore.Open(dir.Path))
            foreach (var w in Enumerable.Range(0, 24).Concat(Enumerable.Range(100, 4)))
                for (var i = 0; i < 40; i++)
                    Assert.Equal(Value(w, i), store.Get(Key(w, i)));
    }
}
