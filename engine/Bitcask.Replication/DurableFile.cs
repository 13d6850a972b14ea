namespace Bitcask.Replication;

/// <summary>Small files of the Raft directory (cluster id, membership) written so a crash leaves either no file or the
/// whole new one. Thread-safety: static and stateless; concurrent writers of one path must not overlap.</summary>
internal static class DurableFile
{
    /// <summary>Writes <paramref name="content"/> to <c>file.tmp</c>, fsyncs it, renames it over <paramref name="file"/>
    /// and fsyncs the directory.</summary>
    public static void Write(string file, ReadOnlySpan<byte> content)
    {
        var tmp = file + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(content);
            fs.Flush(flushToDisk: true); // the whole content is on disk before the name points at it
        }
        File.Move(tmp, file, overwrite: true);
        Bitcask.Storage.Native.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!); // the rename itself survives a power loss
    }
}
