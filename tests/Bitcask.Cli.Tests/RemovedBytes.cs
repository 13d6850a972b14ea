using System.Buffers.Binary;
using System.Text.RegularExpressions;

namespace Bitcask.TestSupport;

/// <summary>
/// Checks the quarantine promise of repair and of open's torn-tail cut: every byte removed from a segment file is kept in
/// <c>quarantine/</c>. Works on snapshots (relative path → bytes) so the real and the in-memory file system share it
/// (tests/Bitcask.CrashTests links this file).
/// </summary>
internal static partial class RemovedBytes
{
    /// <summary>Repair writes <c>NAME-OFFSET.bin</c> (or <c>NAME-OFFSET.N.bin</c> when that name is taken by other bytes);
    /// open saves a cut tail that held records as <c>NAME.OFFSET.tail</c>.</summary>
    [GeneratedRegex(@"^quarantine/(?<name>\d{10}\.seg)(-(?<offset>\d+)(\.\d+)?\.bin|\.(?<tail>\d+)\.tail)$")]
    private static partial Regex QuarantineName();

    /// <summary>Every file under <paramref name="dir"/> (LOCK left out), by path relative to it with '/' separators.</summary>
    public static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "LOCK")
            .ToDictionary(f => Path.GetRelativePath(dir, f).Replace('\\', '/'), File.ReadAllBytes, StringComparer.Ordinal);

    /// <summary>
    /// For each segment of <paramref name="before"/>: each quarantine piece named for it in <paramref name="after"/> must be
    /// a true copy of the bytes at its offset, and the segment's records in <paramref name="after"/> must be exactly its
    /// records in <paramref name="before"/> with the quarantined ranges cut out (sync markers excepted: a rewrite re-encodes
    /// them for their new offset). A segment gone from <paramref name="after"/> must be quarantined whole. Returns what is
    /// wrong (empty when the promise holds).
    /// </summary>
    public static List<string> Check(IReadOnlyDictionary<string, byte[]> before, IReadOnlyDictionary<string, byte[]> after)
    {
        var problems = new List<string>();
        var pieces = new Dictionary<string, List<(int Offset, byte[] Bytes, string Name)>>(StringComparer.Ordinal);
        foreach (var (path, bytes) in after)
        {
            var m = QuarantineName().Match(path);
            if (!m.Success) continue;
            var offset = int.Parse(m.Groups["offset"].Success ? m.Groups["offset"].Value : m.Groups["tail"].Value, System.Globalization.CultureInfo.InvariantCulture);
            var name = m.Groups["name"].Value;
            if (!pieces.TryGetValue(name, out var list)) pieces[name] = list = [];
            list.Add((offset, bytes, path));
        }
        foreach (var (name, original) in before.Where(kv => kv.Key.EndsWith(".seg", StringComparison.Ordinal) && !kv.Key.Contains('/')))
        {
            var removed = new bool[original.Length];
            foreach (var (offset, bytes, piece) in pieces.GetValueOrDefault(name) ?? [])
            {
                if (offset + bytes.Length > original.Length || !original.AsSpan(offset, bytes.Length).SequenceEqual(bytes))
                {
                    problems.Add($"{piece} ({bytes.Length} bytes) is not a copy of {name} at {offset}");
                    continue;
                }
                removed.AsSpan(offset, bytes.Length).Fill(true);
            }
            if (!after.TryGetValue(name, out var repaired))
            {
                var lost = Array.IndexOf(removed, false);
                if (lost >= 0) problems.Add($"{name} ({original.Length} bytes) is gone, but byte {lost} of it is in no quarantine file");
                continue;
            }
            var headerSize = HeaderSize(original);
            if (headerSize is null || headerSize != HeaderSize(repaired))
            {
                if (!original.AsSpan().SequenceEqual(repaired)) problems.Add($"{name}: its header changed size or was unreadable, yet the file changed");
                continue;
            }
            var h = headerSize.Value;
            var kept = new List<byte>(original.Length);
            for (var i = h; i < original.Length; i++) if (!removed[i]) kept.Add(original[i]);
            var rest = repaired.AsSpan(h);
            if (kept.Count != rest.Length)
            {
                problems.Add($"{name}: {original.Length - h} record bytes before, {rest.Length} after, {original.Length - h - kept.Count} quarantined: " +
                             $"{original.Length - h - rest.Length - (original.Length - h - kept.Count)} removed bytes are in no quarantine file (or bytes were added)");
                continue;
            }
            var markers = SyncMarkers(repaired, h);
            for (var i = 0; i < rest.Length; i++)
            {
                if (kept[i] == rest[i] || markers.Contains(h + i)) continue;
                problems.Add($"{name}: after repair byte {h + i} differs from the original bytes left once the quarantined ranges are cut out");
                break;
            }
        }
        return problems;
    }

    /// <summary>64 + 8n bytes (FORMAT.md §2.1), or null when the header is not even that long.</summary>
    private static int? HeaderSize(byte[] segment)
    {
        if (segment.Length < 64) return null;
        var n = BinaryPrimitives.ReadUInt32LittleEndian(segment.AsSpan(40));
        return n > 65536 || 64 + 8L * n > segment.Length ? null : 64 + 8 * (int)n;
    }

    /// <summary>Byte positions inside the sync markers (kind 4) of a segment whose records are all valid.</summary>
    private static HashSet<int> SyncMarkers(byte[] segment, int headerSize)
    {
        var result = new HashSet<int>();
        for (var p = headerSize; p + 32 <= segment.Length;)
        {
            var length = 32 + BinaryPrimitives.ReadUInt16LittleEndian(segment.AsSpan(p + 6)) + (long)BinaryPrimitives.ReadUInt32LittleEndian(segment.AsSpan(p + 24));
            if (segment[p + 4] == 4) for (var i = 0; i < 32; i++) result.Add(p + i);
            if (length > segment.Length - p) break;
            p += (int)length;
        }
        return result;
    }
}
