using System.Text;
using Xunit.Abstractions;

namespace Bitcask.CrashTests.Infrastructure;

/// <summary>A workload run on a <see cref="FaultFileSystem"/>, with the oracle of what it issued and acknowledged.</summary>
internal sealed class WorkloadRun
{
    public required FaultFileSystem Fs { get; init; }
    public required Oracle Oracle { get; init; }
    /// <summary>The exception that stopped the workload (the simulated crash, an injected fault), or null.</summary>
    public Exception? StoppedBy { get; set; }
    public int StepsCompleted { get; set; }
    /// <summary>With continueAfterFailure: writes the store acknowledged after an earlier write had failed (must stay empty).</summary>
    public List<string> AcknowledgedAfterFailure { get; } = [];
    public int Failures { get; set; }
    public List<Exception> CompactionFailures { get; } = [];

    /// <summary>Runs <paramref name="steps"/> until one throws. <paramref name="powerLoss"/> says which writes count as durable once
    /// acknowledged: all in Synced mode; for a process kill also Flushed-mode writes; otherwise only those before a Sync/close.</summary>
    public static WorkloadRun Execute(FaultFileSystem fs, IReadOnlyList<Step> steps, BitcaskOptions options, bool powerLoss,
        Action<BitcaskStore>? compact = null, IReadOnlyDictionary<string, byte[]>? initial = null, string directory = Workloads.Directory,
        bool continueAfterFailure = false)
    {
        var oracle = new Oracle(initial);
        var run = new WorkloadRun { Fs = fs, Oracle = oracle };
        var ackDurable = options.Durability == Durability.Synced || (!powerLoss && options.Durability == Durability.Flushed);
        BitcaskStore? store = null;
        // Leases by name, and the keys whose newest write attached them to each (what a revoke or expiry deletes).
        var leaseIds = new Dictionary<string, long>();
        var attached = new Dictionary<string, HashSet<string>>();
        try
        {
            store = BitcaskStore.Open(directory, options, fs);
            foreach (var step in steps)
            {
                if (continueAfterFailure && run.StoppedBy is not null)
                {
                    // The store must refuse every later write until reopened: nothing may be acknowledged now.
                    if (step.Kind is StepKind.Reopen) continue;
                    if (step.Kind is StepKind.Compact)
                    {
                        try { store?.Compact(); } catch (Exception) { run.Failures++; }
                        continue;
                    }
                    try
                    {
                        var wrote = RunStep(step, durableEvenIfAcked: false);
                        if (!wrote) continue; // a delete of an absent key writes nothing: nothing to acknowledge
                        if (step.Kind != StepKind.Sync) run.AcknowledgedAfterFailure.Add(step.ToString());
                        else run.AcknowledgedAfterFailure.Add("sync reported success after a failed write or fsync");
                    }
                    catch (Exception) { run.Failures++; }
                    continue;
                }
                try
                {
                    RunStep(step, ackDurable);
                }
                catch (Exception e) when (continueAfterFailure && e is not SimulatedCrashException && step.Kind == StepKind.Compact)
                {
                    // A failed compaction leaves its inputs unchanged; reads and writes go on (../shared/RELIABILITY.md §7 item 20).
                    run.CompactionFailures.Add(e);
                    continue;
                }
                catch (Exception e) when (continueAfterFailure && e is not SimulatedCrashException)
                {
                    run.StoppedBy = e;
                    run.Failures++;
                    continue;
                }
                run.StepsCompleted++;
            }
        }
        catch (Exception e)
        {
            run.StoppedBy = e;
        }
        finally
        {
            try { store?.Dispose(); }
            catch (Exception) when (!fs.HasCrashed) { run.Failures++; } // a failed close (its sync or sync marker) is reported to the caller
            catch (Exception) { /* the crashed process never closes cleanly */ }
            if (store is not null && run.StoppedBy is null && !fs.HasCrashed && !fs.Faults.Any(f => f.Fired > 0)) oracle.AllAcknowledgedDurable();
        }
        return run;

        void Detach(string key)
        {
            foreach (var keys in attached.Values) keys.Remove(key);
        }

        bool RunStep(Step step, bool durableEvenIfAcked)
        {
            var before = oracle.Attempted;
            try
            {
                return RunStepCore(step, durableEvenIfAcked);
            }
            catch when (continueAfterFailure && run.StoppedBy is not null)
            {
                oracle.Undo(before); // refused before anything was written
                throw;
            }
        }

        bool RunStepCore(Step step, bool ackDurable)
        {
                switch (step.Kind)
                {
                    case StepKind.Put:
                        oracle.Begin(new LogicalOp(step.ToString(), [(step.Key, step.Value)]));
                        store!.Put(Workloads.B(step.Key), step.Value);
                        oracle.Acknowledge(ackDurable);
                        Detach(step.Key);
                        break;
                    case StepKind.GrantLease:
                        oracle.Begin(new LogicalOp(step.ToString(), [])); // a grant changes no visible key
                        leaseIds[step.Lease] = store!.GrantLease(TimeSpan.FromHours(1));
                        attached[step.Lease] = [];
                        oracle.Acknowledge(ackDurable);
                        break;
                    case StepKind.PutLeased:
                        oracle.Begin(new LogicalOp(step.ToString(), [(step.Key, step.Value)]));
                        store!.Put(Workloads.B(step.Key), step.Value, leaseIds[step.Lease]);
                        oracle.Acknowledge(ackDurable);
                        Detach(step.Key);
                        attached[step.Lease].Add(step.Key);
                        break;
                    case StepKind.RevokeLease or StepKind.ExpireLease:
                        // One atomic batch: every key still attached to the lease goes at once.
                        oracle.Begin(new LogicalOp(step.ToString(), attached[step.Lease].Order(StringComparer.Ordinal).Select(k => (k, (byte[]?)null)).ToList()));
                        if (step.Kind == StepKind.RevokeLease) store!.RevokeLease(leaseIds[step.Lease]);
                        else
                        {
                            ((Microsoft.Extensions.Time.Testing.FakeTimeProvider)options.TimeProvider).Advance(TimeSpan.FromHours(2));
                            store!.SweepExpiredForTests();
                            if (store.LeaseExists(leaseIds[step.Lease])) throw new InvalidOperationException($"lease {step.Lease} did not expire");
                        }
                        oracle.Acknowledge(ackDurable);
                        foreach (var key in attached[step.Lease]) Detach(key);
                        break;
                    case StepKind.Delete:
                        Detach(step.Key);
                        oracle.Begin(new LogicalOp(step.ToString(), [(step.Key, null)]));
                        var existed = store!.ContainsKey(Workloads.B(step.Key));
                        store.Delete(Workloads.B(step.Key));
                        oracle.Acknowledge(ackDurable);
                        return existed;
                    case StepKind.Batch:
                        foreach (var (k, _) in step.Entries!) Detach(k);
                        var batch = new WriteBatch();
                        foreach (var (k, v) in step.Entries!)
                            if (v is null) batch.Delete(Workloads.B(k));
                            else batch.Put(Workloads.B(k), v);
                        oracle.Begin(new LogicalOp(step.ToString(), step.Entries!));
                        store!.Write(batch);
                        oracle.Acknowledge(ackDurable);
                        break;
                    case StepKind.Sync:
                        store!.Sync();
                        oracle.AllAcknowledgedDurable();
                        break;
                    case StepKind.Reopen:
                        var closing = store;
                        store = null;
                        closing!.Dispose();
                        // Dispose swallows a failed final sync; only a close the file system saw complete counts as durable.
                        if (fs.HasCrashed) throw new SimulatedCrashException("crashed during close");
                        if (fs.Faults.Any(f => f.Fired > 0)) throw new IOException("an injected fault fired during close");
                        oracle.AllAcknowledgedDurable();
                        store = BitcaskStore.Open(directory, options, fs);
                        break;
                    case StepKind.Compact:
                        if (compact is not null) compact(store!);
                        else store!.Compact();
                        break;
                }
                return true;
        }
    }

