using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// A compaction that fails after its commit point (../shared/RELIABILITY.md §7 item 37). Once the directory fsync after renaming the
/// outputs has returned, the next open takes the outputs in place of the inputs, whatever happens next. If such a run
/// left its outputs on disk but outside the store's segment set, a later merge would not see them, could drop a
/// tombstone whose older put they hold, and the next open would bring the deleted key back. Every step after the commit
/// point is failed here, once (a retry may succeed) and for the rest of the run; the store is then used on (deletes,
/// writes, compactions where the store still allows them), closed, reopened and crashed.
/// </summary>
public class CompactionAfterCommitTests(ITestOutputHelper output)
{
    /// <summary>One step after the commit point. <see cref="Arm"/> installs the fault that fails it while the given
    /// condition holds (once, or every time when persistent) and returns how often it fired.</summary>
    private sealed record PostCommitStep(string Name, Func<FaultFileSystem, Func<bool>, bool, Func<int>> Arm);

    /// <summary>What the store must hold: live keys with their values, and every key deleted (never to come back).</summary>
    private sealed class Model
    {
        public Dictionary<string, byte[]> Live { get; } = new(StringComparer.Ordinal);
        public HashSet<string> Deleted { get; } = new(StringComparer.Ordinal);
        private int _tag;

        public void Put(BitcaskStore store, string key)
        {
            var value = Oracle.MakeValue(key, ++_tag, 700);
            store.Put(Workloads.B(key), value);
            Live[key] = value;
            Deleted.Remove(key);
        }

        public void Delete(BitcaskStore store, string key)
        {
            Assert.True(store.Delete(Workloads.B(key)), $"{key} was live before its delete");
            Live.Remove(key);
            Deleted.Add(key);
        }

        public string? Check(BitcaskStore store)
        {
            var state = Oracle.Dump(store);
            var problems = Oracle.Diff(Live, state);
            foreach (var key in Deleted)
                if (store.Get(Workloads.B(key)) is not null) problems.Add($"deleted key {key} came back");
            return problems.Count == 0 ? null : string.Join("; ", problems.Take(6));
        }
    }

    private static BitcaskOptions Options => Workloads.Options(Durability.Synced);

    /// <summary>Five sealed segments with hint files: three victims (deleted after the faulty compaction) and fillers, some
    /// overwritten. Merging them makes three outputs.</summary>
    private static Model Populate(FaultFileSystem fs)
    {
        var model = new Model();
        using var store = BitcaskStore.Open(Workloads.Directory, Options, fs);
        for (var v = 0; v < 3; v++) model.Put(store, "victim-" + v);
        for (var i = 0; i < 12; i++) model.Put(store, "f" + i);
        for (var i = 0; i < 6; i++) model.Put(store, "f" + i);
        return model; // the close seals the active segment and waits for every hint write
    }

    /// <summary>The faulty compaction, then more use of the store; returns the problems found.</summary>
    private static List<string> Run(PostCommitStep step, bool persistent, ITestOutputHelper log)
    {
        var label = $"{step.Name} ({(persistent ? "for the rest of the run" : "once")})";
        var problems = new List<string>();
        var fs = new FaultFileSystem();
        var model = Populate(fs);
        bool inRun = false, segmentsRenamed = false, sawCommit = false, afterCommit = false;
        fs.BeforeOperation = op =>
        {
            if (!inRun) return;
            if (sawCommit) afterCommit = true; // every operation after the commit fsync
            if (segmentsRenamed && op.Kind == FsOpKind.SyncDirectory) sawCommit = true;
            if (op.Kind == FsOpKind.Rename && op.Path.EndsWith(".seg.tmp", StringComparison.Ordinal)) segmentsRenamed = true;
        };
        var fired = step.Arm(fs, () => inRun && afterCommit, persistent);
        string? faultyRun;

        using (var store = BitcaskStore.Open(Workloads.Directory, Options, fs))
        {
            inRun = true;
            try
            {
                var result = store.Compact();
                faultyRun = $"returned ({result.SegmentsIn} in, {result.SegmentsOut} out)";
            }
            catch (IOException e)
            {
                faultyRun = "threw: " + e.Message;
            }
            inRun = false;
            fs.OpenFault = null;
            fs.MapFault = null;
            log.WriteLine($"{label}: the compaction {faultyRun}");
            if (!sawCommit) problems.Add($"{label}: the compaction never reached its commit point");
            if (fired() == 0) problems.Add($"{label}: the fault never fired");
            if (model.Check(store) is { } afterFault) problems.Add($"{label}, right after the failed run: {afterFault}");

            // Go on using the store: a delete of a key the failed run copied, new segments, a merge, more of the same.
            model.Delete(store, "victim-0");
            for (var i = 0; i < 8; i++) model.Put(store, "g" + i);
            TryCompact(store, label, problems);
            model.Delete(store, "victim-1");
            for (var i = 0; i < 4; i++) model.Put(store, "f" + i);
            TryCompact(store, label, problems);
            model.Delete(store, "victim-2");
            model.Put(store, "h0");
            TryCompact(store, label, problems);
            if (model.Check(store) is { } inUse) problems.Add($"{label}, in use after the failed run: {inUse}");
        }

        foreach (var (mode, directoryLoss) in new[] { (PowerLoss.ProcessKill, DirectoryLoss.RevertAll), (PowerLoss.DropUnsynced, DirectoryLoss.RevertAll), (PowerLoss.DropUnsynced, DirectoryLoss.RandomSubset) })
        {
            fs.DirectoryLoss = directoryLoss;
            using var crashed = BitcaskStore.Open(Workloads.Directory, Options, fs.Crash(mode, new Random(11)));
            if (model.Check(crashed) is { } afterCrash) problems.Add($"{label}, after {mode}/{directoryLoss}: {afterCrash}");
        }
        using (var store = BitcaskStore.Open(Workloads.Directory, Options, fs))
        {
            if (model.Check(store) is { } afterReopen) problems.Add($"{label}, after reopen: {afterReopen}");
            TryCompact(store, label, problems, mustRun: true); // the reopen settled the directory: compaction runs again
            if (model.Check(store) is { } afterMerge) problems.Add($"{label}, after a merge following the reopen: {afterMerge}");
        }
        using (var store = BitcaskStore.Open(Workloads.Directory, Options, fs))
            if (model.Check(store) is { } atEnd) problems.Add($"{label}, after a second reopen: {atEnd}");
        return problems;
    }

