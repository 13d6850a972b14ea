using System.CommandLine;
using System.Text.Json;
using Bitcask.Inspection;
using Bitcask.Storage;

namespace Bitcask.Cli;

internal static partial class Commands
{
    private static Command Compact(CliContext c)
    {
        var dir = DirArgument();
        var cmd = new Command("compact", Help(
            "Merge the sealed segments into new ones holding only live records (and the tombstones still needed), with hint " +
            "files, and print what it did. Takes the writer lock: fails (exit 2) while another process has the store open for writing.",
            "bitcask compact /var/lib/myservice/kv"))
        { dir };
        cmd.SetAction(r => Guard(c, () =>
        {
            using var store = OpenForWriting(r.GetValue(dir)!, mayCreate: false);
            var before = store.GetStats();
            var result = ProgressBar.Run(c, "compact", _ => store.Compact());
            var after = store.GetStats();
            if (result.SegmentsIn == 0)
                c.Out.WriteLine($"nothing to compact: {before.Segments.Count} segments, {Text.Bytes(before.TotalBytes)}, fragmentation {before.Fragmentation:P1}");
            else
                c.Out.WriteLine($"compacted {result.SegmentsIn} segments ({Text.Bytes(result.BytesBefore)}) into {result.SegmentsOut} ({Text.Bytes(result.BytesAfter)}) " +
                    $"in {result.Duration.TotalMilliseconds:F0} ms: kept {result.RecordsKept} records, dropped {result.RecordsDropped} " +
                    $"({result.RecordsExpired} expired), kept {result.TombstonesKept} tombstones; store now {after.Segments.Count} segments, " +
                    $"{Text.Bytes(after.TotalBytes)}, fragmentation {after.Fragmentation:P1}");
            return Program.Ok;
        }));
        return cmd;
    }

    private static Command Repair(CliContext c)
    {
        var dir = DirArgument();
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        var cmd = new Command("repair", Help(
            "Make a damaged store openable without losing anything readable: truncate torn tails, move every damaged byte range " +
            $"into DIR/{StoreInspector.QuarantineDirectoryName}/<segment>-<offset>.bin (nothing is thrown away), rewrite damaged " +
            "segments without it (temporary file, fsync, rename), relink segments whose predecessor is gone, and replace missing " +
            "or damaged hint files. Prints what it did, then verifies again. Refuses (exit 2) while another process holds the " +
            "store's lock. Exit 0 when the store is healthy afterwards, 1 when problems remain.",
            "bitcask repair /var/lib/myservice/kv"))
        { dir, json };
        cmd.SetAction(r => Guard(c, () =>
        {
            var path = r.GetValue(dir)!;
            StoreInspector.CheckStoreDirectory(path);
            RepairReport report;
            try
            {
                report = ProgressBar.Run(c, "repair", p => StoreInspector.Repair(path, new InspectOptions { Progress = p }));
            }
            catch (StoreLockedException e)
            {
                throw new CliError($"refusing to repair: another process holds the store's lock ({e.LockFile}); stop it first");
            }
            if (r.GetValue(json))
            {
                c.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    report.Directory, report.QuarantineDirectory, report.Actions, report.QuarantinedFiles,
                    problemsBefore = report.Before.Problems.Select(p => p.ToString()),
                    problemsAfter = report.After.Problems.Select(p => p.ToString()),
                    healthy = report.After.Healthy,
                }, JsonOut.Options));
            }
            else
            {
                if (report.Before.Healthy) c.Out.WriteLine("verify found no problems before the repair");
                foreach (var p in report.Before.Problems) c.Out.WriteLine("found: " + p);
                foreach (var a in report.Actions) c.Out.WriteLine("did: " + a);
                foreach (var p in report.After.Problems) c.Out.WriteLine("still: " + p);
                c.Out.WriteLine("after repair: " + Summary(report.After));
            }
            return report.After.Healthy ? Program.Ok : Program.Problems;
        }));
        return cmd;
    }
}