    /// <summary>Opens the crashed disk and checks every invariant: reopen succeeds, the recovered state is an allowed prefix
    /// (A, P, no resurrection, batches whole, no foreign bytes), a second reopen finds the same state, and a new write
    /// after recovery survives a further reopen. Returns null or the first violation.</summary>
    public static string? Verify(FaultFileSystem disk, BitcaskOptions options, Oracle oracle, string directory = Workloads.Directory)
    {
        options = options with { SyncInterval = null, Durability = Durability.Synced };
        Dictionary<string, byte[]> first;
        try
        {
            using var store = BitcaskStore.Open(directory, options, disk);
            first = Oracle.Dump(store);
        }
        catch (Exception e)
        {
            return $"reopen after the crash failed: {e.GetType().Name}: {e.Message}";
        }
        if (oracle.Check(first, out _) is { } violation) return violation;
        try
        {
            Dictionary<string, byte[]> second;
            using (var store = BitcaskStore.Open(directory, options, disk))
            {
                second = Oracle.Dump(store);
                store.Put("probe"u8, "after-recovery"u8);
            }
            if (!Oracle.SameState(first, second)) return "a second reopen found a different state than the first";
            using (var store = BitcaskStore.Open(directory, options, disk))
            {
                var third = Oracle.Dump(store);
                if (!third.Remove("probe", out var probe) || Encoding.UTF8.GetString(probe) != "after-recovery")
                    return "a write made after recovery did not survive a clean reopen";
                if (!Oracle.SameState(first, third)) return "a write after recovery changed other keys";
            }
        }
        catch (Exception e)
        {
            return $"second reopen or write after recovery failed: {e.GetType().Name}: {e.Message}";
        }
        return null;
    }
}