    /// <summary>A compaction after the failed one either runs or is refused until reopen; it never fails otherwise.</summary>
    private static void TryCompact(BitcaskStore store, string label, List<string> problems, bool mustRun = false)
    {
        try
        {
            store.Compact();
        }
        catch (IOException e) when (!mustRun && e.Message.Contains("Compaction is disabled", StringComparison.Ordinal))
        {
        }
        catch (IOException e)
        {
            problems.Add($"{label}: a later compaction failed: {e.Message}");
        }
    }

    /// <summary>Every step after the commit point, read off a fault-free run: each hint rename, each directory fsync, the
    /// open and the mapping of each output, each delete of an input and of its hint.</summary>
    private static List<PostCommitStep> StepsAfterCommit()
    {
        var fs = new FaultFileSystem();
        Populate(fs);
        using var store = BitcaskStore.Open(Workloads.Directory, Options, fs);
        var start = fs.OperationCount;
        Assert.True(store.Compact().SegmentsIn >= 3);
        var ops = fs.History.Skip(start).ToList();
        var lastSegmentRename = ops.FindLastIndex(o => o.Kind == FsOpKind.Rename && o.Path.EndsWith(".seg.tmp", StringComparison.Ordinal));
        var commit = ops.FindIndex(lastSegmentRename, o => o.Kind == FsOpKind.SyncDirectory);
        var steps = new List<PostCommitStep>();
        var outputs = ops.Where(o => o.Kind == FsOpKind.Rename && o.Path.EndsWith(".seg.tmp", StringComparison.Ordinal)).Select(o => o.Destination!).ToList();
        Assert.True(outputs.Count >= 2, "the merge makes several outputs");
        var directorySyncs = 0;
        foreach (var op in ops.Skip(commit + 1))
        {
            switch (op.Kind)
            {
                case FsOpKind.Rename:
                    steps.Add(new PostCommitStep($"rename {op.Name}", (f, armed, persistent) =>
                        Rule(f, FaultRule.Eio(FsOpKind.Rename, 1, persistent, where: o => armed() && o.Path == op.Path))));
                    break;
                case FsOpKind.SyncDirectory:
                    var nth = ++directorySyncs;
                    steps.Add(new PostCommitStep($"directory fsync {nth} after the commit", (f, armed, persistent) =>
                        Rule(f, FaultRule.Eio(FsOpKind.SyncDirectory, nth, persistent, where: _ => armed()))));
                    break;
                case FsOpKind.Delete:
                    steps.Add(new PostCommitStep($"delete {op.Name}", (f, armed, persistent) =>
                        Rule(f, FaultRule.Eio(FsOpKind.Delete, 1, persistent, where: o => armed() && o.Path == op.Path))));
                    break;
                default:
                    throw new InvalidOperationException($"unexpected operation after the commit point: {op}");
            }
        }
        Assert.Contains(steps, s => s.Name.StartsWith("delete", StringComparison.Ordinal) && s.Name.EndsWith(".hint", StringComparison.Ordinal));
        Assert.Equal(2, directorySyncs);
        foreach (var path in outputs)
        {
            var name = Path.GetFileName(path);
            steps.Add(new PostCommitStep($"open {name} (EMFILE)", (f, armed, persistent) =>
            {
                var count = 0;
                f.OpenFault = p => armed() && p == path && (persistent || count == 0) && ++count > 0;
                return () => count;
            }));
            steps.Add(new PostCommitStep($"map {name} (ENOMEM)", (f, armed, persistent) =>
            {
                var count = 0;
                f.MapFault = p => armed() && p == path && (persistent || count == 0) && ++count > 0;
                return () => count;
            }));
        }
        return steps;
    }

    private static Func<int> Rule(FaultFileSystem fs, FaultRule rule)
    {
        fs.Faults.Add(rule);
        return () => rule.Fired;
    }

    [Fact]
    public void A_compaction_failing_at_any_step_after_its_commit_point_brings_back_no_deleted_key_and_loses_nothing()
    {
        var steps = StepsAfterCommit();
        output.WriteLine($"{steps.Count} steps after the commit point: {string.Join(", ", steps.Select(s => s.Name))}");
        var problems = new List<string>();
        foreach (var step in steps)
            foreach (var persistent in new[] { false, true })
                problems.AddRange(Run(step, persistent, output));
        foreach (var p in problems) output.WriteLine(p);
        Assert.True(problems.Count == 0, $"{problems.Count} problems; first: {problems.FirstOrDefault()}");
    }
}
