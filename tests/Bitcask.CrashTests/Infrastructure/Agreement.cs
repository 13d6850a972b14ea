using Bitcask.Analysis;
using Bitcask.Inspection;

namespace Bitcask.CrashTests.Infrastructure;

/// <summary>
/// Checks that <c>bitcask verify</c> and a read-write open judge a store the same way (they share one analysis, and this
/// proves it from outside): the damage verify reports in a segment that open scans makes a read-write open throw at the
/// same file and offset without changing a byte; otherwise the open succeeds, cuts exactly the torn tails verify reports,
/// removes exactly the leftovers verify names, and afterwards verify finds none of them. A read-only open serves the live
/// keys verify counts. Works on a real directory, which it copies before any read-write open.
/// </summary>
internal static class Agreement
{
    private static readonly ProblemKind[] Fatal = [ProblemKind.DamagedRecord, ProblemKind.BadSegmentHeader, ProblemKind.MissingSegment, ProblemKind.UnsupportedVersion];
    private static readonly ProblemKind[] SettledByOpen = [ProblemKind.TornTail, ProblemKind.StaleSegment, ProblemKind.InterruptedCompaction, ProblemKind.IncompleteSegment];

    /// <summary>Null when verify and open agree on <paramref name="directory"/>, else what differs.</summary>
    public static string? Check(string directory, BitcaskOptions options)
    {
        VerifyReport report;
        HashSet<string> hinted;
        using (var inspected = new InspectedStore(directory, new InspectOptions { TimeProvider = options.TimeProvider }))
        {
            inspected.Run();
            report = inspected.ToReport();
            hinted = inspected.Analysis.Segments.Where(s => s.HintIsWhole).Select(s => s.Name).ToHashSet();
        }
        // Open loads a segment with a whole hint from the hint and finds damage inside it only when the record is read.
        var fatal = report.Problems.Where(p => Fatal.Contains(p.Kind) && !(p.Kind == ProblemKind.DamagedRecord && hinted.Contains(p.File))).ToList();
        var copy = Copy(directory);
        try
        {
            var before = Snapshot(copy);
            BitcaskStore? store = null;
            try
            {
                store = BitcaskStore.Open(copy, options with { ReadOnly = false, CompactionEnabled = false });
            }
            catch (CorruptionException e)
            {
                if (fatal.Count == 0) return $"read-write open threw ({e.Message}) but verify found no damage open would meet: {Describe(report)}";
                if (!fatal.Any(p => p.File == Path.GetFileName(e.Path) && p.Offset == e.Offset))
                    return $"read-write open stopped at {Path.GetFileName(e.Path)}:{e.Offset} where verify reports nothing fatal: {Describe(report)}";
                return Unchanged(before, copy) ? null : "a read-write open that threw changed files";
            }
            using (store)
            {
                if (fatal.Count > 0) return $"read-write open succeeded although verify reports {string.Join(" | ", fatal)}";
                var findings = store.GetStats().RecoveryFindings;
                foreach (var p in report.Problems.Where(p => p.Kind == ProblemKind.TornTail))
                    if (!findings.Any(f => Path.GetFileName(f.Path) == p.File && f.Offset == p.Offset && f.Problem.StartsWith("torn tail", StringComparison.Ordinal)))
                        return $"verify reports a torn tail at {p.File}:{p.Offset} that open did not cut: {string.Join(" | ", findings)}";
                foreach (var f in findings.Where(f => f.Problem.StartsWith("torn tail", StringComparison.Ordinal)))
                    if (!report.Problems.Any(p => p.Kind == ProblemKind.TornTail && p.File == Path.GetFileName(f.Path) && p.Offset == f.Offset))
                        return $"open cut a torn tail at {f} that verify does not report: {Describe(report)}";
            }
            foreach (var p in report.Problems.Where(p => p.Kind is ProblemKind.StaleSegment or ProblemKind.InterruptedCompaction or ProblemKind.IncompleteSegment))
                if (File.Exists(Path.Combine(copy, p.File))) return $"open left {p.File} ({p.Kind.DisplayName()}) in place";
            var after = StoreInspector.Verify(copy);
            if (after.Problems.FirstOrDefault(p => SettledByOpen.Contains(p.Kind)) is { } left)
                return $"after a read-write open verify still reports {left}";
            if (report.Problems.All(p => p.Kind is ProblemKind.TornTail or ProblemKind.BadHint or ProblemKind.HintMismatch or ProblemKind.OrphanHint || SettledByOpen.Contains(p.Kind)))
            {
                using var readOnly = BitcaskStore.Open(directory, options with { ReadOnly = true });
                if (readOnly.Count != report.LiveKeys) return $"a read-only open serves {readOnly.Count} keys, verify counts {report.LiveKeys}";
            }
            return null;
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    private static string Describe(VerifyReport report) => report.Problems.Count == 0 ? "healthy" : string.Join(" | ", report.Problems);

    private static string Copy(string directory)
    {
        var copy = Path.Combine(Path.GetTempPath(), "bitcask-agree", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(directory)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        return copy;
    }

    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "LOCK").ToDictionary(f => f, File.ReadAllBytes);

    private static bool Unchanged(Dictionary<string, byte[]> before, string dir)
    {
        var after = Snapshot(dir);
        return before.Keys.Order().SequenceEqual(after.Keys.Order()) && before.All(kv => kv.Value.AsSpan().SequenceEqual(after[kv.Key]));
    }
}
