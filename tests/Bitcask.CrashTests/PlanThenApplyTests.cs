using Bitcask.CrashTests.Infrastructure;
using Bitcask.Inspection;
using Bitcask.TestSupport;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// Open and repair decide first, then change files one crash-safe step at a time (FORMAT.md §5; ../shared/RELIABILITY.md
/// §7 items 24, 36 and 38). A failure or a crash before any step of the apply leaves a store the next open (or repair)
/// finishes: nothing acknowledged is lost, and every byte cut from a segment is in quarantine/.
/// </summary>
public class PlanThenApplyTests(ITestOutputHelper output)
{
    private const string Dir = Workloads.Directory;
    private static readonly BitcaskOptions Options = Workloads.Options(Durability.Flushed);

    /// <summary>An injected failure no code under test catches (a crash or an error it cannot handle).</summary>
    private sealed class InjectedFailure(string message) : Exception(message);

    /// <summary>Every file of the store (quarantine/ included) by path relative to the store directory.</summary>
    private static Dictionary<string, byte[]> Snapshot(FaultFileSystem fs) =>
        fs.Files.Where(f => f.StartsWith(Dir + "/", StringComparison.Ordinal))
            .ToDictionary(f => f[(Dir.Length + 1)..], fs.ReadAllBytes, StringComparer.Ordinal);

    private static string Name(string path) => Path.GetFileName(path);

    // ------------------------------------------------------------------ open

    private sealed record OpenImage(FaultFileSystem Fs, Dictionary<string, byte[]> Acknowledged, string Newest, long ValidLength, string Stale);

