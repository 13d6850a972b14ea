using Bitcask.CrashTests.Infrastructure;
using Bitcask.Storage;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// Deterministic replay of the race the SIGKILL soak found (tests/NOTES-crash.md bug 11): a group commit that rolls over in the
/// middle of its group seals the old segment — and wakes the background compactor — before the group's keydir update.
/// A compaction that runs in that window sees the group's records in the sealed segment as dead (the keydir does not
/// point at them yet), drops them, and deletes the segment; the group is then acknowledged (Synced) pointing at a
/// deleted segment. Pausing the new segment's fsync holds the window open.
/// </summary>
public class CompactionRaceTests(ITestOutputHelper output)
{
    /// <summary>Delegates to a <see cref="FaultFileSystem"/>; a file Sync whose path matches <see cref="PauseSyncOf"/> waits
    /// on <see cref="Gate"/> (outside the fault file system's lock, so other threads keep doing I/O).</summary>
    private sealed class PausingFileSystem(FaultFileSystem inner) : IStorageFileSystem
    {
        /// <summary>Path whose next Sync waits on <see cref="Gate"/> (then the pause disarms itself).</summary>
        public string? PauseSyncOf { get; set; }
        public ManualResetEventSlim Gate { get; set; } = new(false);
        public ManualResetEventSlim Paused { get; set; } = new(false);
        public bool DirectoryExists(string path) => inner.DirectoryExists(path);
        public bool FileExists(string path) => inner.FileExists(path);
        public void CreateDirectory(string path) => inner.CreateDirectory(path);
        public IReadOnlyList<string> ListFiles(string directory) => inner.ListFiles(directory);
        public IStorageFile OpenFile(string path, StorageOpenMode mode) => new File(this, inner.OpenFile(path, mode));
        public void Rename(string source, string destination) => inner.Rename(source, destination);
        public void Delete(string path) => inner.Delete(path);
        public void SyncDirectory(string directory) => inner.SyncDirectory(directory);
        public bool TryHardLink(string source, string target) => inner.TryHardLink(source, target);
        public IDisposable Lock(string lockPath) => inner.Lock(lockPath);

        private sealed class File(PausingFileSystem fs, IStorageFile file) : IStorageFile
        {
            public string Path => file.Path;
            public long Length => file.Length;
            public int Read(long offset, Span<byte> destination) => file.Read(offset, destination);
            public void Write(long offset, ReadOnlySpan<byte> source) => file.Write(offset, source);
            public void Sync()
            {
                ManualResetEventSlim? gate = null;
                lock (fs)
                    if (fs.PauseSyncOf == Path)
                    {
                        fs.PauseSyncOf = null; // once
                        gate = fs.Gate;
                        fs.Paused.Set();
                    }
                gate?.Wait(TimeSpan.FromSeconds(30));
                file.Sync();
            }
            public void Truncate(long length) => file.Truncate(length);
            public FileMapping? Map(long capacity) => file.Map(capacity);
            public void Dispose() => file.Dispose();
        }
    }

    [Theory]
    [InlineData(Durability.Synced)]
    [InlineData(Durability.Flushed)]
    public void A_compaction_woken_by_a_rollover_inside_a_group_does_not_drop_that_groups_writes(Durability durability) => Race(durability);

    /// <summary>A thread of its own (the thread pool would delay a third blocked writer by its injection rate).</summary>
    private static Task Dedicated(Action action) => Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Race(Durability durability)
    {
        var faultFs = new FaultFileSystem();
        var fs = new PausingFileSystem(faultFs);
        var options = Workloads.Options(durability) with
        {
            CompactionEnabled = true,
            CompactionCheckInterval = TimeSpan.FromMilliseconds(5),
            CompactionFragmentationThreshold = 0.3,
        };
        const string dir = Workloads.Directory;
        var first = Path.Combine(dir, "0000000001.seg");
        var second = Path.Combine(dir, "0000000002.seg");
        var store = BitcaskStore.Open(dir, options, fs);
        var gate0 = fs.Gate;
        try
        {
            // Segment 1: mostly overwritten (dead) records, room left for one small record but not a large one.
            for (var i = 0; i < 5; i++) store.Put("fill"u8, Oracle.MakeValue("fill", i, 600));
            Assert.Single(faultFs.Files, f => f.EndsWith(".seg", StringComparison.Ordinal));

            // Flushed mode fsyncs only on Sync(): make group 0 an explicit Sync so it stalls the same way.
            // Group 0 (one put) stalls in its fsync of segment 1, so the next two writers queue up behind it as one group.
            fs.PauseSyncOf = first;
            var t0 = Dedicated(() =>
            {
                store.Put("g0"u8, "x"u8);
                if (durability != Durability.Synced) store.Sync();
            });
            Assert.True(fs.Paused.Wait(TimeSpan.FromSeconds(10)), "group 0 never reached its fsync");
            var small = Oracle.MakeValue("victim", 1, 100);
            var large = Oracle.MakeValue("big", 2, 1800);
            var t1 = Dedicated(() => store.Put("victim"u8, small)); // fits in segment 1
            Thread.Sleep(100);
            var t2 = Dedicated(() => store.Put("big"u8, large));    // does not: rolls over to segment 2 inside the same group
            Thread.Sleep(100);
            // Group 1 = {victim, big}: victim lands in segment 1, which is then sealed; big goes to segment 2, whose fsync we
            // hold while the background compactor (woken by the seal) runs.
            lock (fs)
            {
                fs.Paused = new ManualResetEventSlim(false);
                fs.Gate = new ManualResetEventSlim(false);
                fs.PauseSyncOf = second;
            }
            gate0.Set();
            Assert.True(fs.Paused.Wait(TimeSpan.FromSeconds(10)), "group 1 never reached the fsync of the new segment");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (DateTime.UtcNow < deadline && faultFs.FileExists(first)) Thread.Sleep(10);
            output.WriteLine(faultFs.FileExists(first) ? "segment 1 survived the window" : "segment 1 was compacted away inside the window");
            foreach (var op in faultFs.History.Skip(16)) output.WriteLine(op.ToString());
            output.WriteLine("victim visible in the window: " + (store.Get("victim"u8) is not null));
            foreach (var f in faultFs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)))
                output.WriteLine($"{f}: holds victim = {System.Text.Encoding.Latin1.GetString(faultFs.ReadAllBytes(f)).Contains("victim#1#")}, g0 = {System.Text.Encoding.Latin1.GetString(faultFs.ReadAllBytes(f)).Contains("g0")}");
            output.WriteLine(store.GetStats().LastCompaction?.ToString() ?? "no compaction");
            fs.Gate.Set();
            Task.WaitAll(t0, t1, t2);
            // Acknowledged: readable now, and after a clean restart.
            Assert.Equal(small, store.Get("victim"u8));
        }
        finally
        {
            gate0.Set();
            fs.Gate.Set();
            store.Dispose();
        }
        using var reopened = BitcaskStore.Open(dir, options with { CompactionEnabled = false }, fs);
        Assert.Equal(Oracle.MakeValue("victim", 1, 100), reopened.Get("victim"u8));
    }
}
