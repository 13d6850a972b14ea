using System.Text.Json;
using Bitcask.Bench;
using Bitcask.Bench.Harness;
using Bitcask.Bench.Stores;

// Entry point: compare (peers side by side), memory (keydir bytes per key), latency (mixed workload percentiles),
// reopen (with and without hint files), micro (BenchmarkDotNet), and the hidden run-one / reopen-one that compare and
// reopen start in child processes.
return Cli.Run(args);

namespace Bitcask.Bench
{
    public static class Cli
    {
        public const string Usage = """
            Usage: dotnet run -c Release --project bench/Bitcask.Bench -- <command> [options]

              compare   [--keys 1000000] [--value-size 100] [--stores bitcask,rocksdb,faster,lmdb,sqlite] [--runs 3]
                        [--seconds 5] [--durable-seconds 5] [--roles throughput,durable] [--out bench-results] [--dir DIR]
                        Same workloads against every store, each store in its own process; Markdown tables on stdout,
                        JSON and Markdown in --out.
              memory    [--keys 1000000,10000000] [--value-size 100]
                        Keydir bytes per key of this engine beside a Dictionary<byte[], (uint, uint, uint)> baseline.
              latency   [--keys 1000000] [--value-size 100] [--seconds 10]
                        p50/p99/p99.9 of Get and Put under the mixed workload, without and with a compaction running.
              reopen    [--keys 1000000,10000000] [--value-size 100,1024] [--runs 3] [--dir DIR]
                        Reopen time with and without hint files, in fresh processes (first open and a warm second one).
              primitives [--keys 1000000] [--seconds 3] [--runs 3] [--watch-rate 100000]
                        Put vs CompareAndSet vs Increment on 1 and 16 threads, and a watcher's delay at a paced put rate.
              scale     [--keys 1000000,10000000,30000000] [--value-size 100] [--runs 1] [--seconds 10] [--out bench-results]
                        [--svg FILE] [--dir DIR]
                        Fill, get, overwrite, compaction, reopen, keydir bytes, RSS and disk per store size (a fresh
                        process per size and run); Markdown table and an SVG chart of ns per operation.
              pair      [--stores bitcask:flushed,faster:memory] [--rounds 5] [--seconds 3] [--keys 1000000]
                        Read ratios taken within short rounds (a fresh process per store per round), median of the
                        per-round ratios: robust to a machine whose load changes from minute to minute.
              hot       [--keys 1000000] [--op get|miss|put|seq] [--threads 1] [--seconds 10] [--durability Flushed]
                        [--dir DIR]   One workload in a loop, for profiling from outside (perf, dotnet-trace).
              integrations [--keys 10000] [--seconds 2] [--runs 3]
                        HybridCache get-or-create with the bitcask L2 vs MemoryDistributedCache, and durable vs in-memory
                        fixed-window rate-limiter acquires on 1 and 16 threads, in the same run.
              server    [--requests 50000] [--runs 3] [--clients 50]
                        redis-benchmark SET and GET (100 B values, P1 and P16) against 'bitcask serve' (Synced, Flushed)
                        and redis-server (appendfsync always, everysec), fresh servers per run; medians and ratios.
              cluster   [--clients 1,16,64] [--requests 20000] [--runs 3]
                        Committed SET/s (redis-benchmark, 100 B values) on the leader of a 3-node loopback cluster vs one
                        'bitcask serve --durability Synced', and linearizable GET/s on the leader; medians and ratios.
              micro     [BenchmarkDotNet arguments, e.g. --filter '*KeyDir*'] [--full]
                        Micro-benchmarks with the memory diagnoser (short in-process job unless --full).
            """;

        public static int Run(string[] args)
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                Console.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            try
            {
                var rest = args[1..];
                return args[0] switch
                {
                    "compare" => Compare.Run(new Args(rest, "keys", "value-size", "stores", "runs", "seconds", "durable-seconds", "roles", "out", "dir"), Console.Out, Console.Error),
                    "run-one" => RunOne(new Args(rest, "store", "variant", "role", "dir", "keys", "value-size", "seconds", "durable-seconds")),
                    "memory" => MemoryMode.Run(new Args(rest, "keys", "value-size"), Console.Out),
                    "latency" => LatencyMode.Run(new Args(rest, "keys", "value-size", "seconds"), Console.Out),
                    "reopen" => ReopenMode.Run(new Args(rest, "keys", "value-size", "runs", "dir"), Console.Out, Console.Error),
                    "reopen-one" => ReopenMode.RunOne(new Args(rest, "dir", "keys")),
                    "integrations" => IntegrationsMode.Run(new Args(rest, "keys", "seconds", "runs"), Console.Out),
                    "micro" => Micro.MicroBenchmarks.Run(rest),
                    "primitives" => PrimitivesMode.Run(new Args(rest, "keys", "seconds", "runs", "watch-rate"), Console.Out),
                    "scale" => ScaleMode.Run(new Args(rest, "keys", "value-size", "runs", "seconds", "out", "svg", "dir"), Console.Out, Console.Error),
                    "scale-one" => ScaleMode.RunOne(new Args(rest, "dir", "keys", "value-size", "seconds")),
                    "pair" => PairMode.Run(new Args(rest, "stores", "keys", "value-size", "rounds", "seconds", "dir"), Console.Out, Console.Error),
                    "pair-one" => PairMode.RunOne(new Args(rest, "store", "dir", "keys", "value-size", "seconds")),
                    "server" => ServerMode.Run(new Args(rest, "requests", "runs", "clients"), Console.Out, Console.Error),
                    "cluster" => ClusterMode.Run(new Args(rest, "clients", "requests", "runs"), Console.Out, Console.Error),
                    "hot" => HotMode.Run(new Args(rest, "keys", "value-size", "threads", "seconds", "op", "durability", "dir"), Console.Out),
                    _ => throw new ArgumentException($"Unknown command '{args[0]}'."),
                };
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine("error: " + e.Message);
                Console.Error.WriteLine(Usage);
                return 2;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or CorruptionException or StoreStalledException)
            {
                Console.Error.WriteLine($"error: {e.GetType().Name}: {e.Message}");
                return 1;
            }
        }

        private static int RunOne(Args args)
        {
            var store = args.OptionalString("store") ?? throw new ArgumentException("run-one needs --store.");
            var variant = args.OptionalString("variant") ?? throw new ArgumentException("run-one needs --variant.");
            var roleText = args.String("role", "throughput");
            if (!Enum.TryParse<StoreRole>(roleText, ignoreCase: true, out var role)) throw new ArgumentException($"Unknown --role '{roleText}'; expected throughput or durable.");
            var dir = args.OptionalString("dir") ?? throw new ArgumentException("run-one needs --dir.");
            StoreCatalog.ConfigsFor(store); // validates the name
            var options = new RunOptions(args.Long("keys", 1_000_000, 1, 1L << 40), args.Int("value-size", 100, 1, 16 << 20),
                args.Double("seconds", 5, 0.01, 3600), args.Double("durable-seconds", 5, 0.01, 3600));
            var result = new WorkloadRunner(new StoreConfig(store, variant, role), dir, options, Console.Error).Run();
            Console.Out.WriteLine(Compare.ResultMarker);
            Console.Out.WriteLine(JsonSerializer.Serialize(result, Compare.Json));
            return result.Error is null ? 0 : 3;
        }
    }
}
