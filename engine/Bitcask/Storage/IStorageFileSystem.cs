namespace Bitcask.Storage;

/// <summary>
/// The one seam through which the engine touches the file system. Production uses <see cref="OsFileSystem"/>;
/// the crash-recovery suite substitutes an implementation that records every operation, simulates power loss
/// (dropping, tearing or garbling un-fsynced bytes, undoing un-fsynced directory changes) and injects ENOSPC/EIO.
/// Paths are full paths. Implementations must be safe for concurrent use.
/// </summary>
internal interface IStorageFileSystem
{
    bool DirectoryExists(string path);
    bool FileExists(string path);
    void CreateDirectory(string path);
    /// <summary>File names (not paths) directly inside <paramref name="directory"/>.</summary>
    IReadOnlyList<string> ListFiles(string directory);
    IStorageFile OpenFile(string path, StorageOpenMode mode);
    /// <summary>Atomically replaces <paramref name="destination"/> with <paramref name="source"/>. Not durable until <see cref="SyncDirectory"/>.</summary>
    void Rename(string source, string destination);
    /// <summary>Removes a file. Not durable until <see cref="SyncDirectory"/>.</summary>
    void Delete(string path);
    /// <summary>
    /// Makes <paramref name="target"/> a second name (a hard link) of the existing file <paramref name="source"/>. Returns
    /// false, changing nothing, when this file system cannot link them: across file systems, a file system without hard
    /// links, or a <paramref name="source"/> that no longer exists (the caller then copies the bytes itself). Throws
    /// <see cref="IOException"/> for any other failure (for example when <paramref name="target"/> exists). Like a create,
    /// the new name is not durable until <see cref="SyncDirectory"/> of the target's directory.
    /// </summary>
    bool TryHardLink(string source, string target);
    /// <summary>fsync of the directory itself: makes creates, renames and deletes inside it durable.</summary>
    void SyncDirectory(string directory);
    /// <summary>Takes the exclusive writer lock on <paramref name="lockPath"/>; throws <see cref="StoreLockedException"/> when another holder has it.
    /// The lock dies with the process.</summary>
    IDisposable Lock(string lockPath);
}

internal enum StorageOpenMode
{
    /// <summary>Creates a new file; fails when it exists.</summary>
    CreateNew,
    /// <summary>Opens an existing file for reading and writing.</summary>
    ReadWrite,
    /// <summary>Opens an existing file for reading only.</summary>
    ReadOnly,
}

/// <summary>An open file. Reads may run concurrently with each other and with one writer.</summary>
internal interface IStorageFile : IDisposable
{
    string Path { get; }
    long Length { get; }
    /// <summary>Reads up to <c>destination.Length</c> bytes at <paramref name="offset"/>; returns the count read (less at end of file).</summary>
    int Read(long offset, Span<byte> destination);
    /// <summary>Writes all of <paramref name="source"/> at <paramref name="offset"/> (may fail part-way, leaving a prefix written).</summary>
    void Write(long offset, ReadOnlySpan<byte> source);
    /// <summary>fdatasync: the file's bytes written so far survive power loss when this returns.</summary>
    void Sync();
    void Truncate(long length);
    /// <summary>
    /// Maps <paramref name="capacity"/> bytes of the file for reading, or returns null when this file system cannot map
    /// (callers then fall back to <see cref="Read"/>). Bytes of the mapping beyond the current end of file must not be read.
    /// </summary>
    FileMapping? Map(long capacity);
}

/// <summary>A read-only view of a file's bytes; released with <see cref="IDisposable.Dispose"/> once no reader uses it.</summary>
internal abstract class FileMapping : IDisposable
{
    public abstract long Capacity { get; }
    public abstract ReadOnlySpan<byte> GetSpan(long offset, int length);
    public abstract void Dispose();
}
