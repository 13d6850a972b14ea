using Bitcask.CrashTests.Infrastructure;
using CsCheck;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// API bad input, property-based with CsCheck (../shared/RELIABILITY.md §7 item 27): keys and values at the limit and one past it,
/// empty keys, huge, zero and negative TTLs, batches over a segment, ops after Dispose, Dispose racing writers. A valid op
/// is applied exactly; a rejected one throws a typed exception naming the limit, leaves every file byte-identical and
/// does not poison the store; shrinking reports a minimal input (CsCheck prints the seed to replay).
/// </summary>
public class ApiBadInputTests(ITestOutputHelper output)
{
    private const string Dir = Workloads.Directory;
    private const int MaxKey = 64;
    private const int MaxValue = 2048;
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
    private static readonly long MaxExpiresAt = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    private static BitcaskOptions OptionsFor(TimeProvider clock) => Workloads.Options(Durability.Synced) with
    {
        MaxKeyBytes = MaxKey,
        MaxValueBytes = MaxValue,
        TimeProvider = clock,
    };

    private static int Iterations(int n) => n * CrashCampaign.Scale;

    /// <summary>Lengths around a limit: 0, 1, max-1, max, max+1, far over, or anything in between.</summary>
    private static Gen<int> LengthAround(int max) => Gen.Frequency(
        (3, Gen.OneOf(0, 1, max - 1, max, max + 1, max + 2, 2 * max + 7)),
        (2, Gen.Int[0, max + 3]));

