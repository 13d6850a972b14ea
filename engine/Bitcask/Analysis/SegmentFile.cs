using Bitcask.Format;
using Bitcask.Storage;

namespace Bitcask.Analysis;

/// <summary>What the analysis decided about a segment file as a whole (before its records are looked at).</summary>
internal enum SegmentState : byte
{
    /// <summary>A valid header and not excluded: its records are loaded.</summary>
    Load,
    /// <summary>The header is invalid (magic, CRC, id, kind): the whole file is unreadable damage.</summary>
    BadHeader,
    /// <summary>The newest file, no longer than a header, with an invalid header: a crash while creating it. Removed.</summary>
    IncompleteCreation,
    /// <summary>A format version this build does not read.</summary>
    UnsupportedVersion,
    /// <summary>Output of a compaction run that did not finish: removed, its inputs stay.</summary>
    InterruptedCompaction,
    /// <summary>Input of a finished compaction whose removal was interrupted: removed.</summary>
    StaleInput,
}

/// <summary>
/// One segment file as the analysis sees it: its bytes (mapped, or read when the file system cannot map), header, state,
/// hint file and, once walked, its verdict. Owns the open file until <see cref="Detach"/> hands it to the store.
/// </summary>
internal sealed class SegmentFile : IDisposable
{
    private IStorageFile? _file;
    private FileMapping? _mapping;
    private byte[]? _bytes;

    public SegmentFile(uint id, string path)
    {
        Id = id;
        Path = path;
        Name = System.IO.Path.GetFileName(path);
    }

    public uint Id { get; }
    public string Path { get; }
    public string Name { get; }
    public long Length { get; private set; }
    public SegmentHeader? Header { get; set; }
    public SegmentState State { get; set; } = SegmentState.Load;
    /// <summary>Why the header is unusable, when it is.</summary>
    public string? HeaderProblem { get; set; }
    /// <summary>The newest write segment: the only one whose end may be an unsynced tail torn by a crash.</summary>
    public bool IsNewestWrite { get; set; }
    /// <summary>Full path of its hint file, when one is present.</summary>
    public string? HintPath { get; set; }
    /// <summary>Why the hint file cannot be used (null when it is whole and matches, or there is none).</summary>
    public string? HintProblem { get; set; }
    /// <summary>The hint file passed every check open makes: it is proof that the whole segment was durable.</summary>
    public bool HintIsWhole { get; set; }
    /// <summary>Set once the records are walked (not when open loaded a whole hint instead).</summary>
    public SegmentVerdict? Verdict { get; set; }
    public bool Loaded => State == SegmentState.Load;
    public RecordLimits Limits => RecordLimits.For(Header?.Version ?? SegmentHeader.OldestReadableVersion);

    /// <summary>Opens the file and maps it (or reads it, when the file system gives no mapping).</summary>
    public void Open(IStorageFileSystem fs)
    {
        _file = fs.OpenFile(Path, StorageOpenMode.ReadOnly);
        Length = Math.Min(_file.Length, int.MaxValue); // a segment is at most 2 GiB - 1 bytes (FORMAT.md §2)
        _mapping = Length == 0 ? null : _file.Map(Length);
        if (_mapping is null && Length > 0)
        {
            _bytes = new byte[Length];
            Length = _file.Read(0, _bytes);
        }
    }

    public ReadOnlySpan<byte> Data =>
        Length == 0 ? default : _mapping is not null ? _mapping.GetSpan(0, (int)Length) : _bytes.AsSpan(0, (int)Length);

    /// <summary>Hands the open file and mapping to the store (which then owns and closes them).</summary>
    public (IStorageFile File, FileMapping? Mapping) Detach()
    {
        var result = (_file!, _mapping);
        _file = null;
        _mapping = null;
        return result;
    }

    public void Dispose()
    {
        _mapping?.Dispose();
        _mapping = null;
        _file?.Dispose();
        _file = null;
    }
}
