using Bitcask.Storage;

namespace Bitcask.Tests.Primitives;

/// <summary>
/// The real file system, except that while <see cref="HoldNextSync"/> is armed the next file fsync blocks until
/// <see cref="Release"/>: the group-commit leader then sits in its fdatasync, and writes submitted meanwhile queue up
/// to form the next commit group together, in submission order.
/// </summary>
internal sealed class GatedFileSystem : IStorageFileSystem
{
    private readonly IStorageFileSystem _inner = OsFileSystem.Instance;
    private readonly ManualResetEventSlim _released = new(true);
    private int _armed;

    /// <summary>Set when a held fsync has started waiting.</summary>
    public ManualResetEventSlim Holding { get; } = new(false);

    public void HoldNextSync()
    {
        _released.Reset();
        Holding.Reset();
        Volatile.Write(ref _armed, 1);
    }

    public void Release() => _released.Set();

    private void OnSync()
    {
        if (Interlocked.Exchange(ref _armed, 0) == 0) return;
        Holding.Set();
        if (!_released.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException("the held fsync was never released");
    }

    public bool DirectoryExists(string path) => _inner.DirectoryExists(path);
    public bool TryHardLink(string source, string target) => _inner.TryHardLink(source, target);
    public bool FileExists(string path) => _inner.FileExists(path);
    public void CreateDirectory(string path) => _inner.CreateDirectory(path);
    public IReadOnlyList<string> ListFiles(string directory) => _inner.ListFiles(directory);
    public IStorageFile OpenFile(string path, StorageOpenMode mode) => new File(_inner.OpenFile(path, mode), this);
    public void Rename(string source, string destination) => _inner.Rename(source, destination);
    public void Delete(string path) => _inner.Delete(path);
    public void SyncDirectory(string directory) => _inner.SyncDirectory(directory);
    public IDisposable Lock(string lockPath) => _inner.Lock(lockPath);

    private sealed class File(IStorageFile inner, GatedFileSystem fs) : IStorageFile
    {
        public string Path => inner.Path;
        public long Length => inner.Length;
        public int Read(long offset, Span<byte> destination) => inner.Read(offset, destination);
        public void Write(long offset, ReadOnlySpan<byte> source) => inner.Write(offset, source);

        public void Sync()
        {
            fs.OnSync();
            inner.Sync();
        }

        public void Truncate(long length) => inner.Truncate(length);
        public FileMapping? Map(long capacity) => inner.Map(capacity);
        public void Dispose() => inner.Dispose();
    }
}
