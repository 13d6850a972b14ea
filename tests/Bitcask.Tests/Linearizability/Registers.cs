using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Bitcask.Testing.Linearizability;

namespace Bitcask.Tests.Linearizability;

/// <summary>The three operations a history records, on keys named by number.</summary>
internal interface IRegisters
{
    bool CompareAndSet(int key, long expectedVersion, long value);
    long Increment(int key, long delta);
    bool TryGet(int key, out long value, out long version);
}

/// <summary>The engine's own calls: CompareAndSet, Increment, and TryGetEntry (value and version from one record).</summary>
internal sealed class EngineRegisters(BitcaskStore store) : IRegisters
{
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;

    public static byte[] KeyOf(int key) => Encoding.UTF8.GetBytes("reg" + key);

    public bool CompareAndSet(int key, long expectedVersion, long value) =>
        store.CompareAndSet(KeyOf(key), expectedVersion, Encoding.UTF8.GetBytes(value.ToString(CultureInfo.InvariantCulture)));

    public long Increment(int key, long delta) => store.Increment(KeyOf(key), delta);

    public bool TryGet(int key, out long value, out long version)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>();
        buffer.ResetWrittenCount();
        value = version = 0;
        if (!store.TryGetEntry(KeyOf(key), buffer, out var info)) return false;
        if (!Utf8Parser.TryParse(buffer.WrittenSpan, out value, out _)) throw new InvalidOperationException("not an integer");
        version = info.Version;
        return true;
    }
}

/// <summary>
/// A deliberately broken double for the checker to catch: the same calls on the same engine, built as read, yield,
/// then an unconditional write (the classic check-then-act race). Two CompareAndSets from one version can both win,
/// and two Increments can both add to the same value (a lost update).
/// </summary>
internal sealed class RacyRegisters(BitcaskStore store) : IRegisters
{
    private readonly EngineRegisters _reads = new(store);

    public bool CompareAndSet(int key, long expectedVersion, long value)
    {
        var version = store.GetInfo(EngineRegisters.KeyOf(key))?.Version ?? 0;
        if (version != expectedVersion) return false;
        Thread.Yield();
        store.Put(EngineRegisters.KeyOf(key), Encoding.UTF8.GetBytes(value.ToString(CultureInfo.InvariantCulture)));
        return true;
    }

    public long Increment(int key, long delta)
    {
        var current = _reads.TryGet(key, out var value, out _) ? value : 0;
        Thread.Yield();
        store.Put(EngineRegisters.KeyOf(key), Encoding.UTF8.GetBytes((current + delta).ToString(CultureInfo.InvariantCulture)));
        return current + delta;
    }

    public bool TryGet(int key, out long value, out long version) => _reads.TryGet(key, out value, out version);
}

/// <summary>
/// Records a history: <c>threads</c> clients each run <c>opsPerClient</c> random operations on <c>keys</c> keys: Get (40 %),
/// CompareAndSet (40 %: from the version the client last read of that key, 0 when it read none, or one no write can
/// have), Increment by 1–3 (20 %). The clients line up at a barrier every 20 operations. CAS values are unique (client, sequence), so every written value is unique.
/// </summary>
internal static class HistoryRecorder
{
    /// <summary>No revision of these short runs reaches it: a CAS expecting it must fail.</summary>
    public const long ImpossibleVersion = 1L << 40;

    public static List<RegisterOp> Record(IRegisters registers, int keys, int threads, int opsPerClient, int seed)
    {
        var perClient = new List<RegisterOp>[threads];
        var errors = new Exception?[threads];
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(client => new Thread(() =>
        {
            try
            {
                Run(client);
            }
            catch (Exception e)
            {
                errors[client] = e;
            }
        })).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } error) throw new InvalidOperationException("a client failed", error);
        return [.. perClient.SelectMany(o => o)];

        void Run(int client)
        {
            var random = new Random(seed * 31 + client);
            var ops = perClient[client] = new List<RegisterOp>(opsPerClient);
            var lastVersion = new long[keys];
            for (var i = 0; i < opsPerClient; i++)
            {
                // Every 20 operations the clients line up and start again together, so their operations overlap even
                // when the scheduler would otherwise run them one after another on loaded cores.
                if (i % 20 == 0 && !start.SignalAndWait(TimeSpan.FromSeconds(30))) throw new TimeoutException("a client did not reach the barrier");
                var key = random.Next(keys);
                var roll = random.Next(100);
                if (roll < 40)
                {
                    var invoke = Stopwatch.GetTimestamp();
                    var found = registers.TryGet(key, out var value, out var version);
                    var response = Stopwatch.GetTimestamp();
                    ops.Add(RegisterOp.Get(client, key, invoke, response, found ? value : null, version));
                    lastVersion[key] = found ? version : 0;
                }
                else if (roll < 80)
                {
                    var expected = random.Next(10) == 0 ? ImpossibleVersion : lastVersion[key];
                    var newValue = (client + 1) * 1_000_000_000_000L + (i + 1) * 1_000_000L; // unique; increments add < 10^6
                    var invoke = Stopwatch.GetTimestamp();
                    var ok = registers.CompareAndSet(key, expected, newValue);
                    var response = Stopwatch.GetTimestamp();
                    ops.Add(RegisterOp.Cas(client, key, invoke, response, expected, newValue, ok));
                }
                else
                {
                    var delta = random.Next(1, 4);
                    var invoke = Stopwatch.GetTimestamp();
                    var result = registers.Increment(key, delta);
                    var response = Stopwatch.GetTimestamp();
                    ops.Add(RegisterOp.Increment(client, key, invoke, response, delta, result));
                }
            }
        }
    }
}
