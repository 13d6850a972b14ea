using System.Text;

namespace Bitcask.CrashTests.Infrastructure;

internal enum StepKind { Put, Delete, Batch, Sync, Reopen, Compact, GrantLease, PutLeased, RevokeLease, ExpireLease }

/// <summary>One step of a scripted workload. Batch entries with a null value are deletes. Lease steps name their lease in
/// <see cref="Lease"/> (the harness maps names to the ids the store grants); <see cref="StepKind.ExpireLease"/> moves the
/// store's fake clock past every lease's time to live and runs the expiry sweep.</summary>
internal sealed record Step(StepKind Kind, string Key = "", byte[]? Value = null, IReadOnlyList<(string Key, byte[]? Value)>? Entries = null, string Lease = "")
{
    public override string ToString() => Kind switch
    {
        StepKind.Put => $"put {Key}={Oracle.Show(Value!)}",
        StepKind.PutLeased => $"put {Key}={Oracle.Show(Value!)} lease {Lease}",
        StepKind.GrantLease or StepKind.RevokeLease or StepKind.ExpireLease => $"{Kind} {Lease}",
        StepKind.Delete => $"delete {Key}",
        StepKind.Batch => $"batch[{string.Join(",", Entries!.Select(e => (e.Value is null ? "-" : "+") + e.Key))}]",
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

internal static class Workloads
{
    public const string Directory = "/bitcask/store";

    /// <summary>Small segments so the scripted workload rolls over several times.</summary>
    public static BitcaskOptions Options(Durability durability) => new()
    {
        Durability = durability,
        MaxSegmentBytes = 4096,
        MaxValueBytes = 2048,
        CompressionThreshold = 0,
        // Buffered mode's background flush would make operation numbering depend on timing; it never fires here.
        SyncInterval = durability == Durability.Synced ? null : TimeSpan.FromHours(1),
        // Compaction runs as an explicit step; hint files are still written in the background after each seal, so the
        // numbering of operations can vary slightly between runs (every crash state is still a legal one).
        CompactionEnabled = false,
    };

    private static byte[] V(string key, int tag, int length) => Oracle.MakeValue(key, tag, length);

    /// <summary>Puts, overwrites, deletes, batches, explicit syncs, three segment rollovers and a reopen (whose close seals
    /// the active segment).</summary>
    public static IReadOnlyList<Step> Scripted()
    {
        var s = new List<Step>();
        var tag = 0;
        void Put(string k, int len) => s.Add(new Step(StepKind.Put, k, V(k, ++tag, len)));
        void Del(string k) => s.Add(new Step(StepKind.Delete, k));
        void Batch(params (string Key, int Len)[] e) =>
            s.Add(new Step(StepKind.Batch, Entries: e.Select(x => (x.Key, x.Len < 0 ? null : V(x.Key, ++tag, x.Len))).ToList()));

        for (var i = 0; i < 5; i++) Put("k" + i, 120 + 40 * i);
        Put("k1", 300);                 // overwrite
        Put("k2", 180);
        Del("k3");
        Batch(("k5", 250), ("k0", -1), ("k1", 90));
        s.Add(new Step(StepKind.Sync));
        Put("k6", 900);                 // fills the first segment
        Put("k7", 900);                 // rollover
        Put("k2", 900);
        Del("k6");
        Batch(("k3", 400), ("k6", 300), ("k4", -1));
        Put("k4", 900);                 // rollover
        s.Add(new Step(StepKind.Compact));
        s.Add(new Step(StepKind.Reopen));
        Put("k0", 200);
        Put("k5", 700);
        Del("k1");
        Batch(("k2", -1), ("k7", 500));
        Put("k1", 1000);
        Put("k3", 1000);                // rollover
        Del("k5");
        s.Add(new Step(StepKind.Sync));
        Put("k5", 150);
        s.Add(new Step(StepKind.Compact));
        Batch(("k0", 60), ("k8", 60));
        return s;
    }

    /// <summary>Leases: grants, puts attached to them, a revoke, expiries (fake clock + sweep), overwrites that detach a
    /// key, and reopens (which give every live lease its full time to live again).</summary>
    public static IReadOnlyList<Step> Leases()
    {
        var s = new List<Step>();
        var tag = 0;
        void Put(string k, int len) => s.Add(new Step(StepKind.Put, k, V(k, ++tag, len)));
        void Leased(string k, int len, string lease) => s.Add(new Step(StepKind.PutLeased, k, V(k, ++tag, len), Lease: lease));
        s.Add(new Step(StepKind.GrantLease, Lease: "L1"));
        Leased("a", 300, "L1");
        Leased("b", 300, "L1");
        Put("c", 300);
        s.Add(new Step(StepKind.Sync));
        Leased("c", 200, "L1");
        Put("b", 250);                  // b leaves L1
        s.Add(new Step(StepKind.RevokeLease, Lease: "L1"));
        Put("d", 900);
        s.Add(new Step(StepKind.GrantLease, Lease: "L2"));
        Leased("e", 900, "L2");         // rollover
        Leased("a", 400, "L2");
        s.Add(new Step(StepKind.ExpireLease, Lease: "L2"));
        Put("f", 500);
        s.Add(new Step(StepKind.GrantLease, Lease: "L3"));
        Leased("g", 700, "L3");
        s.Add(new Step(StepKind.Reopen));
        Leased("h", 300, "L3");
        s.Add(new Step(StepKind.Compact));
        s.Add(new Step(StepKind.ExpireLease, Lease: "L3"));
        Put("i", 100);
        return s;
    }

    /// <summary>
    /// Partial merges (run with <see cref="CompactOldestOutput"/>): a first, full compaction writes several outputs; later
    /// compactions each take a single output of an earlier run, as background compaction does with the most fragmented
    /// segment, so reopen must tell an output a later run replaced from one that never landed.
    /// </summary>
    public static IReadOnlyList<Step> PartialMerges()
    {
        var s = new List<Step>();
        var tag = 0;
        void Put(string k, int len) => s.Add(new Step(StepKind.Put, k, V(k, ++tag, len)));
        for (var i = 0; i < 12; i++) Put("p" + i, 700); // three write segments (five records fit in 4 KiB)
        s.Add(new Step(StepKind.Compact));             // full: three outputs
        Put("p0", 100);
        Put("p1", 100);
        s.Add(new Step(StepKind.Compact));             // takes output 1 of 3 of the first run
        s.Add(new Step(StepKind.Reopen));
        s.Add(new Step(StepKind.Delete, "p6"));
        Put("p7", 200);
        s.Add(new Step(StepKind.Sync));
        s.Add(new Step(StepKind.Compact));             // takes output 2 of 3 of the first run
        Put("p12", 300);
        s.Add(new Step(StepKind.Reopen));
        s.Add(new Step(StepKind.Compact));
        Put("p2", 50);
        return s;
    }

    /// <summary>The compaction step of <see cref="PartialMerges"/>: a full merge while no compaction output exists, else a
    /// merge of only the oldest output.</summary>
    public static void CompactOldestOutput(BitcaskStore store) =>
        store.Compact(sealedSegments =>
        {
            var outputs = sealedSegments.Where(x => x.Header.Kind == Format.SegmentKind.Compacted).OrderBy(x => x.Id).ToList();
            return outputs.Count == 0 ? sealedSegments : [outputs[0]];
        }, CancellationToken.None);

    /// <summary>A seeded random workload over a small key space (for the randomized crash campaigns).</summary>
    public static IReadOnlyList<Step> Random(int seed, int length)
    {
        var rng = new Random(seed);
        var s = new List<Step>();
        string Key() => "r" + rng.Next(0, 8);
        for (var i = 0; i < length; i++)
        {
            var roll = rng.Next(100);
            if (roll < 50) { var k = Key(); s.Add(new Step(StepKind.Put, k, V(k, i, rng.Next(1, 1200)))); }
            else if (roll < 70) s.Add(new Step(StepKind.Delete, Key()));
            else if (roll < 88)
            {
                var n = rng.Next(1, 5);
                s.Add(new Step(StepKind.Batch, Entries: Enumerable.Range(0, n).Select(j =>
                {
                    var k = Key();
                    return (k, rng.Next(4) == 0 ? null : V(k, i * 10 + j, rng.Next(1, 300)));
                }).ToList()));
            }
            else if (roll < 94) s.Add(new Step(StepKind.Sync));
            else if (roll < 97) s.Add(new Step(StepKind.Compact));
            else s.Add(new Step(StepKind.Reopen));
        }
        return s;
    }

    public static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
}
