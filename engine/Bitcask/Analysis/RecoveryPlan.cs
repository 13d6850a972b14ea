using Bitcask.Format;
using Bitcask.Storage;
using Microsoft.Extensions.Logging;

namespace Bitcask.Analysis;

/// <summary>One file change a read-write open makes after the analysis decided it will succeed.</summary>
internal abstract record PlanStep(string Path, string Reason)
{
    /// <summary>Removes a file the analysis judged debris (a temporary file, an interrupted creation, an interrupted
    /// compaction's output, a finished compaction's stale input, a hint of a replaced segment).</summary>
    public sealed record DeleteFile(string Path, string Reason) : PlanStep(Path, Reason);

    /// <summary>Cuts a torn tail: when <see cref="SaveTail"/>, the bytes from <see cref="Length"/> on are first written
    /// (and fsynced) to quarantine/, because they hold valid records after the first bad byte.</summary>
    public sealed record TruncateSegment(string Path, long Length, bool SaveTail, string Reason) : PlanStep(Path, Reason);
}

/// <summary>
/// The file changes an open decided on, applied only once the whole analysis is done and the open will succeed
/// ("decide first, then change files"). Every step is idempotent and the analysis of a store whose plan was cut short by
/// a crash reaches the same plan for what is left, so an interrupted apply is finished by the next open.
/// </summary>
internal sealed class RecoveryPlan
{
    private readonly List<PlanStep> _steps = [];

    public IReadOnlyList<PlanStep> Steps => _steps;

    public void Add(PlanStep step)
    {
        lock (_steps) _steps.Add(step);
    }

    /// <summary>
    /// Applies every step in order: hint files before the segments they describe (a hint whose segment is gone would
    /// otherwise read as a lost segment if the crash came between), truncations with their quarantine copy first; then one
    /// directory fsync makes the removals durable before any new write can build on them.
    /// </summary>
    public void Apply(IStorageFileSystem fs, string directory, ILogger logger)
    {
        if (_steps.Count == 0) return;
        var ordered = _steps.OrderBy(s => s switch
        {
            PlanStep.DeleteFile d when d.Path.EndsWith(StoreFiles.TempExtension, StringComparison.Ordinal) => 0,
            PlanStep.DeleteFile d when d.Path.EndsWith(StoreFiles.HintExtension, StringComparison.Ordinal) => 1,
            PlanStep.DeleteFile => 2,
            _ => 3,
        }).ToList();
        foreach (var step in ordered)
        {
            switch (step)
            {
                case PlanStep.DeleteFile d:
                    if (fs.FileExists(d.Path)) fs.Delete(d.Path);
                    Log.RemovedLeftover(logger, d.Path, d.Reason);
                    break;
                case PlanStep.TruncateSegment t:
                    if (t.SaveTail) SaveToQuarantine(fs, directory, t.Path, t.Length);
                    using (var file = fs.OpenFile(t.Path, StorageOpenMode.ReadWrite))
                    {
                        if (file.Length > t.Length)
                        {
                            file.Truncate(t.Length);
                            file.Sync(); // the shorter length is durable before new segments build on it
                        }
                    }
                    break;
            }
        }
        fs.SyncDirectory(directory); // removals made by recovery are durable before new writes
    }

    /// <summary>The name a cut torn tail gets in quarantine/ (FORMAT.md §1).</summary>
    public static string TailQuarantineName(string segmentPath, long offset) => $"{System.IO.Path.GetFileName(segmentPath)}.{offset}.tail";

    /// <summary>Copies the bytes from <paramref name="offset"/> to the end of the segment into quarantine/, durably, before they are cut.</summary>
    private static void SaveToQuarantine(IStorageFileSystem fs, string directory, string segmentPath, long offset)
    {
        var quarantine = System.IO.Path.Combine(directory, StoreFiles.QuarantineDirectory);
        if (!fs.DirectoryExists(quarantine))
        {
            fs.CreateDirectory(quarantine);
            fs.SyncDirectory(directory); // quarantine/ itself survives a crash
        }
        byte[] tail;
        using (var source = fs.OpenFile(segmentPath, StorageOpenMode.ReadOnly))
        {
            if (source.Length <= offset) return; // already cut by an earlier, interrupted apply: its copy was saved then
            tail = new byte[source.Length - offset];
            tail = tail[..source.Read(offset, tail)];
        }
        var path = System.IO.Path.Combine(quarantine, TailQuarantineName(segmentPath, offset));
        if (fs.FileExists(path)) fs.Delete(path);
        using (var file = fs.OpenFile(path, StorageOpenMode.CreateNew))
        {
            file.Write(0, tail);
            file.Sync(); // the saved copy is durable before the original bytes are cut
        }
        fs.SyncDirectory(quarantine); // and so is its name
    }
}
