using System.Buffers;
using Bitcask.Storage;

namespace Bitcask.Tests;

/// <summary>
/// "A read never returns wrong bytes" also when the caller's <see cref="IBufferWriter{T}"/> reads the store again from
/// inside <see cref="IBufferWriter{T}.GetSpan"/>, i.e. between the read's CRC check and its copy of the value. Only reads
/// that copy the record into a per-thread buffer can be hurt: a record still in the active segment's write buffer
/// (<see cref="Durability.Buffered"/>) and every read when the file system gives no mapping. Both paths are covered.
/// </summary>
public class ReentrantReadTests
{
    public enum RecordPath
    {
        /// <summary>Buffered durability with a sync interval long enough that the records never leave the write buffer.</summary>
        ActiveSegmentWriteBuffer,
        /// <summary>Records handed to the OS, read back with pread because the file system maps nothing.</summary>
        FileWithoutMapping,
    }

    [Theory]
    [InlineData(RecordPath.ActiveSegmentWriteBuffer, true)]
    [InlineData(RecordPath.ActiveSegmentWriteBuffer, false)]
    [InlineData(RecordPath.FileWithoutMapping, true)]
    [InlineData(RecordPath.FileWithoutMapping, false)]
    public void A_destination_that_reads_another_key_while_getting_its_span_still_receives_the_requested_value(RecordPath path, bool sameStore)
    {
        using var dirA = new TempDirectory();
        using var dirB = new TempDirectory();
        var options = path == RecordPath.ActiveSegmentWriteBuffer
            ? new BitcaskOptions { Durability = Durability.Buffered, SyncInterval = TimeSpan.FromHours(1), CompactionEnabled = false }
            : new BitcaskOptions { CompactionEnabled = false };
        IStorageFileSystem fs = path == RecordPath.FileWithoutMapping ? new FileSystemWithoutMapping() : OsFileSystem.Instance;
        using var storeA = BitcaskStore.Open(dirA.Path, options, fs);
        using var otherStore = sameStore ? null : BitcaskStore.Open(dirB.Path, options, fs);
        var storeB = otherStore ?? storeA;
        // Same key and value lengths, so b's record fits exactly where a's was: the worst case, wrong bytes and no exception.
        var valueA = Enumerable.Repeat((byte)'A', 40).ToArray();
        var valueB = Enumerable.Repeat((byte)'B', 40).ToArray();
        storeA.Put("a"u8, valueA);
        storeB.Put("b"u8, valueB);
        if (path == RecordPath.ActiveSegmentWriteBuffer)
            Assert.All(Directory.GetFiles(dirA.Path, "*.seg"), f => Assert.Equal(64, new FileInfo(f).Length)); // nothing left the buffer

        byte[]? readInside = null;
        var destination = new DestinationThatReadsOnGetSpan(() => readInside = storeB.Get("b"u8));

        Assert.True(storeA.TryGet("a"u8, destination));
        Assert.Equal(valueA, destination.WrittenSpan.ToArray());
        Assert.Equal(valueB, readInside);
        Assert.Equal(valueA, storeA.Get("a"u8)); // and the thread's buffer still works afterwards
    }

    /// <summary>Runs <c>onFirstGetSpan</c> the first time the store asks for space, then behaves as an <see cref="ArrayBufferWriter{T}"/>.</summary>
    private sealed class DestinationThatReadsOnGetSpan(Action onFirstGetSpan) : IBufferWriter<byte>
    {
        private readonly ArrayBufferWriter<byte> _written = new();
        private Action? _pending = onFirstGetSpan;

        public ReadOnlySpan<byte> WrittenSpan => _written.WrittenSpan;

        public void Advance(int count) => _written.Advance(count);

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            RunPending();
            return _written.GetMemory(sizeHint);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            RunPending();
            return _written.GetSpan(sizeHint);
        }

        private void RunPending()
        {
            var action = _pending;
            _pending = null;
            action?.Invoke();
        }
    }

    /// <summary>The real file system, except that it maps nothing, so every read goes through pread into a buffer.</summary>
    private sealed class FileSystemWithoutMapping : IStorageFileSystem
    {
        private readonly IStorageFileSystem _os = OsFileSystem.Instance;
        public bool DirectoryExists(string path) => _os.DirectoryExists(path);
        public bool FileExists(string path) => _os.FileExists(path);
        public void CreateDirectory(string path) => _os.CreateDirectory(path);
        public IReadOnlyList<string> ListFiles(string directory) => _os.ListFiles(directory);
        public IStorageFile OpenFile(string path, StorageOpenMode mode) => new FileWithoutMapping(_os.OpenFile(path, mode));
        public void Rename(string source, string destination) => _os.Rename(source, destination);
        public void Delete(string path) => _os.Delete(path);
        public void SyncDirectory(string directory) => _os.SyncDirectory(directory);
        public bool TryHardLink(string source, string target) => _os.TryHardLink(source, target);
        public IDisposable Lock(string lockPath) => _os.Lock(lockPath);

        private sealed class FileWithoutMapping(IStorageFile file) : IStorageFile
        {
            public string Path => file.Path;
            public long Length => file.Length;
            public int Read(long offset, Span<byte> destination) => file.Read(offset, destination);
            public void Write(long offset, ReadOnlySpan<byte> source) => file.Write(offset, source);
            public void Sync() => file.Sync();
            public void Truncate(long length) => file.Truncate(length);
            public FileMapping? Map(long capacity) => null;
            public void Dispose() => file.Dispose();
        }
    }
}
