using System.CommandLine;
using System.Text.Json;
using Bitcask.Inspection;

namespace Bitcask.Cli;

internal static partial class Commands
{
    /// <summary>Findings of the source's read-only open that a backup carries along (the backup holds the same bytes or lacks
    /// the same segment); every other kind (a torn tail being appended, leftovers, bad hints) stays behind.</summary>
    private static readonly string[] CarriedDamage =
    [
        ProblemKind.DamagedRecord.DisplayName(), ProblemKind.UndecodableValue.DisplayName(), ProblemKind.BadSegmentHeader.DisplayName(),
        ProblemKind.UnsupportedVersion.DisplayName(), ProblemKind.MissingSegment.DisplayName(),
    ];

    private static Command Backup(CliContext c)
    {
        var source = new Argument<string>("SRC") { Description = "The store directory to back up." };
        var target = new Argument<string>("DST") { Description = "Where the backup goes: a missing or empty directory outside SRC." };
        var verify = new Option<bool>("--verify") { Description = "Afterwards read every byte of the backup (as 'bitcask verify' does); exit 1 unless healthy." };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object." };
        var cmd = new Command("backup", Help(
            "Write a consistent copy of the store in SRC, as of one revision, into DST (missing or empty, outside SRC). Opens SRC " +
            "read-only, so it works beside a process that has the store open for writing and never disturbs it: the backup holds " +
            "what that writer had handed to the OS when the command started (whole records only). Sealed segments become hard " +
            "links where the file system allows, the newest segment's bytes are copied, every segment gets a hint file, and every " +
            "file is fsynced. Restore by opening DST (or copying it back). Exit 0 done, 1 the source has damage the backup " +
            "carries too (or --verify found problems), 2 unusable SRC or DST.",
            "bitcask backup /var/lib/myservice/kv /backups/kv-2026-12-07", "bitcask backup /var/lib/myservice/kv /backups/kv-new --verify"))
        { source, target, verify, json };
        cmd.SetAction(r => Guard(c, () =>
        {
            using var store = OpenReadOnly(r.GetValue(source)!);
            var result = ProgressBar.Run(c, "backup", _ => store.Backup(r.GetValue(target)!));
            var carried = store.GetStats().RecoveryFindings
                .Where(f => CarriedDamage.Any(kind => f.Problem.StartsWith(kind, StringComparison.Ordinal))).ToList();
            VerifyReport? report = null;
            if (r.GetValue(verify)) report = ProgressBar.Run(c, "verify", p => StoreInspector.Verify(result.TargetDirectory, new InspectOptions { Progress = p }));
            if (r.GetValue(json))
            {
                c.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    source = store.Directory, target = result.TargetDirectory, revision = result.Revision, segmentsLinked = result.SegmentsLinked,
                    segmentsCopied = result.SegmentsCopied, hintFiles = result.HintFiles, bytesCopied = result.BytesCopied,
                    milliseconds = result.Duration.TotalMilliseconds,
                    sourceDamage = carried.Select(f => $"{Path.GetFileName(f.Path)}:{f.Offset}: {f.Problem}"),
                    verify = report is null ? null : new { healthy = report.Healthy, problems = report.Problems.Select(p => p.ToString()) },
                }, JsonOut.Options));
            }
            else
            {
                c.Out.WriteLine($"backup of {store.Directory} at revision {result.Revision} in {result.TargetDirectory}: " +
                    $"{result.SegmentsLinked} segments linked, {result.SegmentsCopied} copied, {result.HintFiles} hint files, " +
                    $"{Text.Bytes(result.BytesCopied)} copied in {result.Duration.TotalMilliseconds:F0} ms");
                foreach (var f in carried) c.Out.WriteLine($"source damage (in the backup too): {Path.GetFileName(f.Path)}:{f.Offset}: {f.Problem}");
                if (report is not null)
                {
                    foreach (var p in report.Problems) c.Out.WriteLine(p.ToString());
                    c.Out.WriteLine("verify: " + Summary(report));
                }
            }
            return carried.Count == 0 && report is not { Healthy: false } ? Program.Ok : Program.Problems;
        }));
        return cmd;
    }
}
