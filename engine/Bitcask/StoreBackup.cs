using System.Buffers;
using System.Diagnostics;
using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask;

/// <summary>
/// One moment of a store: the segments it held, the active segment (null when none) and how many of its bytes the cut
/// covers, and the revision every record up to which lies inside those bytes. A writable store takes it on the
/// group-commit leader between two groups (<see cref="WriteRequestKind.Cut"/>); a read-only store's segments are
/// themselves one such moment (its open).
/// </summary>
internal sealed record StoreCut(Segment[] Segments, Segment? Active, long ActiveLength, ulong Revision);

/// <summary>
/// Writes a backup from a <see cref="StoreCut"/> whose segments the caller holds reader references on
/// (<see cref="Segment.TryAcquire"/>): a compaction that deletes one after the cut cannot take its bytes away, because the
/// open handle and mapping stay valid until the reference is released.
/// <para>Why the result is a valid store at exactly the cut's revision: the cut holds the segment set as the store held it
/// at one moment with no compaction in progress, which is what its directory held then, minus only files the store had
/// already dropped (stale inputs of a finished compaction, which the outputs name in their superseded ranges). Every
/// sealed segment is immutable and whole; the active segment is cut at a group boundary, after which nothing in it is
/// older than the cut. So FORMAT.md §5 judges the copy as it would judge the source directory at that moment: finished
/// runs stay finished (all their outputs are in the set, or superseded by a later finished run), every write segment's
/// predecessor is present or superseded, and the copied prefix is the newest write segment (no compaction output can
/// have a base sequence at or above it: compaction only takes sealed segments, which are older).</para>
/// <para>Thread-safety: one instance per backup, used by one thread (reader references are released on the thread that
/// took them).</para>
/// </summary>
internal sealed class StoreBackup(IStorageFileSystem fs, string sourceDirectory, string targetDirectory, StoreCut cut, CancellationToken ct)
{
    private const int CopyChunk = 1 << 20;
    private readonly List<string> _written = [];
    private byte[]? _scratch;
    private int _linked, _copied, _hints;
    private long _bytes;

