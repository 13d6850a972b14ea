using System.Globalization;
using System.Text;
using CsCheck;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Bitcask.Tests.Primitives;

/// <summary>
/// Model-based random tests of versions, conditional writes, counters, TTL, leases and watch (CsCheck: seeded, shrinking;
/// a failure prints <c>CsCheck_Seed</c> and the shrunk operation list). Every run opens a fresh store, applies up to 60
/// operations to it and to <see cref="PrimitivesModel"/>, and after each compares, for every key, Get and GetInfo
/// (version, create revision, expiry, lease, length), plus Count and Revision. Watches from several revisions (also from
/// before a reopen) must yield exactly the model's changes, then a live put next. Set BITCASK_PRIMITIVES_ITER to run more.
/// </summary>
public class PrimitivesModelTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private const string Prefix = "k";
    private const string LiveKey = "kw";
    /// <summary>Five watched keys, one outside the watched prefix, and the key the live check writes.</summary>
    private static readonly string[] Keys = ["k0", "k1", "k2", "k3", "k4", "x", LiveKey];

    internal enum Kind
    {
        Put, PutTtl, Delete, PutIfAbsent, CasRight, CasWrong, CasZero, CasTtl, CadRight, CadWrong,
        TryWriteVersion, TryWriteAbsent, TryWriteExists, Increment, Grant, PutLease, PutLeaseTtl, PutLeaseGone, CasLease, KeepAlive, Revoke,
        Advance, AdvanceAndSweep, Sweep, Compact, Reopen,
    }

    /// <summary>One step, as data independent of the state (so CsCheck can shrink lists of them): versions, leases and
    /// values are resolved against the model when the step runs.</summary>
    internal sealed record Op(Kind Kind, int Key, int Key2, int Value, int Seconds, int Pick, bool Flag)
    {
        public override string ToString() => $"{Kind}({Keys[Key]},{Keys[Key2]},{Value},{Seconds}s,#{Pick},{Flag})";
    }

    private static readonly Gen<Kind> KindGen = Gen.Frequency(
        (8, Gen.Const(Kind.Put)), (4, Gen.Const(Kind.PutTtl)), (5, Gen.Const(Kind.Delete)), (3, Gen.Const(Kind.PutIfAbsent)),
        (4, Gen.Const(Kind.CasRight)), (3, Gen.Const(Kind.CasWrong)), (2, Gen.Const(Kind.CasZero)), (2, Gen.Const(Kind.CasTtl)),
        (3, Gen.Const(Kind.CadRight)), (2, Gen.Const(Kind.CadWrong)), (3, Gen.Const(Kind.TryWriteVersion)),
        (2, Gen.Const(Kind.TryWriteAbsent)), (2, Gen.Const(Kind.TryWriteExists)), (5, Gen.Const(Kind.Increment)),
        (3, Gen.Const(Kind.Grant)), (4, Gen.Const(Kind.PutLease)), (2, Gen.Const(Kind.PutLeaseTtl)), (1, Gen.Const(Kind.PutLeaseGone)), (2, Gen.Const(Kind.CasLease)), (3, Gen.Const(Kind.KeepAlive)),
        (2, Gen.Const(Kind.Revoke)), (4, Gen.Const(Kind.Advance)), (2, Gen.Const(Kind.AdvanceAndSweep)), (2, Gen.Const(Kind.Sweep)), (2, Gen.Const(Kind.Compact)),
        (3, Gen.Const(Kind.Reopen)));

    /// <summary>Keys 0–5 (the live-check key is never picked), values 0–99 (even: a decimal integer, odd: text).</summary>
    private static readonly Gen<Op> OpGen = Gen.Select(KindGen, Gen.Int[0, 5], Gen.Int[0, 5], Gen.Int[0, 99], Gen.Int[1, 20], Gen.Int[0, 7], Gen.Bool)
        .Select(t => new Op(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6, t.Item7));

    private static readonly Gen<(Op[] Ops, int Watch)> RunGen = Gen.Select(
        Gen.Frequency((1, OpGen.Array[1, 59]), (3, OpGen.Array[60])), Gen.Int[0, 1000]);

    [Fact]
    public void Random_primitive_operations_with_reopen_compaction_and_a_fake_clock_match_the_model_and_every_watch_replays_its_changes()
    {
        var iterations = int.TryParse(Environment.GetEnvironmentVariable("BITCASK_PRIMITIVES_ITER"), out var n) ? n : 200;
        var seed = Environment.GetEnvironmentVariable("CsCheck_Seed");
        RunGen.Sample(run => Run(run.Ops, run.Watch), iter: iterations, threads: 1, seed: seed,
            writeLine: output.WriteLine, print: run => $"watch pick {run.Watch}, ops: {string.Join(" ", run.Ops.AsEnumerable())}");
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string ValueOf(int v) => v % 2 == 0 ? (v * 7).ToString(CultureInfo.InvariantCulture) : "v" + v;

    private static readonly BitcaskOptions BaseOptions = new()
    {
        CompactionEnabled = false,
        MaxSegmentBytes = 4096,
        Durability = Durability.Buffered,
    };

    internal static void Run(Op[] ops, int watchPick)
    {
        using var dir = new TempDirectory("primitives-model");
        var clock = new ManualSweepClock(new FakeTimeProvider(Start));
        var options = BaseOptions with { TimeProvider = clock };
        var model = new PrimitivesModel(Start.ToUnixTimeMilliseconds());
        var store = BitcaskStore.Open(dir.Path, options);
        var pick = watchPick;
        try
        {
            for (var step = 0; step < ops.Length; step++)
            {
                var op = ops[step];
                var context = $"step {step} {op}";
                Apply(ref store, dir.Path, options, clock, model, op, context);
                CheckAll(store, model, context);
                if (op.Kind == Kind.Reopen) CheckWatch(store, model, pick++, context + " (watch after reopen)");
            }
            CheckWatch(store, model, pick++, "end");
            CheckWatch(store, model, pick++, "end");
            CheckWatch(store, model, int.MaxValue, "end, live only");
            CheckCompactedWatch(store, model);
            store.Dispose();
            store = BitcaskStore.Open(dir.Path, options);
            model.Reopened();
            CheckAll(store, model, "final reopen");
            CheckWatch(store, model, pick, "final reopen");
        }
        finally
        {
            store.Dispose();
        }
    }

    private static void Apply(ref BitcaskStore storeRef, string path, BitcaskOptions options, ManualSweepClock clock, PrimitivesModel model, Op op, string context)
    {
        var store = storeRef;
        var key = Keys[op.Key];
        var k = B(key);
        var value = ValueOf(op.Value);
        var v = B(value);
        var ttl = TimeSpan.FromSeconds(op.Seconds);
        var ttlMs = op.Seconds * 1000L;
        var live = model.Live(key);
        switch (op.Kind)
        {
            case Kind.Put:
                store.Put(k, v);
                model.ApplyPut(key, value, 0, 0);
                break;
            case Kind.PutTtl:
                store.Put(k, v, ttl);
                model.ApplyPut(key, value, model.Now + ttlMs, 0);
                break;
            case Kind.Delete:
            {
                var removed = store.Delete(k);
                Assert.True(removed == (live is not null), $"{context}: Delete returned {removed}");
                if (model.Present.ContainsKey(key)) model.ApplyTombstone(key); // also an expired, unswept value: its tombstone is written
                break;
            }
            case Kind.PutIfAbsent:
            {
                var stored = store.PutIfAbsent(k, v, op.Flag ? ttl : null);
                Assert.True(stored == (live is null), $"{context}: PutIfAbsent returned {stored}");
                if (stored) model.ApplyPut(key, value, op.Flag ? model.Now + ttlMs : 0, 0);
                break;
            }
            case Kind.CasRight or Kind.CasWrong or Kind.CasZero or Kind.CasTtl:
            {
                var expected = op.Kind switch
                {
                    Kind.CasZero => 0,
                    Kind.CasWrong => live is null ? 1 + op.Pick : live.Version + 1 + op.Pick,
                    _ => live?.Version ?? 0,
                };
                var withTtl = op.Kind == Kind.CasTtl;
                var stored = store.CompareAndSet(k, expected, v, withTtl ? ttl : null);
                var holds = expected == 0 ? live is null : live is not null && live.Version == expected;
                Assert.True(stored == holds, $"{context}: CompareAndSet(expected {expected}) returned {stored}");
                if (stored) model.ApplyPut(key, value, withTtl ? model.Now + ttlMs : 0, 0);
                break;
            }
            case Kind.CadRight or Kind.CadWrong:
            {
                var expected = op.Kind == Kind.CadRight && live is not null ? live.Version : (live?.Version ?? 0) + 1 + op.Pick;
                var deleted = store.CompareAndDelete(k, expected);
                Assert.True(deleted == (live is not null && live.Version == expected), $"{context}: CompareAndDelete(expected {expected}) returned {deleted}");
                if (deleted) model.ApplyTombstone(key);
                break;
            }
            case Kind.TryWriteVersion or Kind.TryWriteAbsent or Kind.TryWriteExists:
            {
                // Condition on Key; the batch puts Key2 (with a TTL when Flag) and, for odd Pick, deletes Key.
                var batch = new WriteBatch();
                bool holds;
                if (op.Kind == Kind.TryWriteVersion)
                {
                    var version = op.Pick < 5 && live is not null ? live.Version : (live?.Version ?? 0) + 1 + op.Pick;
                    batch.RequireVersion(k, version);
                    holds = live is not null && live.Version == version;
                }
                else if (op.Kind == Kind.TryWriteAbsent)
                {
                    batch.RequireAbsent(k);
                    holds = live is null;
                }
                else
                {
                    batch.RequireExists(k);
                    holds = live is not null;
                }
                var key2 = Keys[op.Key2];
                if (op.Flag) batch.Put(B(key2), v, ttl);
                else batch.Put(B(key2), v);
                if (op.Pick % 2 == 1) batch.Delete(k);
                var applied = store.TryWrite(batch);
                Assert.True(applied == holds, $"{context}: TryWrite returned {applied}");
                if (applied)
                {
                    model.ApplyPut(key2, value, op.Flag ? model.Now + ttlMs : 0, 0);
                    if (op.Pick % 2 == 1) model.ApplyTombstone(key); // a batch delete always writes its tombstone
                }
                break;
            }
            case Kind.Increment:
            {
                var delta = op.Value - 50;
                long current = 0;
                var integer = live is null || long.TryParse(live.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out current);
                if (!integer)
                {
                    Assert.Throws<InvalidOperationException>(() => store.Increment(k, delta, op.Flag ? ttl : null));
                    break;
                }
                var result = store.Increment(k, delta, op.Flag ? ttl : null);
                Assert.True(current + delta == result, $"{context}: Increment returned {result}, expected {current + delta}");
                model.ApplyPut(key, result.ToString(CultureInfo.InvariantCulture),
                    live?.ExpiresAt ?? (op.Flag ? model.Now + ttlMs : 0), live?.LeaseId ?? 0);
                break;
            }
            case Kind.Grant:
            {
                var id = store.GrantLease(ttl);
                Assert.True(id > 0 && !model.EverGranted.Contains(id), $"{context}: GrantLease returned {id}");
                model.Grant(ttlMs, id);
                break;
            }
            case Kind.PutLease or Kind.PutLeaseGone:
            {
                var id = PickLease(model, op.Pick, gone: op.Kind == Kind.PutLeaseGone);
                if (id is null) break;
                if (!model.Leases.ContainsKey(id.Value))
                {
                    Assert.Throws<LeaseNotFoundException>(() => store.Put(k, v, id.Value));
                    break;
                }
                if (op.Flag) store.Put(k, v, id.Value);
                else store.Put(k, v, new WriteOptions(LeaseId: id.Value));
                model.ApplyPut(key, value, 0, id.Value);
                break;
            }
            case Kind.PutLeaseTtl:
            {
                // Both: the key goes at the first of its TTL (an Expire event) and its lease's revoke or expiry (a Delete).
                var id = PickLease(model, op.Pick, gone: false);
                if (id is null) break;
                store.Put(k, v, new WriteOptions(TimeToLive: ttl, LeaseId: id.Value));
                model.ApplyPut(key, value, model.Now + ttlMs, id.Value);
                break;
            }
            case Kind.CasLease:
            {
                // The right version only: with a wrong one the engine throws LeaseNotFoundException although the lease
                // exists (LeaseConditionTests.Compare_and_set_with_a_live_lease_and_a_wrong_version_returns_false, skipped).
                var id = PickLease(model, op.Pick, gone: !op.Flag && op.Pick == 7);
                if (id is null) break;
                var expected = live?.Version ?? 0;
                if (!model.Leases.ContainsKey(id.Value))
                {
                    Assert.Throws<LeaseNotFoundException>(() => store.CompareAndSet(k, expected, v, new WriteOptions(LeaseId: id.Value)));
                    break;
                }
                Assert.True(store.CompareAndSet(k, expected, v, new WriteOptions(LeaseId: id.Value)), $"{context}: CompareAndSet with lease {id} from the right version");
                model.ApplyPut(key, value, 0, id.Value);
                break;
            }
            case Kind.KeepAlive:
            {
                var id = PickLease(model, op.Pick, gone: !op.Flag && op.Pick == 7);
                if (id is null) break;
                var alive = store.KeepAlive(id.Value);
                Assert.True(alive == model.Leases.ContainsKey(id.Value), $"{context}: KeepAlive({id}) returned {alive}");
                if (alive) model.Leases[id.Value].Deadline = model.Now + model.Leases[id.Value].TtlMs;
                break;
            }
            case Kind.Revoke:
            {
                var id = PickLease(model, op.Pick, gone: !op.Flag && op.Pick == 7);
                if (id is null) break;
                var group = new List<PrimitivesModel.Change>();
                var revoked = store.RevokeLease(id.Value);
                var existed = model.Revoke(id.Value, group);
                Assert.True(revoked == existed, $"{context}: RevokeLease({id}) returned {revoked}");
                if (existed) model.AddGroup(group, group.Count + 1);
                break;
            }
            case Kind.Advance:
                // Expired keys read as absent from now on, but stay in the keydir (and leases stay) until a sweep.
                clock.Fake.Advance(TimeSpan.FromSeconds(op.Seconds));
                model.Now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                break;
            case Kind.AdvanceAndSweep:
                clock.Fake.Advance(TimeSpan.FromSeconds(op.Seconds));
                model.Now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                CheckAll(store, model, context + " (before the sweep)"); // expired keys read as absent before any tombstone
                store.SweepExpiredForTests();
                model.Sweep();
                break;
            case Kind.Sweep:
                store.SweepExpiredForTests();
                model.Sweep();
                break;
            case Kind.Compact:
                // Sweep first: compaction drops an expired, unswept value without writing the Expire event a watcher
                // needs (see Compaction_of_an_expired_unswept_key_loses_its_expire_event, skipped: engine bug).
                store.SweepExpiredForTests();
                model.Sweep();
                store.Compact();
                model.CompactedAt = model.Revision;
                break;
            case Kind.Reopen:
                store.Dispose();
                storeRef = BitcaskStore.Open(path, options);
                model.Reopened();
                break;
            default:
                throw new InvalidOperationException(op.Kind.ToString());
        }
    }

    /// <summary>A live lease (pick among them), or with <paramref name="gone"/> one that was revoked or expired (or never
    /// granted). Null when there is none to pick.</summary>
    private static long? PickLease(PrimitivesModel model, int pick, bool gone)
    {
        if (gone)
        {
            var dead = model.EverGranted.Where(id => !model.Leases.ContainsKey(id)).ToList();
            return dead.Count > 0 ? dead[pick % dead.Count] : 1_000_000_007L;
        }
        var live = model.Leases.Keys.Order().ToList();
        return live.Count > 0 ? live[pick % live.Count] : null;
    }

    private static void CheckAll(BitcaskStore store, PrimitivesModel model, string context)
    {
        Assert.True(model.Revision == store.Revision, $"{context}: Revision {store.Revision}, model {model.Revision}");
        foreach (var key in Keys)
        {
            var expected = model.Live(key);
            var info = store.GetInfo(B(key));
            var value = store.Get(B(key));
            if (expected is null)
            {
                Assert.True(info is null && value is null, $"{context}: {key} should be absent, has {info}");
                continue;
            }
            var want = new EntryInfo(expected.Version, expected.CreateRevision,
                expected.ExpiresAt == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(expected.ExpiresAt), expected.LeaseId, Encoding.UTF8.GetByteCount(expected.Value));
            Assert.True(info == want, $"{context}: GetInfo({key}) = {info}, model {want}");
            Assert.True(value is not null && Encoding.UTF8.GetString(value) == expected.Value, $"{context}: Get({key}) = {(value is null ? "null" : Encoding.UTF8.GetString(value))}, model {expected.Value}");
        }
        Assert.True(model.LiveCount == store.Count, $"{context}: Count {store.Count}, model {model.LiveCount}");
    }

    /// <summary>A watch of the prefix from a revision the model picks yields exactly the model's changes from there (a
    /// group in any order inside its revisions), then a live put right after.</summary>
    private static void CheckWatch(BitcaskStore store, PrimitivesModel model, int pick, string context)
    {
        var starts = model.WatchStarts().ToList();
        var from = pick == int.MaxValue ? model.Revision + 1 : starts[pick % starts.Count];
        Assert.Null(CheckWatchFrom(store, model, from, context));
    }

    /// <summary>Watches from <paramref name="from"/>: returns the exception when the start is compacted away, else checks
    /// the replay and the live put after it and returns null.</summary>
    private static RevisionCompactedException? CheckWatchFrom(BitcaskStore store, PrimitivesModel model, long from, string context)
    {
        var expected = model.ChangesFrom(from, Prefix);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var e = store.Watch(B(Prefix), from, cts.Token).GetAsyncEnumerator(cts.Token);
        try
        {
            var seen = new List<WatchEvent>();
            while (seen.Count < expected.Count)
            {
                bool moved;
                try
                {
                    moved = Next(e);
                }
                catch (RevisionCompactedException error) when (seen.Count == 0)
                {
                    return error;
                }
                Assert.True(moved, $"{context}: watch from {from} ended after {seen.Count} of {expected.Count} events");
                seen.Add(e.Current);
            }
            Compare(expected, seen, $"{context}: watch from {from}");
            var liveValue = "live" + model.Revision;
            store.Put(B(LiveKey), B(liveValue));
            model.ApplyPut(LiveKey, liveValue, 0, 0);
            Assert.True(Next(e), $"{context}: the live put after the replay did not arrive");
            Compare([model.Changes[^1]], [e.Current], $"{context}: live event after watch from {from}");
            return null;
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>A watch from revision 1 after a compaction either replays everything (the log still holds it in full) or
    /// throws <see cref="RevisionCompactedException"/> naming a horizon no later than the compaction, from which a watch
    /// then replays exactly the model's changes.</summary>
    private static void CheckCompactedWatch(BitcaskStore store, PrimitivesModel model)
    {
        if (model.CompactedAt < 1) return;
        var error = CheckWatchFrom(store, model, 1, "from revision 1 after compaction");
        if (error is null) return;
        Assert.Equal(1, error.RequestedRevision);
        Assert.True(error.CompactedRevision > 1 && error.CompactedRevision <= model.CompactedAt + 1,
            $"compacted revision {error.CompactedRevision}, compaction at revision {model.CompactedAt}");
        if (model.IsWatchStart(error.CompactedRevision))
            Assert.Null(CheckWatchFrom(store, model, error.CompactedRevision, "from the compacted revision"));
    }

    private static bool Next(IAsyncEnumerator<WatchEvent> e) => e.MoveNextAsync().AsTask().GetAwaiter().GetResult();

    private static void Compare(List<PrimitivesModel.Change> expected, List<WatchEvent> seen, string context)
    {
        string Show(IEnumerable<WatchEvent> events) => string.Join(", ", events.Select(w => $"{w.Kind} {Encoding.UTF8.GetString(w.Key)}@{w.Revision} prev {w.PreviousVersion}"));
        string ShowModel(IEnumerable<PrimitivesModel.Change> changes) => string.Join(", ", changes.Select(c => $"{c.Kind} {c.Key}@{c.Revision}{(c.GroupHi > 0 ? $"..{c.GroupHi}" : "")} prev {c.PreviousVersion}"));
        var message = $"{context}:\n expected {ShowModel(expected)}\n seen     {Show(seen)}";
        Assert.True(expected.Count == seen.Count, message);
        for (var i = 1; i < seen.Count; i++) Assert.True(seen[i].Revision > seen[i - 1].Revision, message);
        var at = 0;
        while (at < expected.Count)
        {
            var c = expected[at];
            if (c.GroupHi == 0)
            {
                var w = seen[at];
                var value = w.Value is null ? null : Encoding.UTF8.GetString(w.Value);
                Assert.True((c.Kind, c.Key, c.Value, c.Revision, c.PreviousVersion) == (w.Kind, Encoding.UTF8.GetString(w.Key), value, w.Revision, w.PreviousVersion), message);
                at++;
                continue;
            }
            var size = expected.Skip(at).TakeWhile(x => x.Revision == c.Revision && x.GroupHi == c.GroupHi).Count();
            var want = expected.Skip(at).Take(size).Select(x => $"{x.Kind} {x.Key} {x.PreviousVersion}").Order(StringComparer.Ordinal);
            var got = seen.Skip(at).Take(size).ToList();
            Assert.True(got.All(w => w.Revision >= c.Revision && w.Revision <= c.GroupHi && w.Value is null), message);
            Assert.True(want.SequenceEqual(got.Select(w => $"{w.Kind} {Encoding.UTF8.GetString(w.Key)} {w.PreviousVersion}").Order(StringComparer.Ordinal)), message);
            at += size;
        }
    }
}
