using Microsoft.Win32.SafeHandles;

namespace Bitcask.Storage;

/// <summary>The real file system. Thread-safe.</summary>
internal sealed class OsFileSystem : IStorageFileSystem
{
    public static readonly OsFileSystem Instance = new();

    public bool DirectoryExists(string path) => Directory.Exists(path);
    public bool FileExists(string path) => File.Exists(path);
    public void CreateDirectory(string path) => Directory.CreateDirectory(path);

    public IReadOnlyList<string> ListFiles(string directory) =>
        Directory.EnumerateFiles(directory).Select(p => Path.GetFileName(p)).ToArray();

    public IStorageFile OpenFile(string path, StorageOpenMode mode)
    {
        var handle = mode switch
        {
            StorageOpenMode.CreateNew => File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete),
            StorageOpenMode.ReadWrite => File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete),
            _ => File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete),
        };
        return new OsFile(path, handle);
    }

    public void Rename(string source, string destination) => File.Move(source, destination, overwrite: true);
    public void Delete(string path) => File.Delete(path);
    public void SyncDirectory(string directory) => Native.SyncDirectory(directory);
    public bool TryHardLink(string source, string target) => Native.TryLink(source, target);

    public IDisposable Lock(string lockPath)
    {
        try
        {
            // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Unix; the kernel drops it when the process dies, even by kill -9.
            var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n");
            stream.Write(pid);
            stream.Flush();
            return stream;
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new StoreLockedException(Path.GetDirectoryName(lockPath) ?? lockPath, lockPath, e);
        }
    }

    private sealed class OsFile(string path, SafeFileHandle handle) : IStorageFile
    {
        public string Path { get; } = path;
        public long Length => RandomAccess.GetLength(handle);
        public int Read(long offset, Span<byte> destination)
        {
            var total = 0;
            while (total < destination.Length)
            {
                var n = RandomAccess.Read(handle, destination[total..], offset + total);
                if (n == 0) break;
                total += n;
            }
            return total;
        }
        public void Write(long offset, ReadOnlySpan<byte> source) => RandomAccess.Write(handle, source, offset);
        public void Sync()
        {
            var start = Telemetry.FsyncDuration.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            if (!Native.TryDataSync(handle, Path)) RandomAccess.FlushToDisk(handle);
            if (start != 0) Telemetry.FsyncDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        public void Truncate(long length) => RandomAccess.SetLength(handle, length);
        public FileMapping? Map(long capacity) => Native.IsLinux && capacity > 0 ? new OsMapping(handle, capacity, Path) : null;
        public void Dispose() => handle.Dispose();
    }

    private sealed unsafe class OsMapping : FileMapping
    {
        private nint _address;
        private readonly long _capacity;

        public OsMapping(SafeFileHandle handle, long capacity, string path)
        {
            _capacity = capacity;
            _address = Native.Map(handle, capacity, path);
        }

        public override long Capacity => _capacity;

        public override ReadOnlySpan<byte> GetSpan(long offset, int length)
        {
            if ((ulong)offset + (ulong)length > (ulong)_capacity) throw new ArgumentOutOfRangeException(nameof(offset));
            return new ReadOnlySpan<byte>((byte*)_address + offset, length);
        }

        public override void Dispose()
        {
            var address = Interlocked.Exchange(ref _address, 0);
            if (address != 0) Native.Unmap(address, _capacity);
        }
    }
}