    private static readonly TimeSpan[] SpecialTtls =
    [
        TimeSpan.Zero, TimeSpan.FromTicks(-1), TimeSpan.FromMilliseconds(-5), TimeSpan.FromDays(-3650), TimeSpan.MinValue, TimeSpan.MaxValue,
        TimeSpan.FromTicks(1), TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1), TimeSpan.FromDays(365 * 7000),
        TimeSpan.FromMilliseconds(MaxExpiresAt - Now.ToUnixTimeMilliseconds()), TimeSpan.FromMilliseconds(MaxExpiresAt - Now.ToUnixTimeMilliseconds() + 1),
    ];

    private static readonly Gen<TimeSpan?> Ttl = Gen.Frequency(
        (2, Gen.Const((TimeSpan?)null)),
        (3, Gen.OneOf(SpecialTtls).Select(t => (TimeSpan?)t)),
        (2, Gen.Long.Select(t => (TimeSpan?)TimeSpan.FromTicks(t))));

    /// <summary>An op: kind (0 put, 1 delete, 2 batch), and for each of up to 3 entries (key length, value length or -1 for a delete, TTL).</summary>
    private sealed record Entry(int KeyLength, int ValueLength, TimeSpan? Ttl)
    {
        public override string ToString() => ValueLength < 0 ? $"del(key {KeyLength})" : $"put(key {KeyLength}, value {ValueLength}{(Ttl is { } t ? $", ttl {t}" : "")})";
    }

    private sealed record ApiOp(int Kind, Entry[] Entries)
    {
        public override string ToString() => (Kind == 2 ? "batch " : "") + string.Join(" + ", (IEnumerable<Entry>)Entries);
    }

    private static readonly Gen<Entry> EntryGen =
        Gen.Select(LengthAround(MaxKey), Gen.Frequency((1, Gen.Const(-1)), (4, LengthAround(MaxValue))), Ttl, (k, v, t) => new Entry(k, v, v < 0 ? null : t));

    private static readonly Gen<ApiOp> OpGen = Gen.Frequency(
        (4, EntryGen.Select(e => new ApiOp(e.ValueLength < 0 ? 1 : 0, [e]))),
        (2, EntryGen.Array[1, 3].Select(es => new ApiOp(2, es))));

    private static bool TtlValid(TimeSpan t) =>
        t > TimeSpan.Zero && Math.Max(1, Math.Ceiling(t.TotalMilliseconds)) <= MaxExpiresAt - Now.ToUnixTimeMilliseconds();

    private static bool Valid(Entry e) =>
        e.KeyLength <= MaxKey && e.ValueLength <= MaxValue && (e.Ttl is null || TtlValid(e.Ttl.Value));

    private static byte[] Key(int length, int salt) => Enumerable.Range(0, length).Select(i => (byte)('a' + (i + salt) % 26)).ToArray();

    private static Dictionary<string, byte[]> Files(FaultFileSystem fs) => fs.Files.ToDictionary(f => f, fs.ReadAllBytes);

    private static void AssertSameFiles(Dictionary<string, byte[]> before, FaultFileSystem fs, string context)
    {
        Assert.True(before.Keys.Order().SequenceEqual(fs.Files.Order()), $"{context}: the set of files changed");
        foreach (var (f, b) in before) Assert.True(b.AsSpan().SequenceEqual(fs.ReadAllBytes(f)), $"{context}: {f} changed");
    }

    [Fact]
    public void Any_put_delete_or_batch_is_applied_exactly_or_rejected_with_a_typed_error_leaving_every_file_byte_identical()
    {
        var rejected = 0;
        var applied = 0;
        OpGen.Sample(op =>
        {
            var clock = new FakeTimeProvider(Now);
            var fs = new FaultFileSystem();
            using var store = BitcaskStore.Open(Dir, OptionsFor(clock), fs);
            store.Put("existing"u8, "value"u8);
            var before = Files(fs);
            var keys = op.Entries.Select((e, i) => Key(e.KeyLength, i)).ToArray();
            var values = op.Entries.Select((e, i) => e.ValueLength < 0 ? null : Oracle.MakeValue("v" + i, e.ValueLength, Math.Max(e.ValueLength, 0))[..e.ValueLength]).ToArray();
            // MaxKeyBytes bounds new puts only: a delete of a longer key is a miss (nothing written), never an error.
            var singleValid = op.Kind == 1 || op.Entries.All(Valid);
            Exception? error = null;
            try
            {
                switch (op.Kind)
                {
                    case 0 when op.Entries[0].Ttl is { } ttl: store.Put(keys[0], values[0], ttl); break;
                    case 0: store.Put(keys[0], values[0]); break;
                    case 1: store.Delete(keys[0]); break;
                    default:
                        var batch = new WriteBatch();
                        for (var i = 0; i < op.Entries.Length; i++)
                            if (values[i] is null) batch.Delete(keys[i]);
                            else if (op.Entries[i].Ttl is { } t) batch.Put(keys[i], values[i], t);
                            else batch.Put(keys[i], values[i]);
                        store.Write(batch);
                        break;
                }
            }
            catch (Exception e)
            {
                error = e;
            }
            if (error is null)
            {
                // Single ops are predicted exactly; a batch of valid entries may still be over a segment.
                Assert.True(singleValid, $"{op}: accepted although an entry is over a limit");
                applied++;
                var expected = new Dictionary<string, byte[]?>();
                for (var i = 0; i < keys.Length; i++) expected[Convert.ToHexString(keys[i])] = values[i];
                foreach (var (hex, value) in expected)
                {
                    var got = store.Get(Convert.FromHexString(hex));
                    Assert.True(value is null ? got is null : got is not null && got.AsSpan().SequenceEqual(value), $"{op}: key {hex} reads back wrong");
                }
            }
            else
            {
                rejected++;
                Assert.True(error is ArgumentException, $"{op}: rejected with {error.GetType().Name} (expected an ArgumentException): {error.Message}");
                Assert.True(op.Kind == 2 || !singleValid, $"{op}: a valid op was rejected: {error.Message}");
                Assert.Matches("MaxKeyBytes|MaxValueBytes|time to live|segment", error.Message);
                AssertSameFiles(before, fs, op.ToString());
                // Not poisoned: the next valid write works.
                store.Put("after"u8, "ok"u8);
                Assert.Equal("ok"u8.ToArray(), store.Get("after"u8));
            }
            Assert.Equal("value"u8.ToArray(), store.Get("existing"u8));
        }, iter: Iterations(400), threads: 1, print: op => op.ToString());
        output.WriteLine($"{applied} applied, {rejected} rejected");
        Assert.True(applied > 20 && rejected > 20, $"the generator should hit both sides of every limit ({applied} applied, {rejected} rejected)");
    }

    [Fact]
    public void Every_operation_after_dispose_throws_object_disposed_and_changes_no_file()
    {
        var operations = new (string Name, Action<BitcaskStore> Run)[]
        {
            ("Get", s => s.Get("k"u8)),
            ("ContainsKey", s => s.ContainsKey("k"u8)),
            ("Put", s => s.Put("k"u8, "v"u8)),
            ("Put ttl", s => s.Put("k"u8, "v"u8, TimeSpan.FromHours(1))),
            ("Delete", s => s.Delete("k"u8)),
            ("Write", s => s.Write(new WriteBatch().Put("k"u8, "v"u8))),
            ("Write empty", s => s.Write(new WriteBatch())),
            ("Sync", s => s.Sync()),
            ("Compact", s => s.Compact()),
            ("Keys", s => s.Keys().ToList()),
            ("Scan", s => s.Scan().ToList()),
            ("PutAsync", s => s.PutAsync("k"u8.ToArray(), "v"u8.ToArray()).AsTask().GetAwaiter().GetResult()),
            ("WriteAsync", s => s.WriteAsync(new WriteBatch().Put("k"u8, "v"u8)).AsTask().GetAwaiter().GetResult()),
        };
        Gen.Select(Gen.Int[0, operations.Length - 1], Gen.Int[0, 2], Gen.Bool).Sample((which, durability, readOnly) =>
        {
            var fs = new FaultFileSystem();
            var options = OptionsFor(new FakeTimeProvider(Now)) with { Durability = (Durability)durability };
            using (var writer = BitcaskStore.Open(Dir, options, fs)) writer.Put("k"u8, "before"u8);
            var store = BitcaskStore.Open(Dir, options with { ReadOnly = readOnly }, fs);
            store.Dispose();
            var before = Files(fs);
            var (name, run) = operations[which];
            var e = Record.Exception(() => run(store));
            Assert.True(e is ObjectDisposedException, $"{name} after Dispose ({(readOnly ? "read-only" : (Durability)durability)}): {e?.GetType().Name ?? "no exception"}: {e?.Message}");
            store.Dispose(); // a second Dispose is a no-op
            AssertSameFiles(before, fs, $"{name} after Dispose");
            Assert.Equal(0, fs.HeldLocks);
        }, iter: Iterations(60), threads: 1);
    }

    [Fact]
    public void Dispose_racing_writers_fails_each_write_cleanly_or_keeps_it_and_leaves_no_partial_record()
    {
        var rounds = 0;
        Gen.Select(Gen.Int[1, 4], Gen.Int[0, 3000], Gen.Int[0, 2]).Sample((writers, delayTicks, durability) =>
        {
            var fs = new FaultFileSystem();
            var options = OptionsFor(new FakeTimeProvider(Now)) with { Durability = (Durability)durability, CompactionEnabled = true };
            var store = BitcaskStore.Open(Dir, options, fs);
            var acknowledged = new System.Collections.Concurrent.ConcurrentDictionary<string, byte[]>();
            var unexpected = new System.Collections.Concurrent.ConcurrentQueue<string>();
            using var start = new Barrier(writers + 1);
            var threads = Enumerable.Range(0, writers).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                for (var i = 0; ; i++)
                {
                    var key = $"w{t}-{i}";
                    var value = Oracle.MakeValue(key, i, 40 + i % 300);
                    try
                    {
                        if (i % 5 == 4) store.Write(new WriteBatch().Put(Workloads.B(key), value).Put(Workloads.B(key + "b"), value));
                        else store.Put(Workloads.B(key), value);
                        acknowledged[key] = value;
                        if (i % 5 == 4) acknowledged[key + "b"] = value;
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                    catch (Exception e)
                    {
                        unexpected.Enqueue($"{e.GetType().Name}: {e.Message}");
                        return;
                    }
                }
            })).ToList();
            threads.ForEach(th => th.Start());
            start.SignalAndWait();
            Thread.SpinWait(delayTicks * 50);
            store.Dispose();
            Assert.True(threads.All(th => th.Join(TimeSpan.FromSeconds(30))), "a writer hung after Dispose");
            Assert.True(unexpected.IsEmpty, $"writers saw: {string.Join("; ", unexpected.Take(3))}");
            // Dispose synced everything acknowledged; reopening finds it all, and nothing torn.
            using var reopened = BitcaskStore.Open(Dir, options with { CompactionEnabled = false }, fs);
            Assert.Empty(reopened.GetStats().RecoveryFindings);
            var state = Oracle.Dump(reopened);
            foreach (var (k, v) in acknowledged)
                Assert.True(state.TryGetValue(k, out var got) && got.AsSpan().SequenceEqual(v), $"acknowledged {k} lost");
            foreach (var (k, v) in state)
                Assert.True(v.AsSpan().SequenceEqual(Oracle.MakeValue(k.TrimEnd('b'), int.Parse(k.TrimEnd('b').Split('-')[1]), v.Length)), $"{k} holds foreign bytes");
            Interlocked.Increment(ref rounds);
        }, iter: Iterations(25), threads: 1);
        output.WriteLine($"{rounds} Dispose races");
    }
}