    /// <summary>Checks that <paramref name="target"/> may receive a backup of the store in <paramref name="source"/>: not
    /// the store itself or inside it, not a file, missing or empty. Returns its full path.</summary>
    public static string CheckTarget(IStorageFileSystem fs, string source, string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        var src = Path.TrimEndingDirectorySeparator(source);
        if (string.Equals(full, src, StringComparison.Ordinal) || full.StartsWith(src + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"The backup target '{full}' is the store directory or inside it; choose a directory outside '{src}'.");
        if (fs.FileExists(full)) throw new IOException($"The backup target '{full}' is a file; give a missing or empty directory.");
        if (fs.DirectoryExists(full) && (fs.ListFiles(full).Count > 0 || (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())))
            throw new IOException($"The backup target '{full}' is not empty; give a missing or empty directory.");
        return full;
    }

    public BackupResult Run(Stopwatch clock)
    {
        try
        {
            if (!fs.DirectoryExists(targetDirectory))
            {
                var created = new List<string>();
                for (var d = targetDirectory; d is not null && !fs.DirectoryExists(d); d = Path.GetDirectoryName(d)) created.Add(d);
                fs.CreateDirectory(targetDirectory);
                // The names of the backup directory and of every parent created for it survive a crash.
                foreach (var d in created) if (Path.GetDirectoryName(d) is { } parent) fs.SyncDirectory(parent);
            }
            foreach (var segment in cut.Segments)
            {
                ct.ThrowIfCancellationRequested();
                var isActive = ReferenceEquals(segment, cut.Active);
                var length = isActive ? cut.ActiveLength : segment.FileLength;
                var target = Path.Combine(targetDirectory, StoreFiles.SegmentName(segment.Id));
                if (isActive || !Link(segment, length, target)) Copy(segment, length, target);
                WriteHint(segment, length, isActive);
            }
            // One fsync of the directory makes every name above durable: the copies' and hints' creates and the hard links
            // (link(2) is a metadata change journaled with the directory, and a linked segment's bytes were fdatasynced by
            // the store when it was sealed or written).
            fs.SyncDirectory(targetDirectory);
        }
        catch
        {
            RemoveWritten();
            throw;
        }
        return new BackupResult
        {
            Revision = (long)cut.Revision,
            TargetDirectory = targetDirectory,
            SegmentsLinked = _linked,
            SegmentsCopied = _copied,
            HintFiles = _hints,
            BytesCopied = _bytes,
            Duration = clock.Elapsed,
        };
    }

    /// <summary>Hard-links a sealed segment. Kept only when the link has exactly the bytes the cut saw; otherwise (a file
    /// system without links, a file deleted after the cut, a file that is not the one the store holds) the caller copies.</summary>
    private bool Link(Segment segment, long length, string target)
    {
        if (!fs.TryHardLink(segment.Path, target)) return false;
        _written.Add(target);
        long linkedLength;
        using (var file = fs.OpenFile(target, StorageOpenMode.ReadOnly)) linkedLength = file.Length;
        if (linkedLength == length)
        {
            _linked++;
            return true;
        }
        fs.Delete(target); // not the bytes the cut holds (a read-only open's view of a file that grew): copy them instead
        _written.Remove(target);
        return false;
    }

    /// <summary>Copies the first <paramref name="length"/> bytes of the segment, read through the store's own handle or
    /// mapping (so a file a compaction deleted after the cut still copies), and fdatasyncs the copy.</summary>
    private void Copy(Segment segment, long length, string target)
    {
        using var file = fs.OpenFile(target, StorageOpenMode.CreateNew);
        _written.Add(target);
        for (long offset = 0; offset < length; offset += CopyChunk)
        {
            ct.ThrowIfCancellationRequested();
            var n = (int)Math.Min(CopyChunk, length - offset);
            var bytes = segment.Read(offset, n, ref _scratch);
            if (bytes.Length != n) throw new IOException($"Backup could not read bytes {offset}..{offset + n} of '{segment.Path}' ({bytes.Length} readable).");
            file.Write(offset, bytes);
        }
        file.Sync(); // the copy's bytes are durable before the directory fsync publishes its name
        _copied++;
        _bytes += length;
    }

    /// <summary>Writes the segment's hint: the source's hint file when it is valid for exactly these bytes, else one built
    /// from the bytes (always for the copied active prefix, whose hint also proves it whole: no torn tail). A segment that
    /// cannot get one (damaged records in a read-only store's segment) goes without; open then scans it.</summary>
    private void WriteHint(Segment segment, long length, bool isActive)
    {
        var hint = isActive ? null : ReadValidHint(segment, length);
        if (hint is null)
        {
            var data = segment.Read(0, checked((int)length), ref _scratch);
            if (data.Length != length) return;
            var output = new ArrayBufferWriter<byte>((int)Math.Clamp(length / 8, 4096, 16 << 20));
            try
            {
                HintFile.Build(data, segment.Header.Size, segment.Id, RecordLimits.For(segment.Header.Version), output);
            }
            catch (InvalidDataException)
            {
                return;
            }
            hint = output.WrittenSpan.ToArray();
        }
        var target = Path.Combine(targetDirectory, StoreFiles.HintName(segment.Id));
        using var file = fs.OpenFile(target, StorageOpenMode.CreateNew);
        _written.Add(target);
        file.Write(0, hint);
        file.Sync(); // a hint is only used whole, but a half-written one would cost the next open a scan
        _hints++;
        _bytes += hint.Length;
    }

    /// <summary>The source's hint file for the segment, when it exists and is valid for its first <paramref name="length"/>
    /// bytes (FORMAT.md §4); else null.</summary>
    private byte[]? ReadValidHint(Segment segment, long length)
    {
        var path = Path.Combine(sourceDirectory, StoreFiles.HintName(segment.Id));
        byte[] bytes;
        try
        {
            using var file = fs.OpenFile(path, StorageOpenMode.ReadOnly);
            var size = file.Length;
            if (size > int.MaxValue) return null;
            bytes = new byte[size];
            if (file.Read(0, bytes) != size) return null;
        }
        catch (IOException)
        {
            return null; // none, or deleted by a compaction after the cut: build one
        }
        var problem = HintFile.Validate(bytes, segment.Id, length, segment.Header.Crc, segment.Header.Size, segment.Header.Version, out _);
        return problem is null ? bytes : null;
    }

    /// <summary>After a failure: removes what this backup wrote (best effort), so the target is not mistaken for a backup.</summary>
    private void RemoveWritten()
    {
        foreach (var path in _written)
            try { fs.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
