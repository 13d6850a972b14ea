namespace Bitcask;

/// <summary>
/// Bytes on disk fail validation (CRC, length, header). <see cref="Path"/> and <see cref="Offset"/> name the damaged bytes.
/// The store never returns wrong bytes in place of throwing this. Run <c>bitcask verify</c> / <c>bitcask repair</c> on the directory.
/// </summary>
public class CorruptionException : IOException
{
    /// <summary>Damage in <paramref name="path"/> at <paramref name="offset"/>: <paramref name="problem"/>.</summary>
    public CorruptionException(string path, long offset, string problem)
        : base($"{problem} in '{path}' at offset {offset}")
    {
        Path = path;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>Damage in <paramref name="path"/> at <paramref name="offset"/>, with what to do about it.</summary>
    public CorruptionException(string path, long offset, string problem, string advice)
        : base($"{problem} in '{path}' at offset {offset}. {advice}")
    {
        Path = path;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The damaged file.</summary>
    public string Path { get; }
    /// <summary>Byte offset of the first damaged byte (start of the record or header that failed validation).</summary>
    public long Offset { get; }
    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }
}

/// <summary>A file was written by a newer format version than this build reads. Nothing is changed; upgrade the library.</summary>
public sealed class UnsupportedFormatException(string path, long offset, string problem)
    : CorruptionException(path, offset, problem, "Upgrade Bitcask to a version that reads this format; nothing was changed.");