/// <summary>Drives crash-point campaigns: count the operations of a workload, then crash at each (or a seeded sample).</summary>
internal static class CrashCampaign
{
    /// <summary>BITCASK_CRASH_SEED replays one base seed; otherwise the default is fixed so CI is deterministic.</summary>
    public static int BaseSeed => int.TryParse(Environment.GetEnvironmentVariable("BITCASK_CRASH_SEED"), out var s) ? s : 20261126;

    /// <summary>Scale factor for the randomized campaigns (BITCASK_CRASH_SCALE, default 1).</summary>
    public static int Scale => int.TryParse(Environment.GetEnvironmentVariable("BITCASK_CRASH_SCALE"), out var s) && s > 0 ? s : 1;

    public sealed record Result(int CrashPoints, int Operations, List<string> Failures);

    /// <summary>Runs the workload once to count its file operations, then for every index k crashes there with
    /// <paramref name="mode"/>, recovers and verifies. Failures carry the replay coordinates.</summary>
    public static Result Run(IReadOnlyList<Step> steps, BitcaskOptions options, PowerLoss mode, int seed,
        Func<FaultFileSystem, FaultFileSystem>? configure = null, Action<BitcaskStore>? compact = null, int? sample = null,
        DiskCheck? check = null)
    {
        var clean = WorkloadRun.Execute(Prepare(new FaultFileSystem(), configure), steps, options, mode != PowerLoss.ProcessKill, compact);
        if (clean.StoppedBy is not null && clean.Fs.SkipSafetyStep is null && clean.Fs.Faults.Count == 0 && clean.Fs.BeforeOperation is null)
            return new Result(0, 0, [$"the workload fails without any crash: {clean.StoppedBy}"]);
        var total = clean.Fs.OperationCount;
        var points = Enumerable.Range(0, total + 1).ToList();
        if (sample is { } n && n < points.Count)
        {
            var pick = new Random(seed);
            points = points.OrderBy(_ => pick.Next()).Take(n).OrderBy(k => k).ToList();
        }
        var failures = new List<string>();
        foreach (var k in points)
        {
            var runSeed = RunSeed(seed, k, (int)mode);
            var failure = CrashAt(steps, options, mode, k, runSeed, configure, compact, out var history, check);
            if (failure is not null)
                failures.Add($"[{mode} {options.Durability} crash at op {k} ({history}), replay seed {seed}] {failure}");
        }
        return new Result(points.Count, total, failures);
    }

    /// <summary>Extra checks of a crash image: before recovery (the disk as the crash left it) and after the oracle's
    /// checks (the recovered disk). Each returns null or a violation.</summary>
    public sealed record DiskCheck(Func<FaultFileSystem, string?>? BeforeRecovery, Func<FaultFileSystem, string?>? AfterRecovery);

    public static string? CrashAt(IReadOnlyList<Step> steps, BitcaskOptions options, PowerLoss mode, int k, int runSeed,
        Func<FaultFileSystem, FaultFileSystem>? configure, Action<BitcaskStore>? compact, out string where, DiskCheck? check = null)
    {
        var fs = Prepare(new FaultFileSystem { CrashAtOperation = k }, configure);
        var run = WorkloadRun.Execute(fs, steps, options, mode != PowerLoss.ProcessKill, compact);
        var history = fs.History;
        where = history.Count == 0 ? "before any operation" : $"after {history[^1]}, step {run.StepsCompleted}";
        if (run.StoppedBy is not null and not SimulatedCrashException && run.StoppedBy.InnerException is not SimulatedCrashException
            && !fs.HasCrashed)
            return $"the workload failed without a crash: {run.StoppedBy}";
        var disk = fs.Crash(mode, new Random(runSeed));
        if (check?.BeforeRecovery?.Invoke(disk) is { } before) return before;
        return WorkloadRun.Verify(disk, options, run.Oracle) ?? check?.AfterRecovery?.Invoke(disk);
    }

    /// <summary>Deterministic across processes (HashCode.Combine is randomised per process).</summary>
    public static int RunSeed(int seed, int k, int variant) => (int)(((uint)seed * 2654435761u) ^ ((uint)k * 40503u) ^ ((uint)variant << 24)) & int.MaxValue;

    private static FaultFileSystem Prepare(FaultFileSystem fs, Func<FaultFileSystem, FaultFileSystem>? configure) => configure is null ? fs : configure(fs);

    public static void Report(ITestOutputHelper output, string name, Result r)
    {
        output.WriteLine($"{name}: {r.CrashPoints} crash points over {r.Operations} file operations, {r.Failures.Count} violations");
        foreach (var f in r.Failures.Take(10)) output.WriteLine("  " + f);
    }
}
