using Bitcask;
using Bitcask.Storage;
using Bitcask.CrashHost;

// Child process for the crash tests: bitcask-crashhost <dir> <durability> <seed> <threads> <compact:0|1|2>
// (0 = no compaction, 1 = background compaction plus an explicit Compact() every 30 ms, 2 = background compaction only)
// Prints "READY" once open, then "A <thread> <op>" after each acknowledged write (one flushed line each), until killed.
// Exit codes: 3 = the store is locked by another writer.
if (args.Length < 5) { Console.Error.WriteLine("usage: <dir> <Buffered|Flushed|Synced> <seed> <threads> <compact 0|1|2>"); return 2; }
var durability = Enum.Parse<Durability>(args[1]);
var seed = int.Parse(args[2]);
var threads = int.Parse(args[3]);
var compact = args[4] != "0";
var explicitCompactions = args[4] == "1";
var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
BitcaskStore store;
try
{
    store = BitcaskStore.Open(args[0], new BitcaskOptions
    {
        Durability = durability,
        MaxSegmentBytes = explicitCompactions ? 64 << 10 : 16 << 10, // background only: merges write several outputs
        MaxValueBytes = 8192,
        CompactionEnabled = compact,
        CompactionCheckInterval = TimeSpan.FromMilliseconds(50),
        CompactionFragmentationThreshold = 0.3,
        // Background only: merges of several segments (when the store's dead bytes pass this) write several outputs, and
        // later merges of single fragmented segments take some of them as inputs.
        CompactionDeadBytesThreshold = explicitCompactions ? 512L << 20 : 256 << 10,
    });
}
catch (StoreLockedException e)
{
    Console.Error.WriteLine(e.Message);
    return 3;
}
output.WriteLine("READY");
var gate = new object();
var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
{
    for (var i = 0; ; i++)
    {
        var entries = HostOps.Op(seed, t, i);
        if (entries.Count == 1 && entries[0].Value is { } v) store.Put(System.Text.Encoding.UTF8.GetBytes(entries[0].Key), v);
        else if (entries.Count == 1) store.Delete(entries[0].Key);
        else
        {
            var batch = new WriteBatch();
            foreach (var (k, val) in entries)
                if (val is null) batch.Delete(k); else batch.Put(System.Text.Encoding.UTF8.GetBytes(k), val);
            store.Write(batch);
        }
        lock (gate) output.WriteLine($"A {t} {i}");
    }
}) { IsBackground = true }).ToList();
workers.ForEach(w => w.Start());
if (explicitCompactions)
    new Thread(() => { while (true) { Thread.Sleep(30); try { store.Compact(); } catch (Exception e) { Console.Error.WriteLine(e.Message); } } }) { IsBackground = true }.Start();
Thread.Sleep(Timeout.Infinite);
return 0;
