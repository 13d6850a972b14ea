// Placeholder entry point until the CLI issue lands: runs a tiny workload so the README's main-job command works.
using System.Diagnostics;
using Bitcask;

var dir = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "bitcask-demo");
var clock = Stopwatch.StartNew();
using (var store = BitcaskStore.Open(dir))
{
    for (var i = 0; i < 100_000; i++) store.Put($"key:{i:D8}", $"value {i}");
    Console.WriteLine($"100000 puts in {clock.ElapsedMilliseconds} ms; key:00000042 = {store.GetString("key:00000042")}");
}
clock.Restart();
using (var store = BitcaskStore.Open(dir))
    Console.WriteLine($"reopened {store.Count} keys in {clock.ElapsedMilliseconds} ms");
return 0;
