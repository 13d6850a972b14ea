namespace Bitcask.Testing.Linearizability;

/// <summary>
/// A Wing–Gong linearizability checker (with porcupine's memoization) for histories of <see cref="RegisterOp"/>: is there
/// a total order of the operations that respects real time (an operation that returned before another was invoked comes
/// first) in which every result is what the sequential specification returns?
/// <para>Sequential specification, per key: the state is the current value (or absent). Get returns it (absent, or the
/// value and its version); CompareAndSet(v → x) stores x iff the current version is v (0: the key is absent);
/// Increment(d) stores and returns value + d (absent counts as 0); Set(x) stores x; CompareValueAndSet(e → x) stores x
/// iff the current value is e (or the key is absent when e is none); Delete makes the key absent and returns whether it
/// existed. Every write gets a version greater than the one before. The engine workload makes every written value
/// unique (CAS values are unique, increments only go up), so a version names one value: the checker learns version ↔
/// value from the reads that carry a version (two reads disagreeing already rule out every linearization) and the state
/// needs only the value. Reads over RESP carry no version (0) and teach nothing.</para>
/// <para>An operation whose outcome is unknown (<see cref="RegisterOp.OutcomeUnknown"/>: the client saw an error, a
/// timeout or a dropped connection) has an infinite response time, so it may be linearized anywhere after its
/// invocation, including after everything else (= never applied); its result is not checked (porcupine's treatment).</para>
/// <para>Linearizability is local, so each key is checked on its own. The search is a depth-first search over which
/// operations are linearized (a bitmask) and the state, skipping pairs already explored; it gives up (inconclusive)
/// after <c>maxSteps</c> states.</para>
/// </summary>
public static class LinearizabilityChecker
{
    public sealed record Result(bool Linearizable, bool Inconclusive, string Explanation, long States);

