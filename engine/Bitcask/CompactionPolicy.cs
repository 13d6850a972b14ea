namespace Bitcask;

/// <summary>
/// When a compaction is worth running and which sealed segments it merges. Reads segment statistics and the keydir's
/// expiry index; changes nothing.
/// <para>Thread-safety: stateless; the statistics it reads move while writers run, so a choice is a snapshot.</para>
/// </summary>
internal static class CompactionPolicy
{
    /// <summary>For an explicit <see cref="BitcaskStore.Compact(CancellationToken)"/>: all sealed segments when there is
    /// anything to gain (more than one, dead bytes in one, or keys that may have expired), otherwise none.</summary>
    public static IReadOnlyList<Segment> ExplicitInputs(IReadOnlyList<Segment> sealedSegments, KeyDir keyDir)
    {
        var worthIt = sealedSegments.Count > 1 || sealedSegments.Any(s => s.LiveBytes < s.RecordBytes) || keyDir.HasExpiringEntries;
        return worthIt ? sealedSegments : [];
    }

    /// <summary>For background compaction: sealed segments past <see cref="BitcaskOptions.CompactionFragmentationThreshold"/>,
    /// or every sealed segment with dead bytes once the store's dead bytes pass
    /// <see cref="BitcaskOptions.CompactionDeadBytesThreshold"/>; none below <see cref="BitcaskOptions.CompactionMinSegments"/>.
    /// Expired keys count as dead.</summary>
    public static List<Segment> BackgroundInputs(IReadOnlyList<Segment> sealedSegments, KeyDir keyDir, BitcaskOptions options, long now)
    {
        if (sealedSegments.Count < options.CompactionMinSegments) return [];
        var expired = keyDir.HasExpiringEntries ? keyDir.ExpiredBytesBySegment(now) : null;
        long Dead(Segment s) => Math.Max(0, s.RecordBytes - s.LiveBytes) + (expired is not null && expired.TryGetValue(s.Id, out var e) ? e : 0);
        var totalDead = sealedSegments.Sum(Dead);
        if (totalDead >= options.CompactionDeadBytesThreshold && totalDead > 0)
            return sealedSegments.Where(s => Dead(s) > 0).ToList();
        return sealedSegments.Where(s => s.RecordBytes > 0 && Dead(s) >= options.CompactionFragmentationThreshold * s.RecordBytes && Dead(s) > 0).ToList();
    }
}
