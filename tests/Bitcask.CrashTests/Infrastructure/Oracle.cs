using System.Text;

namespace Bitcask.CrashTests.Infrastructure;

/// <summary>One logical write as the caller issued it: a put, a delete, or a batch of them (all or nothing).</summary>
internal sealed record LogicalOp(string Description, IReadOnlyList<(string Key, byte[]? Value)> Entries);

/// <summary>
/// The expected-state model (RocksDB crash test): the ordered list of writes issued, how many were acknowledged, and how
/// many of those must survive the kind of crash being simulated. After a crash the recovered state must equal the state
/// after some prefix of the issued writes that contains every write that had to survive (A + P); any other state means a
/// lost acknowledged write, a hole, a torn batch, a resurrected delete, or wrong bytes.
/// </summary>
internal sealed class Oracle(IReadOnlyDictionary<string, byte[]>? initial = null)
{
    private readonly List<LogicalOp> _ops = [];
    public IReadOnlyDictionary<string, byte[]> Initial { get; } = initial ?? new Dictionary<string, byte[]>();
    public IReadOnlyList<LogicalOp> Ops => _ops;
    /// <summary>Writes [0, Attempted) may have reached the disk.</summary>
    public int Attempted => _ops.Count;
    /// <summary>Writes [0, Acknowledged) returned to the caller.</summary>
    public int Acknowledged { get; private set; }
    /// <summary>Writes [0, MustSurvive) must be present after the crash.</summary>
    public int MustSurvive { get; private set; }

    public int Begin(LogicalOp op)
    {
        _ops.Add(op);
        return _ops.Count - 1;
    }

    /// <summary>Forgets writes issued from index <paramref name="count"/> on (they were refused before reaching the disk).</summary>
    public void Undo(int count) => _ops.RemoveRange(count, _ops.Count - count);

    public void Acknowledge(bool durable)
    {
        Acknowledged = _ops.Count;
        if (durable) MustSurvive = Acknowledged;
    }

    /// <summary>Everything acknowledged so far must survive (a completed Sync, a clean close).</summary>
    public void AllAcknowledgedDurable() => MustSurvive = Acknowledged;

    public static Dictionary<string, byte[]> Apply(IReadOnlyDictionary<string, byte[]> start, IEnumerable<LogicalOp> ops)
    {
        var state = new Dictionary<string, byte[]>(start, StringComparer.Ordinal);
        foreach (var op in ops) ApplyOne(state, op);
        return state;
    }

    private static void ApplyOne(Dictionary<string, byte[]> state, LogicalOp op)
    {
        foreach (var (key, value) in op.Entries)
            if (value is null) state.Remove(key);
            else state[key] = value;
    }

    /// <summary>The state after all attempted writes (what a clean run leaves).</summary>
    public Dictionary<string, byte[]> Final => Apply(Initial, _ops);

    /// <summary>Null when <paramref name="recovered"/> is the state after a prefix [0, p) with MustSurvive ≤ p ≤ Attempted;
    /// otherwise a description of the violation against the nearest allowed prefix.</summary>
    public string? Check(IReadOnlyDictionary<string, byte[]> recovered, out int prefix)
    {
        var state = new Dictionary<string, byte[]>(Initial, StringComparer.Ordinal);
        string? nearest = null;
        var nearestDiff = int.MaxValue;
        for (var p = 0; ; p++)
        {
            if (p >= MustSurvive)
            {
                var diff = Diff(state, recovered);
                if (diff.Count == 0)
                {
                    prefix = p;
                    return null;
                }
                if (diff.Count <= nearestDiff)
                {
                    nearestDiff = diff.Count;
                    nearest = $"nearest allowed prefix {p} (of {Attempted} attempted, {Acknowledged} acknowledged, {MustSurvive} required) differs: {string.Join("; ", diff.Take(6))}";
                }
            }
            if (p == _ops.Count) break;
            ApplyOne(state, _ops[p]);
        }
        prefix = -1;
        var unknown = recovered.Where(kv => !Initial.ContainsKey(kv.Key) && !_ops.Any(o => o.Entries.Any(e => e.Key == kv.Key && e.Value is not null && e.Value.AsSpan().SequenceEqual(kv.Value))))
            .Select(kv => kv.Key).ToList();
        return (unknown.Count > 0 ? $"value never written for key(s) {string.Join(",", unknown)}; " : "") + nearest;
    }

    internal static List<string> Diff(IReadOnlyDictionary<string, byte[]> expected, IReadOnlyDictionary<string, byte[]> actual)
    {
        var result = new List<string>();
        foreach (var (k, v) in expected)
        {
            if (!actual.TryGetValue(k, out var a)) result.Add($"{k} missing (expected {Show(v)})");
            else if (!a.AsSpan().SequenceEqual(v)) result.Add($"{k} = {Show(a)} (expected {Show(v)})");
        }
        foreach (var k in actual.Keys)
            if (!expected.ContainsKey(k)) result.Add($"{k} present ({Show(actual[k])}) but should be absent");
        return result;
    }

    public static string Show(byte[] v)
    {
        var s = Encoding.UTF8.GetString(v, 0, Math.Min(v.Length, 24));
        return $"\"{s}{(v.Length > 24 ? "…" : "")}\"[{v.Length}]";
    }

    /// <summary>Reads every live key and value of a store.</summary>
    public static Dictionary<string, byte[]> Dump(BitcaskStore store)
    {
        var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var key in store.Keys())
            if (store.Get(key) is { } value) result[Encoding.UTF8.GetString(key)] = value;
        return result;
    }

    public static bool SameState(IReadOnlyDictionary<string, byte[]> a, IReadOnlyDictionary<string, byte[]> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v.AsSpan().SequenceEqual(kv.Value));

    /// <summary>A value that names its key and writer, so a value returned for the wrong key is recognisable too.</summary>
    public static byte[] MakeValue(string key, int tag, int length)
    {
        var head = Encoding.UTF8.GetBytes($"{key}#{tag}#");
        var value = new byte[Math.Max(length, head.Length)];
        head.CopyTo(value, 0);
        var x = 2166136261u ^ (uint)tag * 16777619u; // stable across processes (HashCode is randomised)
        foreach (var b in head) x = (x ^ b) * 16777619u;
        x |= 1;
        for (var i = head.Length; i < value.Length; i++)
        {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            value[i] = (byte)('a' + x % 26);
        }
        return value;
    }
}
