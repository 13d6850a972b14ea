using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// The suite proves its own teeth: each test disables one safety step in the fault file system (a test-only switch, never
/// in shipped code) and asserts that the crash campaign that passes on the real engine now DOES detect a violation.
/// </summary>
public class MutationTests(ITestOutputHelper output)
{
    private static List<Step> RolloverSteps()
    {
        var steps = new List<Step>();
        for (var i = 0; i < 12; i++) steps.Add(new Step(StepKind.Put, "n" + (i % 4), Oracle.MakeValue("n" + (i % 4), i, 1500)));
        return steps;
    }

    private CrashCampaign.Result Mutant(string name, IReadOnlyList<Step> steps, Func<FaultFileSystem, FsOp, bool> skip)
    {
        var result = CrashCampaign.Run(steps, Workloads.Options(Durability.Synced), PowerLoss.DropUnsynced, CrashCampaign.BaseSeed,
            configure: fs => { fs.SkipSafetyStep = op => skip(fs, op); return fs; });
        CrashCampaign.Report(output, name, result);
        return result;
    }

    [Fact]
    public void Without_the_directory_fsync_after_creating_a_segment_the_new_segment_test_detects_lost_acknowledged_writes()
    {
        // Mutant of the step SegmentWriter takes before the first ack in a new segment; the campaign of
        // CrashPointTests.Synced_writes_in_a_new_segment_survive_a_crash_that_reverts_unsynced_directory_entries.
        var result = Mutant("no dir fsync after segment create", RolloverSteps(), (fs, op) =>
        {
            if (op.Kind != FsOpKind.SyncDirectory) return false;
            var h = fs.History;
            return op.Index >= 3 && h[op.Index - 3].Kind == FsOpKind.Create && h[op.Index - 3].Path.EndsWith(".seg", StringComparison.Ordinal);
        });
        Assert.NotEmpty(result.Failures);
    }

    [Fact]
    public void Without_the_fsync_before_acknowledging_in_synced_mode_the_scripted_crash_campaign_detects_lost_writes()
    {
        // Mutant: every fdatasync of a segment after its header does nothing. Same campaign as
        // CrashPointTests.Crash_at_every_operation_of_the_scripted_workload_keeps_acknowledged_writes_and_a_prefix(DropUnsynced, Synced).
        var result = Mutant("no fsync before ack", Workloads.Scripted(), (fs, op) =>
            op.Kind == FsOpKind.Sync && op.Path.EndsWith(".seg", StringComparison.Ordinal) && fs.History[op.Index - 1].Kind == FsOpKind.Write
            && fs.History[op.Index - 1].Offset > 0);
        Assert.NotEmpty(result.Failures);
    }

    [Fact]
    public void Without_the_fsync_of_compaction_outputs_before_their_rename_the_scripted_crash_campaign_detects_loss()
    {
        // Mutant: compaction outputs (*.seg.tmp) are renamed into place without their data being durable; once the rename
        // is made durable and the inputs are deleted, a power loss leaves empty outputs.
        var result = Mutant("no fsync of compaction outputs", Workloads.Scripted(), (_, op) =>
            op.Kind == FsOpKind.Sync && op.Path.EndsWith(".seg.tmp", StringComparison.Ordinal));
        Assert.NotEmpty(result.Failures);
    }

    [Fact]
    public void Without_the_directory_fsync_between_renaming_compaction_outputs_and_deleting_the_inputs_the_reordered_directory_campaign_detects_loss()
    {
        // Mutant of compaction step 3 (FORMAT.md §6): the directory fsync after the outputs are renamed into place, i.e.
        // the one before the inputs are unlinked. Without it, an unlink of an input can reach the disk while the rename of
        // the output that replaces it does not; the next open then deletes the output's .tmp and the input's records are
        // gone. Same campaign as CrashPointTests.Crash_at_every_operation_with_directory_changes_persisted_out_of_order_...
        // (RandomSubset, Synced), which passes on the real engine.
        var result = CrashPointTests.DirectoryCampaign(DirectoryLoss.RandomSubset, Durability.Synced, output, (fs, op) =>
        {
            if (op.Kind != FsOpKind.SyncDirectory) return false;
            var h = fs.History;
            for (var i = op.Index - 1; i >= 0 && h[i].Kind == FsOpKind.Rename; i--)
                if (h[i].Path.EndsWith(".seg.tmp", StringComparison.Ordinal)) return true;
            return false;
        });
        Assert.NotEmpty(result.Failures);
    }

    [Fact]
    public void The_directory_fsync_after_deleting_compaction_inputs_is_not_needed_because_outputs_name_the_ranges_they_supersede()
    {
        // The converse check: compaction step 5's closing directory fsync can be skipped without any loss. An input whose
        // unlink is lost comes back, but the finished run's headers list it in their superseded ranges, so the next open
        // deletes it again (FORMAT.md §5 step 3); its hint goes with it or is deleted as an orphan.
        var skipped = 0;
        var result = CrashPointTests.DirectoryCampaign(DirectoryLoss.RandomSubset, Durability.Synced, output, (fs, op) =>
        {
            if (op.Kind != FsOpKind.SyncDirectory) return false;
            var h = fs.History;
            var i = op.Index - 1;
            var deletedSegment = false;
            for (; i >= 0 && h[i].Kind == FsOpKind.Delete; i--) deletedSegment |= h[i].Path.EndsWith(".seg", StringComparison.Ordinal);
            var skip = deletedSegment && i >= 0 && h[i].Kind == FsOpKind.SyncDirectory; // deletes right after the commit fsync
            if (skip) Interlocked.Increment(ref skipped);
            return skip;
        });
        Assert.True(skipped > 0, "the mutant never skipped the step");
        Assert.True(result.CrashPoints > 100);
        Assert.Empty(result.Failures);
    }
}