    /// <summary>
    /// A store whose read-write open has a plan of several steps: two leftover temporary files, a stale input of a finished
    /// compaction (its unlink lost), and a torn tail in the newest segment that holds valid records after a hole (a power
    /// loss kept the pages of two unsynced puts and lost the one before them), so its bytes go to quarantine/ first.
    /// </summary>
    private static OpenImage BuildOpenImage()
    {
        var fs = new FaultFileSystem();
        var acknowledged = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        string stale;
        byte[] staleBytes;
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            for (var i = 0; i < 30; i++) Put(store, $"a{i}", 150);
            stale = fs.Files.First(f => f.EndsWith(".seg", StringComparison.Ordinal));
            staleBytes = fs.ReadAllBytes(stale);
            store.Compact();
        }
        Assert.DoesNotContain(stale, fs.Files);
        string newest;
        long validLength;
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            for (var i = 0; i < 5; i++) Put(store, $"b{i}", 150);
            store.Sync(); // durable from here; the three puts below are not
            newest = fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Last();
            validLength = fs.ReadAllBytes(newest).Length;
            foreach (var k in new[] { "t0", "t1", "t2" }) store.Put(Workloads.B(k), Oracle.MakeValue(k, 0, 150));
        }
        // The disk after a power loss before the close: no hint and no closing sync marker for the newest segment, and
        // t0's page lost while t1's and t2's landed.
        fs.RemoveFile(Path.ChangeExtension(newest, ".hint"));
        var bytes = fs.ReadAllBytes(newest);
        Assert.Equal(4, bytes[^28]); // the closing sync marker
        bytes = bytes[..^32];
        var t0 = bytes.AsSpan((int)validLength).IndexOf("t0#"u8) - 2 - 32 + (int)validLength;
        Assert.Equal(validLength, t0);
        bytes.AsSpan((int)validLength, 32 + 2 + 150).Clear();
        fs.WriteAllBytes(newest, bytes);
        fs.WriteAllBytes(stale, staleBytes);
        fs.WriteAllBytes(Dir + "/compaction-00000.seg.tmp", new byte[500]);
        fs.WriteAllBytes(Dir + "/0000000099.hint.tmp", [1, 2, 3]);
        return new OpenImage(fs, acknowledged, newest, validLength, stale);

        void Put(BitcaskStore store, string key, int length)
        {
            var value = Oracle.MakeValue(key, acknowledged.Count, length);
            store.Put(Workloads.B(key), value);
            acknowledged[key] = value;
        }
    }

    /// <summary>What is wrong with the store in <paramref name="disk"/> once an open of it succeeded (null: nothing).</summary>
    private static string? CheckOpenResult(OpenImage image, FaultFileSystem disk)
    {
        Dictionary<string, byte[]> state;
        try
        {
            using var store = BitcaskStore.Open(Dir, Options, disk);
            state = Oracle.Dump(store);
        }
        catch (Exception e)
        {
            return $"the next open failed: {e.GetType().Name}: {e.Message}";
        }
        if (!Oracle.SameState(image.Acknowledged, state))
            return "state after the next open: " + string.Join("; ", Oracle.Diff(image.Acknowledged, state).Take(5));
        var files = disk.Files;
        if (files.Any(f => f.EndsWith(".tmp", StringComparison.Ordinal))) return "a temporary file is still there";
        if (files.Contains(image.Stale)) return "the stale input is still there";
        if (disk.ReadAllBytes(image.Newest).Length != image.ValidLength) return "the torn tail was not cut";
        var newestOnly = Snapshot(image.Fs).Where(kv => kv.Key == Name(image.Newest)).ToDictionary();
        var problems = RemovedBytes.Check(newestOnly, Snapshot(disk));
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    [Fact]
    public void A_failure_or_crash_before_any_file_operation_of_an_opens_plan_leaves_a_store_the_next_open_finishes_losing_nothing_acknowledged()
    {
        var image = BuildOpenImage();
        // The plan this open applies, as file operations: every kind of step must be among them.
        var probe = image.Fs.Clone();
        var start = probe.OperationCount;
        var problem = CheckOpenResult(image, probe);
        Assert.Null(problem);
        var ops = probe.History.Skip(start).ToList();
        Assert.Contains(ops, o => o.Kind == FsOpKind.Delete && o.Name == "compaction-00000.seg.tmp");
        Assert.Contains(ops, o => o.Kind == FsOpKind.Delete && o.Name == "0000000099.hint.tmp");
        Assert.Contains(ops, o => o.Kind == FsOpKind.Delete && o.Path == image.Stale);
        Assert.Contains(ops, o => o.Kind == FsOpKind.CreateDirectory && o.Name == "quarantine");
        Assert.Contains(ops, o => o.Kind == FsOpKind.Create && o.Name == $"{Name(image.Newest)}.{image.ValidLength}.tail");
        Assert.Contains(ops, o => o.Kind == FsOpKind.Truncate && o.Path == image.Newest && o.Length == image.ValidLength);
        var planEnd = ops.FindLastIndex(o => o.Kind == FsOpKind.SyncDirectory && o.Path == Dir) + 1; // the plan ends with a directory fsync
        Assert.True(planEnd > 0);
        output.WriteLine($"the open and close take {ops.Count} file operations: {string.Join(", ", ops)}");

        var problems = new List<string>();
        var points = 0;
        for (var j = 0; j < ops.Count; j++)
        {
            foreach (var mode in new[] { PowerLoss.DropUnsynced, PowerLoss.ProcessKill })
            {
                // A power cut (or kill) at operation j: it and everything after it never happen.
                var crashed = image.Fs.Clone();
                crashed.CrashAtOperation = crashed.OperationCount + j;
                try { BitcaskStore.Open(Dir, Options, crashed).Dispose(); } catch (IOException) { } // the crash (or the failed close it causes)
                points++;
                if (CheckOpenResult(image, crashed.Crash(mode, new Random(j))) is { } p) problems.Add($"crash ({mode}) at {ops[j]}: {p}");
            }
            // An I/O error at operation j (it does not happen), then a power loss.
            var failed = image.Fs.Clone();
            var target = failed.OperationCount + j;
            failed.BeforeOperation = op =>
            {
                if (op.Index == target) throw new IOException($"Input/output error (injected at {op})", 5);
            };
            try { BitcaskStore.Open(Dir, Options, failed).Dispose(); } catch (IOException) { }
            failed.BeforeOperation = null;
            points++;
            if (CheckOpenResult(image, failed.Crash(PowerLoss.DropUnsynced, new Random(j))) is { } q) problems.Add($"EIO at {ops[j]}, then power loss: {q}");
        }
        output.WriteLine($"{points} failure points, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }

    // ------------------------------------------------------------------ repair

    private sealed record RepairImage(FaultFileSystem Fs, Dictionary<string, byte[]> Kept, int Steps);

    /// <summary>
    /// A store whose repair takes every kind of step: a damaged record in a sealed segment that has a hint (hint quarantined,
    /// segment rewritten as temp + rename), an unreadable segment header in the middle (the whole file quarantined, its
    /// follower relinked and rewritten), a damaged hint of another segment (quarantined and written again), a torn tail
    /// at the end of the newest segment (quarantined and truncated) and a temporary file (removed by the closing open).
    /// <see cref="RepairImage.Kept"/> is what a repair without faults keeps.
    /// </summary>
    private static RepairImage BuildRepairImage()
    {
        var fs = new FaultFileSystem();
        using (var store = BitcaskStore.Open(Dir, Options, fs))
        {
            for (var i = 0; i < 80; i++) store.Put(Workloads.B($"k{i:D2}"), Oracle.MakeValue($"k{i:D2}", i, 150 + i % 9));
            store.Write(new WriteBatch().Put(Workloads.B("batch1"), Oracle.MakeValue("batch1", 0, 60)).Put(Workloads.B("batch2"), Oracle.MakeValue("batch2", 0, 60)));
            for (var i = 80; i < 90; i++) store.Put(Workloads.B($"k{i:D2}"), Oracle.MakeValue($"k{i:D2}", i, 150));
        }
        var segments = fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.True(segments.Count >= 5, $"{segments.Count} segments");
        // Segment 2: a value byte of its third record (a key written once, so nothing older comes back).
        var s2 = fs.ReadAllBytes(segments[1]);
        var third = 64;
        for (var r = 0; r < 2; r++) third += 32 + BitConverter.ToUInt16(s2, third + 6) + BitConverter.ToInt32(s2, third + 24);
        s2[third + 32 + 3 + 20] ^= 0x04;
        fs.WriteAllBytes(segments[1], s2);
        // Segment 3: its header (reserved byte 50: the header CRC fails).
        var s3 = fs.ReadAllBytes(segments[2]);
        s3[50] ^= 0x01;
        fs.WriteAllBytes(segments[2], s3);
        // Segment 4's hint: a byte in its first entry.
        var hint4 = Path.ChangeExtension(segments[3], ".hint");
        var h4 = fs.ReadAllBytes(hint4);
        h4[40] ^= 0x01;
        fs.WriteAllBytes(hint4, h4);
        // The newest segment: no hint, and half a record after its closing marker.
        var newest = segments[^1];
        fs.RemoveFile(Path.ChangeExtension(newest, ".hint"));
        fs.WriteAllBytes(newest, [.. fs.ReadAllBytes(newest), .. new byte[] { 0x11, 0x22, 0x33, 0x44, 1, 0, 2, 0, 9, 9 }]);
        fs.WriteAllBytes(Dir + "/0000000003.hint.tmp", [7, 7, 7]);

        var reference = fs.Clone();
        var steps = 0;
        var report = new StoreRepair(Dir, new InspectOptions(), reference) { BeforeStep = _ => steps++ }.Run();
        Assert.True(report.After.Healthy, string.Join(" | ", report.After.Problems));
        Assert.Contains(report.Actions, a => a.Contains("rewritten", StringComparison.Ordinal));
        Assert.Contains(report.Actions, a => a.Contains("truncated", StringComparison.Ordinal));
        Assert.Contains(report.Actions, a => a.Contains("moved the whole file", StringComparison.Ordinal));
        Assert.Contains(report.Actions, a => a.Contains("now follows", StringComparison.Ordinal));
        Assert.Empty(RemovedBytes.Check(Snapshot(fs), Snapshot(reference)));
        Dictionary<string, byte[]> kept;
        using (var store = BitcaskStore.Open(Dir, Options with { ReadOnly = true }, reference)) kept = Oracle.Dump(store);
        Assert.True(kept.Count > 60, $"{kept.Count} keys kept");
        return new RepairImage(fs, kept, steps);
    }

    /// <summary>Repairs <paramref name="disk"/> again and returns what is wrong (null: it keeps what a repair without faults
    /// keeps, verifies healthy, and every byte removed from the original image's segments is in quarantine/).</summary>
    private static string? CheckRepairAgain(RepairImage image, FaultFileSystem disk)
    {
        RepairReport report;
        try { report = StoreInspector.Repair(Dir, new InspectOptions(), disk); }
        catch (Exception e) { return $"the next repair failed: {e.GetType().Name}: {e.Message}"; }
        if (!report.After.Healthy) return "verify after the next repair: " + string.Join(" | ", report.After.Problems);
        Dictionary<string, byte[]> state;
        try
        {
            using var store = BitcaskStore.Open(Dir, Options, disk);
            state = Oracle.Dump(store);
        }
        catch (Exception e) { return $"open after the next repair failed: {e.Message}"; }
        if (!Oracle.SameState(image.Kept, state)) return "state after the next repair: " + string.Join("; ", Oracle.Diff(image.Kept, state).Take(5));
        var problems = RemovedBytes.Check(Snapshot(image.Fs), Snapshot(disk));
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    /// <summary>After an interrupted repair a read-write open that skips damage succeeds and serves every key repair keeps.</summary>
    private static string? CheckSkippingOpen(RepairImage image, FaultFileSystem disk)
    {
        try
        {
            using var store = BitcaskStore.Open(Dir, Options with { SkipDamagedRecords = true }, disk);
            foreach (var (key, value) in image.Kept)
                if (store.Get(Workloads.B(key)) is not { } got || !got.AsSpan().SequenceEqual(value)) return $"{key} is lost or changed";
            return null;
        }
        catch (Exception e) { return $"open with SkipDamagedRecords failed: {e.GetType().Name}: {e.Message}"; }
    }

    [Fact]
    public void A_repair_failing_before_any_of_its_steps_then_crashing_leaves_a_store_the_next_repair_finishes_keeping_everything_and_quarantining_every_removed_byte()
    {
        var image = BuildRepairImage();
        output.WriteLine($"repair of the image takes {image.Steps} steps");
        var problems = new List<string>();
        for (var n = 1; n <= image.Steps; n++)
        {
            foreach (var mode in new[] { PowerLoss.DropUnsynced, PowerLoss.ProcessKill })
            {
                var failed = image.Fs.Clone();
                var calls = 0;
                var step = "";
                try
                {
                    new StoreRepair(Dir, new InspectOptions(), failed)
                    {
                        BeforeStep = s =>
                        {
                            if (++calls == n) throw new InjectedFailure($"failure before step {n}: {step = s}");
                        },
                    }.Run();
                    problems.Add($"step {n}: the repair did not reach it");
                    continue;
                }
                catch (InjectedFailure) { }
                var disk = failed.Crash(mode, new Random(n));
                if (CheckSkippingOpen(image, disk.Clone()) is { } s) problems.Add($"failure before step {n} ({step}), {mode}: {s}");
                if (CheckRepairAgain(image, disk) is { } p) problems.Add($"failure before step {n} ({step}), {mode}: {p}");
            }
        }
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_power_loss_at_any_file_operation_of_a_repair_leaves_a_store_the_next_repair_finishes_keeping_everything_and_quarantining_every_removed_byte()
    {
        var image = BuildRepairImage();
        var probe = image.Fs.Clone();
        var start = probe.OperationCount;
        StoreInspector.Repair(Dir, new InspectOptions(), probe);
        var ops = probe.History.Skip(start).ToList();
        output.WriteLine($"repair of the image takes {ops.Count} file operations");
        var problems = new List<string>();
        for (var j = 0; j < ops.Count; j++)
        {
            var crashed = image.Fs.Clone();
            crashed.CrashAtOperation = crashed.OperationCount + j;
            try { StoreInspector.Repair(Dir, new InspectOptions(), crashed); } catch (SimulatedCrashException) { }
            var disk = crashed.Crash(PowerLoss.DropUnsynced, new Random(j));
            if (CheckRepairAgain(image, disk) is { } p) problems.Add($"power loss at {ops[j]}: {p}");
        }
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }
}
