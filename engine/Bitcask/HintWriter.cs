using System.Buffers;
using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask;

/// <summary>
/// Writes hint files (FORMAT.md §4) crash-safely: build in memory, write <c>NNNNNNNNNN.hint.tmp</c>, fdatasync, rename
/// into place, fsync the directory. A crash at any step leaves either no hint (open scans the segment) or a whole one.
/// <para>Thread-safety: stateless apart from its settings; callers serialize writes for the same segment.</para>
/// </summary>
internal sealed class HintWriter(IStorageFileSystem fs, string directory)
{
    /// <summary>Builds and writes the hint of a sealed segment from the segment's own bytes.</summary>
    public void WriteFor(Segment segment)
    {
        if (!segment.TryAcquire()) return; // compacted away meanwhile: no hint needed
        try
        {
            var length = segment.Length;
            byte[]? scratch = null;
            var data = segment.Read(0, (int)length, ref scratch);
            var output = new ArrayBufferWriter<byte>((int)Math.Clamp(length / 8, 4096, 16 << 20)); // grows as needed
            HintFile.Build(data, segment.Header.Size, segment.Id, RecordLimits.For(segment.Header.Version), output);
            Write(segment.Id, output.WrittenSpan);
            segment.HasHint = true;
        }
        finally
        {
            segment.Release();
        }
    }

    /// <summary>Writes finished hint bytes for a segment id under the temporary name, synced, then renamed and dir-synced.</summary>
    public void Write(uint segmentId, ReadOnlySpan<byte> hint)
    {
        var final = Path.Combine(directory, StoreFiles.HintName(segmentId));
        var temp = final + StoreFiles.TempExtension;
        WriteTemp(temp, hint);
        fs.Rename(temp, final);
        fs.SyncDirectory(directory); // the hint's final name is durable (and its content was fsynced before the rename)
    }

    /// <summary>Writes and fdatasyncs <paramref name="path"/> (replacing a leftover of the same name).</summary>
    public void WriteTemp(string path, ReadOnlySpan<byte> bytes)
    {
        if (fs.FileExists(path)) fs.Delete(path);
        using var file = fs.OpenFile(path, StorageOpenMode.CreateNew);
        file.Write(0, bytes);
        file.Sync(); // the hint's bytes are durable before its name can point at them
    }
}
