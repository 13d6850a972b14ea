namespace Bitcask.Format;

/// <summary>
/// Decides, from the segment headers present in a directory, which compaction runs finished and which were interrupted
/// (FORMAT.md §5 step 3). Open and <c>bitcask verify</c> both use it, so they always agree.
/// <para>A run's outputs carry ids <c>merge id … merge id + output count − 1</c> (allocated as one block when the run
/// finishes writing). A run finished when each of those ids is either present as that output or was itself consumed by
/// a later finished run: compaction outputs are sealed segments, so a later merge may take some of them as inputs and
/// delete them. Runs are therefore judged newest first, each against the ranges of the finished runs after it.</para>
/// </summary>
internal static class CompactionRuns
{
    public sealed record Settlement(
        IReadOnlyList<(uint First, uint Last)> Covered,
        IReadOnlyDictionary<uint, string> Interrupted);

    /// <summary>
    /// <see cref="Settlement.Covered"/>: the id ranges finished runs replaced (any segment still present there is a stale
    /// input whose deletion was interrupted). <see cref="Settlement.Interrupted"/>: ids of outputs of runs that did not
    /// finish, with why.
    /// </summary>
    /// <param name="headers">The valid headers of the segments present.</param>
    /// <param name="unreadable">Ids of segment files present whose header cannot be read: an output with such an id counts
    /// as present (the run finished, and that output is damage), so one damaged header never makes open delete the
    /// intact outputs of its run.</param>
    public static Settlement Settle(IEnumerable<SegmentHeader> headers, IReadOnlySet<uint>? unreadable = null)
    {
        var covered = new List<(uint First, uint Last)>();
        var interrupted = new Dictionary<uint, string>();
        var runs = headers.Where(h => h.Kind == SegmentKind.Compacted).GroupBy(h => h.MergeId).OrderByDescending(r => r.Key);
        foreach (var run in runs)
        {
            var members = run.ToList();
            var expected = members[0].OutputCount;
            var missing = MissingOutputs(run.Key, members, covered, unreadable);
            if (missing is null)
            {
                covered.AddRange(members[0].Superseded);
                continue;
            }
            foreach (var h in members)
                interrupted[h.SegmentId] = $"output {h.OutputIndex + 1} of {expected} of compaction run {run.Key}, which did not finish ({missing})";
        }
        return new Settlement(covered, interrupted);
    }

    public static bool IsCovered(IReadOnlyList<(uint First, uint Last)> ranges, uint id)
    {
        foreach (var (first, last) in ranges)
            if (id >= first && id <= last) return true;
        return false;
    }

    /// <summary>Null when the run finished; else a description of what is missing.</summary>
    private static string? MissingOutputs(uint mergeId, List<SegmentHeader> members, List<(uint First, uint Last)> covered, IReadOnlySet<uint>? unreadable)
    {
        var expected = members[0].OutputCount;
        if (members.Any(h => h.OutputCount != expected || h.OutputIndex >= expected))
            return "its outputs disagree on the output count";
        var byIndex = members.GroupBy(h => h.OutputIndex).ToDictionary(g => g.Key, g => g.Count());
        if (byIndex.Values.Any(c => c > 1)) return "two outputs claim the same index";
        if (members.Count == expected) return null;
        // Stores written before output ids were allocated as one block cannot say which id a missing output had.
        var contiguous = members.All(h => h.SegmentId == mergeId + h.OutputIndex);
        var explained = contiguous && Enumerable.Range(0, expected)
            .All(k => byIndex.ContainsKey((ushort)k) || IsCovered(covered, mergeId + (uint)k) || unreadable?.Contains(mergeId + (uint)k) == true);
        return explained ? null : $"only {members.Count} of its outputs are present and no later compaction replaced the others";
    }
}
