using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// I/O errors (../shared/RELIABILITY.md §7 items 19, 21, 22, 23, 24): the failing call throws, nothing acknowledged before is lost,
/// nothing is acknowledged after (the write path is poisoned until reopen), and after the condition clears a reopen finds
/// every acknowledged write — also when the machine then loses power.
/// </summary>
public class ErrorTests(ITestOutputHelper output)
{
    /// <summary>The scripted workload without batches: a failed batch write trips engine bug 1 (tests/NOTES-crash.md); the full
    /// script runs in the skipped variants below.</summary>
    private static readonly IReadOnlyList<Step> NoBatches = Workloads.Scripted().Where(s => s.Kind != StepKind.Batch).ToList();
    private static IReadOnlyList<Step> Script = NoBatches;

    /// <summary>Runs the scripted workload with <paramref name="arm"/> applied, continuing after the first failure, and checks
    /// the run and the disk after a process kill and after a power loss.</summary>
    private static List<string> RunWithFault(Durability durability, Action<FaultFileSystem> arm, string label, out int failures)
    {
        var problems = new List<string>();
        var fs = new FaultFileSystem();
        arm(fs);
        var options = Workloads.Options(durability);
        var run = WorkloadRun.Execute(fs, Script, options, powerLoss: true, continueAfterFailure: true);
        failures = run.Failures + run.CompactionFailures.Count;

        if (run.AcknowledgedAfterFailure.Count > 0)
            problems.Add($"{label}: acknowledged after a failure: {string.Join(", ", run.AcknowledgedAfterFailure.Take(3))} (first failure: {run.StoppedBy?.Message})");
        foreach (var mode in new[] { PowerLoss.ProcessKill, PowerLoss.DropUnsynced })
            if (WorkloadRun.Verify(fs.Crash(mode, new Random(7)), options, run.Oracle) is { } v)
                problems.Add($"{label}, then {mode}: {v}");
        return problems;
    }

    private static int CountOps(Durability durability, FsOpKind? kind = null)
    {
        var fs = new FaultFileSystem();
        WorkloadRun.Execute(fs, Script, Workloads.Options(durability), powerLoss: true);
        return fs.History.Count(o => kind is null || o.Kind == kind);
    }

    [Theory] // engine bug 1 fixed on main in 2c40f6a
    [InlineData(Durability.Synced)]
    public void Enospc_on_each_write_of_the_script_with_batches_loses_nothing_acknowledged(Durability durability)
    {
        Script = Workloads.Scripted();
        try { Enospc_on_each_write_fails_that_write_refuses_later_ones_and_loses_nothing_acknowledged(durability); }
        finally { Script = NoBatches; }
    }