    public static Result Check(IReadOnlyList<RegisterOp> history, long maxStepsPerKey = 2_000_000)
    {
        // The search recurses once per linearized operation: long histories need a deep stack.
        Result? result = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { result = CheckAll(history, maxStepsPerKey); }
            catch (Exception e) { failure = e; }
        }, 512 << 20);
        thread.Start();
        thread.Join();
        if (failure is not null) throw new InvalidOperationException("the linearizability check failed", failure);
        return result!;
    }

    private static Result CheckAll(IReadOnlyList<RegisterOp> history, long maxStepsPerKey)
    {
        long states = 0;
        foreach (var group in history.GroupBy(o => o.Key).OrderBy(g => g.Key))
        {
            var result = CheckKey([.. group.OrderBy(o => o.Invoke)], maxStepsPerKey);
            states += result.States;
            if (!result.Linearizable) return result with { States = states };
        }
        return new Result(true, false, $"{history.Count} operations linearizable", states);
    }

    private static Result CheckKey(RegisterOp[] ops, long maxSteps)
    {
        // What reads saw: one version per value and one value per version, or no linearization exists.
        var versionOf = new Dictionary<long, long>();
        var valueOf = new Dictionary<long, long>();
        foreach (var op in ops.Where(o => o.Kind == RegisterOpKind.Get && o.Ok && !o.OutcomeUnknown && o.Version != 0))
        {
            var value = op.Value!.Value;
            if (versionOf.TryGetValue(value, out var v) && v != op.Version)
                return Fail($"value {value} was read with versions {v} and {op.Version}: written twice, or its version changed ({op})");
            if (valueOf.TryGetValue(op.Version, out var x) && x != value)
                return Fail($"version {op.Version} was read with values {x} and {value} ({op})");
            versionOf[value] = op.Version;
            valueOf[op.Version] = value;
        }
        var search = new Search(ops, versionOf, valueOf, maxSteps);
        try
        {
            if (search.Run()) return new Result(true, false, $"key {ops[0].Key}: {ops.Length} operations linearizable", search.Visited);
            return Fail($"key {ops[0].Key}: no linearization; the longest linearizable prefix has {search.Deepest} of {ops.Length} operations, " +
                $"then none of these can come next:\n  {string.Join("\n  ", search.StuckAt)}", search.Visited);
        }
        catch (InconclusiveException)
        {
            return new Result(false, true, $"key {ops[0].Key}: gave up after {maxSteps} states", search.Visited);
        }
    }

    private static Result Fail(string why, long states = 0) => new(false, false, why, states);

    private sealed class InconclusiveException : Exception;

    private sealed class Search(RegisterOp[] ops, Dictionary<long, long> versionOf, Dictionary<long, long> valueOf, long maxSteps)
    {
        private readonly ulong[] _done = new ulong[(ops.Length + 63) / 64];
        private readonly HashSet<MemoKey> _seen = [];
        public long Visited => _seen.Count;
        public int Deepest { get; private set; } = -1;
        public List<RegisterOp> StuckAt { get; private set; } = [];

        public bool Run() => Dfs(0, null);

        private bool IsDone(int i) => (_done[i >> 6] & (1UL << (i & 63))) != 0;

        private bool Dfs(int count, long? state)
        {
            if (count == ops.Length) return true;
            if (!_seen.Add(new MemoKey([.. _done], state))) return false;
            if (_seen.Count > maxSteps) throw new InconclusiveException();
            // An operation can come next only if no remaining operation returned before it was invoked.
            var minResponse = long.MaxValue;
            for (var i = 0; i < ops.Length; i++)
                if (!IsDone(i)) minResponse = Math.Min(minResponse, ops[i].Response);
            var candidates = new List<RegisterOp>();
            for (var i = 0; i < ops.Length; i++)
            {
                if (IsDone(i)) continue;
                if (ops[i].Invoke > minResponse) break; // sorted by invocation
                candidates.Add(ops[i]);
                if (!Step(ops[i], state, out var next)) continue;
                _done[i >> 6] |= 1UL << (i & 63);
                var found = Dfs(count + 1, next);
                _done[i >> 6] &= ~(1UL << (i & 63));
                if (found) return true;
            }
            if (count > Deepest)
            {
                Deepest = count;
                StuckAt = candidates;
            }
            return false;
        }

        /// <summary>The sequential specification: whether <paramref name="op"/> returns what it did in
        /// <paramref name="state"/>, and the state after it.</summary>
        private bool Step(RegisterOp op, long? state, out long? next)
        {
            next = state;
            var unknown = op.OutcomeUnknown;
            switch (op.Kind)
            {
                case RegisterOpKind.Get:
                    return unknown || (op.Ok ? state == op.Value : state is null);
                case RegisterOpKind.CompareAndSet:
                {
                    var holds = op.Expected == 0 ? state is null : valueOf.TryGetValue(op.Expected, out var current) && state == current;
                    if (!unknown && holds != op.Ok) return false;
                    if (!holds) return true;
                    if (!VersionGrows(state, op.Argument)) return false;
                    next = op.Argument;
                    return true;
                }
                case RegisterOpKind.CompareValueAndSet:
                {
                    var holds = op.ExpectedValue is { } expected ? state == expected : state is null;
                    if (!unknown && holds != op.Ok) return false;
                    if (holds) next = op.Argument;
                    return true;
                }
                case RegisterOpKind.Set:
                    next = op.Argument;
                    return true;
                case RegisterOpKind.Delete:
                    if (!unknown && op.Ok != (state is not null)) return false;
                    next = null;
                    return true;
                default:
                {
                    var sum = (state ?? 0) + op.Argument;
                    if (unknown)
                    {
                        next = sum;
                        return true;
                    }
                    if (op.Value != sum || !VersionGrows(state, op.Value!.Value)) return false;
                    next = op.Value;
                    return true;
                }
            }
        }

        /// <summary>A write's version must be above the one it replaces (when reads told both).</summary>
        private bool VersionGrows(long? from, long to) =>
            from is not { } f || !versionOf.TryGetValue(f, out var before) || !versionOf.TryGetValue(to, out var after) || after > before;
    }

    private readonly struct MemoKey(ulong[] done, long? state) : IEquatable<MemoKey>
    {
        private readonly ulong[] _done = done;
        private readonly long? _state = state;

        public bool Equals(MemoKey other) => _state == other._state && _done.AsSpan().SequenceEqual(other._done);
        public override bool Equals(object? obj) => obj is MemoKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (var word in _done) hash.Add(word);
            hash.Add(_state);
            return hash.ToHashCode();
        }
    }
}
