namespace Bitcask.Bench.Harness;

/// <summary>
/// A log-linear latency histogram in nanoseconds (32 buckets per power of two: about 3% resolution) so that
/// every operation can be recorded without allocating or storing samples. One writer thread per instance; merge to read.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 6;
    private const int Sub = 1 << SubBits;
    private readonly long[] _counts = new long[64 * Sub / 2 + Sub];

    public long Count { get; private set; }
    public long Max { get; private set; }

    public void Record(long nanoseconds)
    {
        if (nanoseconds < 0) nanoseconds = 0;
        _counts[Index(nanoseconds)]++;
        Count++;
        if (nanoseconds > Max) Max = nanoseconds;
    }

    public void Merge(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The latency below which <paramref name="percentile"/> percent of the recorded operations fall (upper bound of its bucket), or NaN when empty.</summary>
    public double Percentile(double percentile)
    {
        if (Count == 0) return double.NaN;
        var rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(UpperBound(i), Max);
        }
        return Max;
    }

    // Values below 64 have a bucket each; above, each power of two [2^m, 2^(m+1)) is split into 32 equal buckets.
    private static int Index(long value)
    {
        if (value < Sub) return (int)value;
        var shift = 63 - (int)long.LeadingZeroCount(value) - (SubBits - 1); // ≥ 1; value >> shift is in [32, 63]
        return shift * (Sub / 2) + (int)(value >> shift);
    }

    private static long UpperBound(int index)
    {
        if (index < Sub) return index;
        var shift = index / (Sub / 2) - 1;
        var sub = index - shift * (Sub / 2);
        return ((long)(sub + 1) << shift) - 1;
    }
}
