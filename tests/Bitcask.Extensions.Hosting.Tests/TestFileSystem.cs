using Bitcask.Storage;
using Microsoft.Extensions.Logging;

namespace Bitcask.Extensions.Hosting.Tests;

/// <summary>
/// The real file system, with two switches: <see cref="FailWrites"/> makes every file write fail with ENOSPC (disk
/// full), and <see cref="HoldSyncs"/> makes every fsync wait until <see cref="Release"/>.
/// </summary>
internal sealed class TestFileSystem : IStorageFileSystem
{
    private readonly IStorageFileSystem _inner = OsFileSystem.Instance;
    private readonly ManualResetEventSlim _released = new(true);
    public volatile bool FailWrites;
    public ManualResetEventSlim Holding { get; } = new(false);

    public void HoldSyncs() => _released.Reset();
    public void Release() => _released.Set();

    private void OnSync()
    {
        if (_released.IsSet) return;
        Holding.Set();
        _released.Wait(TimeSpan.FromSeconds(60));
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

    private sealed class File(IStorageFile inner, TestFileSystem fs) : IStorageFile
    {
        public string Path => inner.Path;
        public long Length => inner.Length;
        public int Read(long offset, Span<byte> destination) => inner.Read(offset, destination);

        public void Write(long offset, ReadOnlySpan<byte> source)
        {
            if (fs.FailWrites) throw new IOException("No space left on device", 28);
            inner.Write(offset, source);
        }

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

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bitcask-host-").FullName;
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Keeps every log line the host's logger factory writes.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public System.Collections.Concurrent.ConcurrentQueue<(string Category, LogLevel Level, string Message)> Lines { get; } = new();
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);
    public void Dispose() { }

    private sealed class Logger(string category, CapturingLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue((category, logLevel, formatter(state, exception)));
    }
}
