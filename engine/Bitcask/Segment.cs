using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask;

/// <summary>
/// One segment file: its header, its open handle, a read mapping and, while it is the active segment, the write buffer.
/// <para>Thread-safety: <see cref="Append"/>, <see cref="Flush"/> and <see cref="Sync"/> are called by one writer at a time
/// (the group-commit leader). <see cref="Read"/> may run on any number of threads, concurrently with the writer.
/// Readers bracket their use with <see cref="TryAcquire"/>/<see cref="Release"/>; the file and mapping close when the
/// last reference goes, so a segment deleted by compaction is never unmapped under a reader.</para>
/// </summary>
internal sealed class Segment
{
    private readonly IStorageFile _file;
    private FileMapping? _mapping;
    private long _fileLength;             // bytes handed to the OS
    private readonly Lock _bufferLock = new();
    private byte[]? _buffer;              // bytes after _fileLength not yet written (active segment only)
    private int _bufferLength;
    private readonly ReaderCount _readers = new();
    private int _retired;                 // set once the store dropped the segment
    private int _closed;
    private long _liveBytes;
    private long _durableLength;          // bytes known fsynced (the header is, from creation)

    private Segment(SegmentHeader header, IStorageFile file, long fileLength, FileMapping? mapping)
    {
        Header = header;
        _file = file;
        _fileLength = fileLength;
        _mapping = mapping;
    }

    public SegmentHeader Header { get; }
    public uint Id => Header.SegmentId;
    public string Path => _file.Path;
    public string FileName => System.IO.Path.GetFileName(_file.Path);
    public bool IsActive => _buffer is not null;
    public bool HasHint { get; set; }
    /// <summary>Smallest and largest record sequence numbers in the segment (0/0 when it holds none).</summary>
    public ulong MinSequence { get; set; }
    public ulong MaxSequence { get; set; }

    /// <summary>Bytes handed to the OS (the rest of <see cref="Length"/> is in the write buffer; they meet at a record boundary).</summary>
    public long FileLength => Volatile.Read(ref _fileLength);

    /// <summary>Offset at which the next appended byte lands (file bytes plus buffered bytes).</summary>
    public long Length => Volatile.Read(ref _fileLength) + _bufferLength;

    public long LiveBytes => Volatile.Read(ref _liveBytes);
    public void AddLive(long bytes) => Interlocked.Add(ref _liveBytes, bytes);
    public long RecordBytes => Length - Header.Size;

