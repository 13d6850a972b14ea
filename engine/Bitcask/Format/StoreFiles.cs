using System.Globalization;

namespace Bitcask.Format;

/// <summary>Names of every file in a store directory (FORMAT.md, "Directory").</summary>
internal static class StoreFiles
{
    public const string LockFile = "LOCK";
    public const string SegmentExtension = ".seg";
    public const string HintExtension = ".hint";
    public const string TempExtension = ".tmp";
    /// <summary>Subdirectory for bytes recovery or repair had to cut out of a segment; never read as data.</summary>
    public const string QuarantineDirectory = "quarantine";

    public static string SegmentName(uint id) => id.ToString("D10", CultureInfo.InvariantCulture) + SegmentExtension;
    public static string HintName(uint id) => id.ToString("D10", CultureInfo.InvariantCulture) + HintExtension;

    /// <summary>"compaction-00003.seg.tmp": output 3 of the running compaction, before it has an id (FORMAT.md §6).</summary>
    public static string CompactionTempName(int outputIndex, string extension) =>
        "compaction-" + outputIndex.ToString("D5", CultureInfo.InvariantCulture) + extension + TempExtension;

    /// <summary>Parses "0000000042.seg" / "0000000042.hint" names; anything else is not ours.</summary>
    public static bool TryParseId(string name, string extension, out uint id)
    {
        id = 0;
        if (!name.EndsWith(extension, StringComparison.Ordinal)) return false;
        var stem = name.AsSpan(0, name.Length - extension.Length);
        return stem.Length == 10 && uint.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id != 0;
    }
}
