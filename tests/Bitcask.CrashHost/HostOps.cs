using System.Text;

namespace Bitcask.CrashHost;

/// <summary>The child's workload, shared (as a linked source file) with the crash tests so the parent can replay exactly
/// what the child issued: op i of writer thread t under seed s is a pure function of (s, t, i).</summary>
public static class HostOps
{
    public const int KeysPerThread = 12;

    /// <summary>Entries of the op: (key, value) with value null for a delete. One entry = a put or delete; more = a batch.</summary>
    public static List<(string Key, byte[]? Value)> Op(int seed, int thread, int i)
    {
        var rng = new Random(unchecked(seed * 7919 + thread * 104729 + i * 31));
        string Key() => $"t{thread}k{rng.Next(KeysPerThread)}";
        var tag = thread * 10_000_000 + i;
        var roll = rng.Next(100);
        if (roll < 60) { var k = Key(); return [(k, MakeValue(k, seed, tag, rng.Next(8, 3000)))]; }
        if (roll < 75) return [(Key(), null)];
        var n = rng.Next(2, 5);
        var entries = new List<(string, byte[]?)>();
        for (var j = 0; j < n; j++)
        {
            var k = Key();
            entries.Add((k, rng.Next(4) == 0 ? null : MakeValue(k, seed, tag * 8 + j, rng.Next(8, 600))));
        }
        return entries;
    }

    /// <summary>A value that names its key, seed and tag and whose filler is derived from them, so any value read back can
    /// be checked for being one that was written for that key (<see cref="IsGenuine"/>).</summary>
    public static byte[] MakeValue(string key, int seed, int tag, int length)
    {
        var head = Encoding.UTF8.GetBytes($"{key}#{seed}#{tag}#");
        var value = new byte[Math.Max(length, head.Length)];
        head.CopyTo(value, 0);
        var x = 2166136261u;
        foreach (var b in head) x = (x ^ b) * 16777619u;
        x |= 1;
        for (var i = head.Length; i < value.Length; i++)
        {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            value[i] = (byte)('a' + x % 26);
        }
        return value;
    }

    public static bool IsGenuine(string key, byte[] value)
    {
        var parts = Encoding.UTF8.GetString(value, 0, Math.Min(value.Length, 96)).Split('#');
        return parts.Length >= 4 && parts[0] == key && int.TryParse(parts[1], out var seed) && int.TryParse(parts[2], out var tag)
            && MakeValue(key, seed, tag, value.Length).AsSpan().SequenceEqual(value);
    }
}