    /// <summary>Creates a new write segment: header written and fdatasync'd. The caller fsyncs the directory.</summary>
    public static Segment Create(IStorageFileSystem fs, string path, SegmentHeader header, long mapCapacity, int bufferBytes)
    {
        var file = fs.OpenFile(path, StorageOpenMode.CreateNew);
        try
        {
            var bytes = header.Encode();
            file.Write(0, bytes);
            file.Sync(); // the header is durable before any record can be acknowledged in this file
            var segment = new Segment(header, file, bytes.Length, file.Map(mapCapacity)) { _buffer = new byte[bufferBytes], _durableLength = bytes.Length };
            return segment;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Wraps an existing, already validated file as a sealed segment.</summary>
    public static Segment Open(SegmentHeader header, IStorageFile file, long length, FileMapping? mapping) =>
        new(header, file, length, mapping);

    /// <summary>Ends appending: the segment becomes sealed (read-only); the caller has flushed the buffer.</summary>
    public void SealForReading()
    {
        lock (_bufferLock)
        {
            if (_bufferLength != 0) throw new InvalidOperationException("Flush before sealing.");
            _buffer = null;
        }
    }

    /// <summary>Appends bytes at <see cref="Length"/> and returns their offset. Bytes reach the OS on <see cref="Flush"/>
    /// (or earlier, when the buffer fills).</summary>
    public long Append(ReadOnlySpan<byte> data)
    {
        var buffer = _buffer ?? throw new InvalidOperationException("Segment is sealed.");
        lock (_bufferLock)
        {
            var offset = _fileLength + _bufferLength;
            if (_bufferLength + data.Length > buffer.Length) FlushLocked();
            if (data.Length > buffer.Length)
            {
                WriteToFile(data);
                return offset;
            }
            data.CopyTo(buffer.AsSpan(_bufferLength));
            _bufferLength += data.Length;
            return offset;
        }
    }

    /// <summary>Hands buffered bytes to the OS (one write system call).</summary>
    public void Flush()
    {
        if (_bufferLength == 0) return;
        lock (_bufferLock) FlushLocked();
    }

    private void FlushLocked()
    {
        if (_bufferLength == 0) return;
        WriteToFile(_buffer.AsSpan(0, _bufferLength));
        _bufferLength = 0;
    }

    private void WriteToFile(ReadOnlySpan<byte> data)
    {
        _file.Write(_fileLength, data);
        Volatile.Write(ref _fileLength, _fileLength + data.Length);
    }

    /// <summary>fdatasync of everything handed to the OS so far.</summary>
    public void Sync()
    {
        var length = Volatile.Read(ref _fileLength);
        _file.Sync();
        // A background writeback sync may race the writer's own: keep the larger durable length.
        for (var known = Volatile.Read(ref _durableLength); length > known; known = Volatile.Read(ref _durableLength))
            if (Interlocked.CompareExchange(ref _durableLength, length, known) == known) break;
    }

    /// <summary>Length of the segment right after its last sync marker (writer thread only).</summary>
    public long MarkedLength { get; set; }

    /// <summary>File length at which the last background writeback sync was started (writer thread only).</summary>
    public long WritebackRequestedAt { get; set; }

    /// <summary>Bytes of this segment known to be on disk (as of the last successful <see cref="Sync"/>).</summary>
    public long DurableLength => Volatile.Read(ref _durableLength);

    /// <summary>
    /// Returns the bytes [offset, offset + length). From the mapping when there is one (no system call), else via
    /// <paramref name="scratch"/>, which is grown as needed and reused by the caller.
    /// </summary>
    public ReadOnlySpan<byte> Read(long offset, int length, ref byte[]? scratch)
    {
        if (offset + length <= Volatile.Read(ref _fileLength))
        {
            var mapping = _mapping;
            if (mapping is not null && offset + length <= mapping.Capacity) return mapping.GetSpan(offset, length);
            return ReadFile(offset, length, ref scratch);
        }
        lock (_bufferLock)
        {
            if (offset < _fileLength) return ReadFile(offset, length, ref scratch);
            var start = offset - _fileLength;
            if (_buffer is null || start + length > _bufferLength)
                return ReadOnlySpan<byte>.Empty; // past the end: the caller reports it as damage
            if (scratch is null || scratch.Length < length) scratch = new byte[Math.Max(length, 256)];
            _buffer.AsSpan((int)start, length).CopyTo(scratch);
            return scratch.AsSpan(0, length);
        }
    }

    /// <summary>Starts loading the first and last cache line of the record at [offset, offset + length) from the mapping
    /// (its header and its trailers). A hint only: never blocks, never faults (a prefetch of an unmapped address is a no-op).</summary>
    public void PrefetchRecord(long offset, int length)
    {
        var mapping = _mapping;
        if (mapping is null || length <= 0 || offset + length > Volatile.Read(ref _fileLength) || offset + length > mapping.Capacity) return;
        ref var first = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(mapping.GetSpan(offset, length));
        Prefetch.Line(ref first);
        Prefetch.Line(ref System.Runtime.CompilerServices.Unsafe.Add(ref first, length - 1));
    }

    private ReadOnlySpan<byte> ReadFile(long offset, int length, ref byte[]? scratch)
    {
        if (scratch is null || scratch.Length < length) scratch = new byte[Math.Max(length, 256)];
        var n = _file.Read(offset, scratch.AsSpan(0, length));
        return scratch.AsSpan(0, n);
    }

    /// <summary>Takes a reader reference; false when the segment has been retired. Uncontended between threads
    /// (the count is striped over cache lines), so parallel readers of one segment do not slow each other down.
    /// The reference must be released on the thread that took it.</summary>
    public bool TryAcquire()
    {
        var slot = _readers.Enter();
        if (Volatile.Read(ref _retired) == 0) return true; // Enter's interlocked add orders this read after it (pairs with Retire)
        _readers.Exit(slot);
        CloseIfUnused();
        return false;
    }

    public void Release()
    {
        _readers.Exit(Environment.CurrentManagedThreadId);
        if (Volatile.Read(ref _retired) != 0) CloseIfUnused();
    }

    private void CloseIfUnused()
    {
        if (_readers.IsZero() && Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Interlocked.Exchange(ref _mapping, null)?.Dispose();
            _file.Dispose();
        }
    }

    /// <summary>Drops the store's own reference: closes once the last reader is done.</summary>
    public void Retire()
    {
        Interlocked.Exchange(ref _retired, 1); // full fence: a reader that did not see this is counted below
        CloseIfUnused();
    }
}
