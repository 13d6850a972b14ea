using System.Diagnostics;
using Bitcask.Format;

namespace Bitcask;

// Online backup: a cut at one revision, then hard links for sealed segments, a copy of the active segment's committed
// prefix, and hints (StoreBackup). Reads and writes go on throughout; only compaction and hint writes wait for the cut.
public sealed partial class BitcaskStore
{
    /// <summary>
    /// Writes a consistent copy of the store, as of one revision, into <paramref name="targetDirectory"/> (which must be
    /// missing or empty, and outside this store's directory), while reads and writes go on. Opening the target is the
    /// restore: it holds exactly the writes up to <see cref="BackupResult.Revision"/>.
    /// <para>Sealed segments are immutable, so they become hard links where the file system allows (else copies); the
    /// active segment's bytes up to the cut are copied; every segment gets a hint file (the source's when valid, else one
    /// built from the bytes). Every file written is fdatasynced and the target directory fsynced before this returns, so
    /// the backup survives a power loss from then on. The cut waits for a running compaction or hint write, never for
    /// readers or writers; a compaction after the cut may delete segments the backup is still copying: their bytes stay
    /// readable through the handles this backup holds.</para>
    /// <para>On a <see cref="BitcaskOptions.ReadOnly"/> store the cut is the store's open: the segments it loaded, the newest
    /// write segment copied up to the whole records that open saw. A writer in another process goes on undisturbed.</para>
    /// <para>A backup that throws removes the files it wrote (best effort); one interrupted by a crash is incomplete and
    /// must be deleted, not opened. Hard links share their bytes with the source's files, which the engine never modifies
    /// in place (compaction writes new files, open truncates only a torn tail of the newest write segment, which is always
    /// copied), so the backup is not changed by the source's later work; damage to the disk reaches both.</para>
    /// </summary>
    /// <exception cref="ArgumentException">The target is the store's directory or inside it.</exception>
    /// <exception cref="IOException">The target is a file or a non-empty directory, or an I/O error occurred.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> fired (the files written so far are removed).</exception>
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public BackupResult Backup(string targetDirectory, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        using var activity = Telemetry.StartActivity("bitcask.backup", Directory);
        try
        {
            var clock = Stopwatch.StartNew();
            var target = StoreBackup.CheckTarget(_fs, Directory, targetDirectory);
            var cut = _background is not null ? _background.RunExclusive(TakeCut, ct) : ReadOnlyCut();
            try
            {
                AfterBackupCutForTests?.Invoke();
                var result = new StoreBackup(_fs, Directory, target, cut, ct).Run(clock);
                activity?.SetTag("bitcask.revision", result.Revision);
                activity?.SetTag("bitcask.bytes_copied", result.BytesCopied);
                return result;
            }
            finally
            {
                foreach (var segment in cut.Segments) segment.Release();
            }
        }
        catch (Exception e) when (Telemetry.Failed(activity, e))
        {
            throw;
        }
    }

    /// <summary>The cut of a writable store, taken under the maintenance lock (no compaction can change the segment set
    /// meanwhile): a <see cref="WriteRequestKind.Cut"/> through group commit records the set, the active segment's length and
    /// the revision between two groups; then a reader reference on every segment of the set.</summary>
    private StoreCut TakeCut()
    {
        var request = new WriteRequest();
        request.Reset(WriteRequestKind.Cut);
        WritableCommit().Submit(request);
        var cut = request.Cut ?? throw new InvalidOperationException("The group-commit leader did not record the backup's cut; this is a bug.");
        return cut with { Segments = AcquireAll(cut.Segments) };
    }

    /// <summary>A read-only store's segments are as of its open; the newest write segment is treated as the active one (a
    /// writer beside this store may still be appending to it): copied up to the length the open loaded, never linked.
    /// The revision is the newest record the open loaded, not <see cref="Revision"/>: that one also counts base sequences
    /// (a writer's segment created just before the open, or an empty sealed one a compaction merged), which name writes
    /// the open may not have seen.</summary>
    private StoreCut ReadOnlyCut()
    {
        var segments = _segments.Snapshot();
        var newestWrite = segments.Where(s => s.Header.Kind == SegmentKind.Write).MaxBy(s => s.Id);
        var loaded = segments.Select(s => s.MaxSequence).DefaultIfEmpty(0UL).Max();
        return new StoreCut(AcquireAll(segments), newestWrite, newestWrite?.FileLength ?? 0, loaded);
    }

    /// <summary>Test seam: runs after the cut is taken (and the maintenance lock released), before anything is copied.</summary>
    internal Action? AfterBackupCutForTests { get; set; }

    private Segment[] AcquireAll(Segment[] segments)
    {
        for (var i = 0; i < segments.Length; i++)
        {
            if (segments[i].TryAcquire()) continue;
            for (var j = 0; j < i; j++) segments[j].Release();
            ThrowIfDisposed();
            throw new InvalidOperationException($"Segment {segments[i].Id} was retired during the backup's cut; this is a bug.");
        }
        return segments;
    }
}