    [Theory]
    [InlineData(Durability.Synced)]
    [InlineData(Durability.Flushed)]
    public void Enospc_on_each_write_fails_that_write_refuses_later_ones_and_loses_nothing_acknowledged(Durability durability)
    {
        var writes = CountOps(durability, FsOpKind.Write);
        var problems = new List<string>();
        var fired = 0;
        for (var n = 1; n <= writes; n++)
            foreach (var persistent in new[] { false, true })
            {
                var rule = FaultRule.Enospc(FsOpKind.Write, n, persistent);
                problems.AddRange(RunWithFault(durability, fs => fs.Faults.Add(rule), $"ENOSPC on write #{n}{(persistent ? "+" : "")}", out var failures));
                // Hint files are only hints: a failed hint write is logged, not reported to a caller.
                if (rule.Fired > 0 && failures == 0 && !rule.LastFired!.Value.Path.Contains(".hint"))
                    problems.Add($"ENOSPC on write #{n} ({rule.LastFired}): no call reported the failure");
                fired += rule.Fired > 0 ? 1 : 0;
            }
        output.WriteLine($"{writes} writes x once/persistent: {fired} runs hit ENOSPC, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.True(fired >= writes);
        Assert.Empty(problems);
    }

    private static (WorkloadRun Run, FaultFileSystem Fs) CompactWithEnospc()
    {
        var fs = new FaultFileSystem();
        fs.Faults.Add(FaultRule.Enospc(FsOpKind.Write, 1, where: op => op.Path.EndsWith(".seg.tmp", StringComparison.Ordinal)));
        var steps = Workloads.Scripted().Where(s => s.Kind != StepKind.Reopen).ToList();
        var cut = steps.FindIndex(s => s.Kind == StepKind.Compact);
        steps = [.. steps.Take(cut + 1), .. steps.Skip(cut + 1).Where(s => s.Kind != StepKind.Compact), new Step(StepKind.Compact)];
        return (WorkloadRun.Execute(fs, steps, Workloads.Options(Durability.Synced), powerLoss: true, continueAfterFailure: true), fs);
    }

    [Fact]
    public void Enospc_during_compaction_aborts_it_keeps_every_key_and_later_writes_and_compactions_succeed()
    {
        // Item 20: the first compaction hits ENOSPC on its output; writes continue; the last compaction (space back) succeeds.
        var (run, fs) = CompactWithEnospc();
        Assert.Single(run.CompactionFailures);
        Assert.Contains("No space left", run.CompactionFailures[0].ToString());
        Assert.Null(run.StoppedBy);
        Assert.Empty(run.AcknowledgedAfterFailure);
        Assert.Equal(run.Oracle.Attempted, run.Oracle.Acknowledged);
        foreach (var mode in new[] { PowerLoss.ProcessKill, PowerLoss.DropUnsynced })
            Assert.Null(WorkloadRun.Verify(fs.Crash(mode, new Random(1)), Workloads.Options(Durability.Synced), run.Oracle));
    }

    [Fact]
    public void A_compaction_that_fails_with_enospc_removes_its_temporary_outputs()
    {
        var fs = new FaultFileSystem();
        var options = Workloads.Options(Durability.Synced);
        using var store = BitcaskStore.Open(Workloads.Directory, options, fs);
        for (var i = 0; i < 40; i++) store.Put(Workloads.B("t" + (i % 5)), Oracle.MakeValue("t" + (i % 5), i, 400));
        fs.Faults.Add(FaultRule.Enospc(FsOpKind.Write, 1, where: op => op.Path.EndsWith(".seg.tmp", StringComparison.Ordinal)));
        Assert.ThrowsAny<IOException>(() => store.Compact());
        Assert.DoesNotContain(fs.Files, f => f.EndsWith(".seg.tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void A_compaction_whose_commit_fsync_fails_removes_its_renamed_outputs_so_a_later_merge_cannot_resurrect_a_delete()
    {
        // The outputs took their final names, then the directory fsync that commits them failed: the run is abandoned and
        // the store goes on with the inputs. Had the renamed outputs stayed, the next open would take that run as finished
        // and load their copy of a key deleted since, whose tombstone a later full merge dropped.
        var fs = new FaultFileSystem();
        var options = Workloads.Options(Durability.Synced);
        var armed = false;
        fs.BeforeOperation = op => armed |= op.Kind == FsOpKind.Rename && op.Path.EndsWith(".seg.tmp", StringComparison.Ordinal);
        fs.Faults.Add(FaultRule.Eio(FsOpKind.SyncDirectory, 1, where: _ => armed));
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
        {
            store.Put(Workloads.B("victim"), Oracle.MakeValue("victim", 1, 700));
            for (var i = 0; i < 10; i++) store.Put(Workloads.B("f" + i), Oracle.MakeValue("f" + i, i, 700));
            var before = fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).ToHashSet();
            Assert.ThrowsAny<IOException>(() => store.Compact());
            Assert.Equal(1, fs.Faults[0].Fired);
            Assert.Equal(before.Order(), fs.Files.Where(f => f.EndsWith(".seg", StringComparison.Ordinal)).Order()); // no output left under its final name
            Assert.True(store.Delete(Workloads.B("victim")));
            var merged = store.Compact();
            Assert.True(merged.SegmentsIn > 1 && !merged.Cancelled);
            Assert.Null(store.Get(Workloads.B("victim")));
        }
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
        {
            Assert.Null(store.Get(Workloads.B("victim")));
            for (var i = 0; i < 10; i++) Assert.Equal(Oracle.MakeValue("f" + i, i, 700), store.Get(Workloads.B("f" + i)));
        }
        foreach (var mode in new[] { PowerLoss.ProcessKill, PowerLoss.DropUnsynced })
        {
            using var store = BitcaskStore.Open(Workloads.Directory, options, fs.Crash(mode, new Random(1)));
            Assert.Null(store.Get(Workloads.B("victim")));
        }
    }

    [Fact]
    public void When_a_failed_commit_cannot_remove_its_renamed_outputs_compaction_stays_off_until_reopen_and_nothing_is_lost()
    {
        var fs = new FaultFileSystem();
        var options = Workloads.Options(Durability.Synced);
        var armed = false;
        fs.BeforeOperation = op => armed |= op.Kind == FsOpKind.Rename && op.Path.EndsWith(".seg.tmp", StringComparison.Ordinal);
        fs.Faults.Add(FaultRule.Eio(FsOpKind.SyncDirectory, 1, where: _ => armed));
        fs.Faults.Add(FaultRule.Eio(FsOpKind.Delete, 1, where: op => armed && op.Path.EndsWith(".seg", StringComparison.Ordinal)));
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
        {
            store.Put(Workloads.B("victim"), Oracle.MakeValue("victim", 1, 700));
            for (var i = 0; i < 10; i++) store.Put(Workloads.B("f" + i), Oracle.MakeValue("f" + i, i, 700));
            Assert.ThrowsAny<IOException>(() => store.Compact());
            Assert.True(store.Delete(Workloads.B("victim")));
            var refused = Assert.ThrowsAny<IOException>(() => store.Compact());
            Assert.Contains("Compaction is disabled", refused.Message);
            Assert.Null(store.Get(Workloads.B("victim")));
        }
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
        {
            Assert.Null(store.Get(Workloads.B("victim")));
            for (var i = 0; i < 10; i++) Assert.Equal(Oracle.MakeValue("f" + i, i, 700), store.Get(Workloads.B("f" + i)));
            Assert.True(store.Compact().SegmentsIn > 0); // a reopen settled the directory: compaction runs again
            Assert.Null(store.Get(Workloads.B("victim")));
        }
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
            Assert.Null(store.Get(Workloads.B("victim")));
    }

    [Fact]
    public void Enospc_while_creating_a_segment_during_rollover_fails_the_write_and_keeps_everything_acknowledged()
    {
        // Only segment creates: a failed background hint write is logged and never reported to a caller (by design), and
        // how many hint files get written depends on timing (a hint is skipped for a segment compacted meanwhile).
        static bool IsSegment(FsOp op) => op.Path.EndsWith(".seg", StringComparison.Ordinal);
        var fsCount = new FaultFileSystem();
        WorkloadRun.Execute(fsCount, Script, Workloads.Options(Durability.Synced), powerLoss: true);
        var creates = fsCount.History.Count(o => o.Kind == FsOpKind.Create && IsSegment(o));
        Assert.True(creates >= 3);
        var problems = new List<string>();
        for (var n = 1; n <= creates; n++)
        {
            problems.AddRange(RunWithFault(Durability.Synced, fs => fs.Faults.Add(FaultRule.Enospc(FsOpKind.Create, n, where: IsSegment)), $"ENOSPC on segment create #{n}", out var failures));
            Assert.True(failures > 0, $"create #{n}: the failure was not reported");
        }
        Assert.Empty(problems);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Eio_on_each_fsync_fails_that_group_poisons_the_writer_and_never_reports_success(bool fsyncGate)
    {
        // The last fsync is Dispose's; Dispose swallows its failure (see the skipped test below and tests/NOTES-crash.md).
        var syncs = CountOps(Durability.Synced, FsOpKind.Sync) - 1;
        var problems = new List<string>();
        for (var n = 1; n <= syncs; n++)
        {
            var rule = FaultRule.Eio(FsOpKind.Sync, n, fsyncGate: fsyncGate);
            problems.AddRange(RunWithFault(Durability.Synced, fs => fs.Faults.Add(rule), $"EIO on fsync #{n}", out var failures));
            if (rule.Fired > 0 && failures == 0 && !rule.LastFired!.Value.Path.Contains(".hint"))
                problems.Add($"EIO on fsync #{n} ({rule.LastFired}): no call reported the failure");
        }
        output.WriteLine($"{syncs} fsyncs, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact(Skip = "engine limitation 3: after an fsyncgate failure, a reopen trusts bytes that only the page cache holds; a later power loss then loses or resurrects data under later synced writes; see tests/NOTES-crash.md")]
    public void After_an_fsyncgate_failure_and_a_reopen_acknowledged_writes_survive_a_later_power_loss()
    {
        // fsync #k fails and the kernel drops the dirty pages, but reads still see them. The process reopens the store (the
        // machine keeps running), writes and syncs more, then the power fails. Every write acknowledged in Synced mode —
        // before the failure and after the reopen — must be there, and the store must open.
        var syncs = CountOps(Durability.Synced, FsOpKind.Sync);
        var problems = new List<string>();
        var options = Workloads.Options(Durability.Synced);
        for (var n = 1; n <= syncs; n++)
        {
            var fs = new FaultFileSystem();
            fs.Faults.Add(FaultRule.Eio(FsOpKind.Sync, n, fsyncGate: true));
            var first = WorkloadRun.Execute(fs, Script, options, powerLoss: true, continueAfterFailure: true);
            if (first.Failures == 0) continue;
            var alive = fs.Crash(PowerLoss.ProcessKill, new Random(n)); // the process restarts; the page cache does not
            Dictionary<string, byte[]> recovered;
            try
            {
                using var store = BitcaskStore.Open(Workloads.Directory, options, alive);
                recovered = Oracle.Dump(store);
            }
            catch (Exception e)
            {
                problems.Add($"fsync #{n}: reopen failed: {e.Message}");
                continue;
            }
            var more = Workloads.Random(n, 12).Where(s => s.Kind != StepKind.Reopen).ToList();
            var second = WorkloadRun.Execute(alive, more, options, powerLoss: true, initial: recovered);
            if (second.StoppedBy is not null) { problems.Add($"fsync #{n}: writes after reopen failed: {second.StoppedBy.Message}"); continue; }
            var disk = alive.Crash(PowerLoss.DropUnsynced, new Random(n));
            if (WorkloadRun.Verify(disk, options, second.Oracle) is { } v) problems.Add($"fsync #{n}: after reopen, more writes and a power loss: {v}");
        }
        output.WriteLine($"{syncs} fsync positions, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_failed_fsync_during_dispose_is_reported_to_the_caller()
    {
        var fs = new FaultFileSystem();
        var store = BitcaskStore.Open(Workloads.Directory, Workloads.Options(Durability.Flushed), fs);
        store.Put("k"u8, "v"u8);
        fs.Faults.Add(FaultRule.Eio(FsOpKind.Sync, 1, persistent: true));
        Assert.ThrowsAny<IOException>(store.Dispose);
    }

    [Fact]
    public void A_write_is_not_visible_to_readers_before_its_fsync_in_synced_mode()
    {
        // FORMAT.md §3: "The keydir is updated after that [the fdatasync], so a reader never sees a write that could still
        // vanish in a crash of that mode." Read the key from inside the fsync (as a concurrent reader would).
        var fs = new FaultFileSystem();
        using var store = BitcaskStore.Open(Workloads.Directory, Workloads.Options(Durability.Synced), fs);
        store.Put("seen"u8, "old"u8);
        byte[]? duringSync = null;
        fs.BeforeOperation = op => { if (op.Kind == FsOpKind.Sync) duringSync = store.Get("seen"u8); };
        store.Put("seen"u8, "new"u8);
        fs.BeforeOperation = null;
        Assert.Equal("old"u8.ToArray(), duringSync);
    }

    [Fact]
    public void A_write_whose_fsync_failed_is_not_visible_to_readers()
    {
        var fs = new FaultFileSystem();
        using var store = BitcaskStore.Open(Workloads.Directory, Workloads.Options(Durability.Synced), fs);
        store.Put("k"u8, "acked"u8);
        fs.Faults.Add(FaultRule.Eio(FsOpKind.Sync, 1, fsyncGate: true));
        Assert.ThrowsAny<IOException>(() => store.Put("k"u8, "failed"u8));
        Assert.Equal("acked"u8.ToArray(), store.Get("k"u8));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Countdown_failing_the_nth_file_operation_ends_in_a_clean_error_and_recovers(bool persistent)
    {
        // Item 23 (SQLite I/O-error loop): fail operation n (create, write, fsync, truncate, rename, delete, dir fsync).
        var total = CountOps(Durability.Synced);
        var problems = new List<string>();
        for (var n = 0; n < total; n++)
        {
            var target = n;
            problems.AddRange(RunWithFault(Durability.Synced, fs => fs.BeforeOperation = op =>
            {
                if (op.Index == target || (persistent && op.Index > target))
                    throw new IOException($"Input/output error (injected at {op})", 5);
            }, $"EIO at operation {n}", out _));
        }
        output.WriteLine($"{total} operations failed in turn ({(persistent ? "persistent" : "once")}), {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }

    [Fact]
    public void Eio_reading_a_sealed_segment_fails_get_for_that_key_with_an_io_error_and_other_keys_still_read()
    {
        var fs = new FaultFileSystem();
        var options = Workloads.Options(Durability.Synced);
        var values = new Dictionary<string, byte[]>();
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
            for (var i = 0; i < 30; i++)
            {
                var key = "e" + i;
                values[key] = Oracle.MakeValue(key, i, 300);
                store.Put(Workloads.B(key), values[key]);
            }
        var firstSegment = fs.Files.First(f => f.EndsWith(".seg", StringComparison.Ordinal));
        using (var store = BitcaskStore.Open(Workloads.Directory, options, fs))
        {
            fs.ReadFault = (path, _) => path == firstSegment;
            var failed = 0;
            foreach (var (k, v) in values)
            {
                try
                {
                    Assert.Equal(v, store.Get(Workloads.B(k)));
                }
                catch (IOException e)
                {
                    Assert.Equal(5, e.HResult);
                    failed++;
                }
            }
            Assert.InRange(failed, 1, values.Count - 1);
            fs.ReadFault = null;
            foreach (var (k, v) in values) Assert.Equal(v, store.Get(Workloads.B(k)));
        }
    }

    [Fact]
    public void A_crash_during_recovery_itself_leaves_a_store_that_recovers_to_the_same_allowed_state()
    {
        // Item 24: take crash images from the scripted campaign that need repair (torn tails, interrupted creations), crash
        // again at every file operation of the recovery, and recover a second time.
        var options = Workloads.Options(Durability.Synced);
        var total = CountOps(Durability.Synced);
        var problems = new List<string>();
        var images = 0;
        var points = 0;
        for (var k = 0; k <= total; k += 2)
        {
            var fs = new FaultFileSystem { CrashAtOperation = k };
            var run = WorkloadRun.Execute(fs, Script, options, powerLoss: true);
            var disk = fs.Crash(PowerLoss.TornPrefix, new Random(k));
            var probe = disk.Clone();
            var before = probe.OperationCount;
            try { BitcaskStore.Open(Workloads.Directory, options, probe).Dispose(); } catch (Exception) { continue; }
            var recoveryOps = probe.OperationCount - before;
            if (recoveryOps == 0) continue;
            images++;
            for (var j = 0; j < recoveryOps; j++)
            {
                points++;
                var again = disk.Clone();
                again.CrashAtOperation = again.OperationCount + j;
                try { BitcaskStore.Open(Workloads.Directory, options, again).Dispose(); } catch (Exception) { }
                var second = again.Crash(PowerLoss.DropUnsynced, new Random(j));
                if (WorkloadRun.Verify(second, options, run.Oracle) is { } v) problems.Add($"crash at op {k}, then at recovery op {j}: {v}");
            }
        }
        output.WriteLine($"{images} crash images needing recovery work, {points} crash points inside recovery, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.True(images > 0);
        Assert.Empty(problems);
    }
}
