using System.Diagnostics;
using Xunit.Abstractions;

using Bitcask.Testing.Linearizability;

namespace Bitcask.Tests.Linearizability;

/// <summary>
/// CompareAndSet, Increment and Get (value and version from one record) from 4 threads on 1–3 keys are linearizable:
/// recorded histories of the engine pass <see cref="LinearizabilityChecker"/>, and the checker has teeth (it rejects
/// handcrafted non-linearizable histories and finds the race in a read-then-write double within a few runs).
/// </summary>
public class LinearizabilityTests(ITestOutputHelper output)
{
    private static readonly BitcaskOptions Options = new() { CompactionEnabled = false, MaxSegmentBytes = 64 << 10 };

    public static TheoryData<int, Durability> Runs() => new()
    {
        { 1, Durability.Flushed }, { 2, Durability.Flushed }, { 3, Durability.Flushed },
        { 1, Durability.Synced }, { 2, Durability.Buffered }, { 3, Durability.Synced },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void Histories_of_cas_increment_and_get_from_4_threads_on_the_engine_are_linearizable(int keys, Durability durability)
    {
        using var dir = new TempDirectory("linearizability");
        using var store = BitcaskStore.Open(dir.Path, Options with { Durability = durability });
        var seed = Environment.TickCount;
        var history = HistoryRecorder.Record(new EngineRegisters(store), keys, threads: 4, opsPerClient: 60 * keys, seed);
        Assert.True(store.Revision < HistoryRecorder.ImpossibleVersion);
        var watch = Stopwatch.StartNew();
        var result = LinearizabilityChecker.Check(history);
        var overlapping = Overlapping(history);
        output.WriteLine($"seed {seed}, {keys} keys, {durability}: {history.Count} ops ({overlapping} overlap another), " +
            $"{history.Count(o => o.Kind == RegisterOpKind.CompareAndSet && o.Ok)} CAS won, {history.Count(o => o.Kind == RegisterOpKind.CompareAndSet && !o.Ok)} lost, " +
            $"{result.States} states searched in {watch.ElapsedMilliseconds} ms: {result.Explanation}");
        Assert.True(result.Linearizable, $"seed {seed}: {result.Explanation}\n{string.Join("\n", history.OrderBy(o => o.Invoke))}");
        // Synced operations wait in group commit for fdatasync, so they overlap a lot; µs-long Flushed and Buffered ones
        // overlap mostly right after the recorder's barriers (on 2 loaded cores possibly not at all).
        if (durability == Durability.Synced)
            Assert.True(overlapping >= history.Count / 4, $"only {overlapping} of {history.Count} operations overlapped another");
    }

    /// <summary>How many operations overlap in time with at least one other (the concurrency the checker had to resolve).</summary>
    private static int Overlapping(List<RegisterOp> history)
    {
        var sorted = history.OrderBy(o => o.Invoke).ToList();
        var overlaps = new bool[sorted.Count];
        var maxResponse = long.MinValue;
        var maxAt = -1;
        for (var i = 0; i < sorted.Count; i++)
        {
            if (sorted[i].Invoke <= maxResponse)
            {
                overlaps[i] = true;
                overlaps[maxAt] = true;
            }
            if (sorted[i].Response > maxResponse)
            {
                maxResponse = sorted[i].Response;
                maxAt = i;
            }
        }
        return overlaps.Count(o => o);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Histories_stay_linearizable_while_compaction_relocates_the_records_under_them(int keys)
    {
        using var dir = new TempDirectory("linearizability-compaction");
        using var store = BitcaskStore.Open(dir.Path, Options with { MaxSegmentBytes = 4096 });
        var seed = Environment.TickCount;
        using var stop = new CancellationTokenSource();
        var compactions = 0;
        using var running = new ManualResetEventSlim();
        var compactor = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                running.Set();
                store.Compact();
                compactions++;
            }
        }, TaskCreationOptions.LongRunning);
        running.Wait(TimeSpan.FromSeconds(30));
        List<RegisterOp> history;
        try
        {
            history = HistoryRecorder.Record(new EngineRegisters(store), keys, threads: 4, opsPerClient: 60 * keys, seed);
        }
        finally
        {
            await stop.CancelAsync();
            await compactor;
        }
        var result = LinearizabilityChecker.Check(history);
        output.WriteLine($"seed {seed}, {keys} keys, {compactions} compactions during {history.Count} ops: {result.Explanation}");
        Assert.True(compactions > 0, "no compaction ran during the history");
        Assert.True(result.Linearizable, $"seed {seed}: {result.Explanation}\n{string.Join("\n", history.OrderBy(o => o.Invoke))}");
    }

    [Fact]
    public void The_checker_finds_the_lost_update_of_a_read_then_write_double_within_20_runs()
    {
        for (var run = 1; run <= 20; run++)
        {
            using var dir = new TempDirectory("racy");
            using var store = BitcaskStore.Open(dir.Path, Options);
            var history = HistoryRecorder.Record(new RacyRegisters(store), keys: 1, threads: 4, opsPerClient: 60, seed: run);
            var result = LinearizabilityChecker.Check(history);
            Assert.False(result.Inconclusive, result.Explanation);
            if (!result.Linearizable)
            {
                output.WriteLine($"violation found in run {run} ({history.Count} ops, {result.States} states): {result.Explanation}");
                return;
            }
            output.WriteLine($"run {run}: this history happened to be linearizable");
        }
        Assert.Fail("20 histories of the racy double all passed the checker");
    }

    // Handcrafted histories on one key: times are abstract ticks.

    [Fact]
    public void A_read_that_misses_a_write_which_completed_before_it_began_is_not_linearizable()
    {
        var history = new List<RegisterOp>
        {
            RegisterOp.Cas(0, 0, 0, 10, expected: 0, newValue: 7, ok: true),
            RegisterOp.Get(1, 0, 20, 30, value: null),
        };
        var result = LinearizabilityChecker.Check(history);
        Assert.False(result.Linearizable, result.Explanation);
        Assert.Contains("no linearization", result.Explanation);
    }

    [Fact]
    public void A_read_overlapping_a_write_may_see_either_state()
    {
        Assert.True(LinearizabilityChecker.Check(
        [
            RegisterOp.Cas(0, 0, 0, 10, expected: 0, newValue: 7, ok: true),
            RegisterOp.Get(1, 0, 5, 15, value: null),
            RegisterOp.Get(2, 0, 5, 15, value: 7, version: 1),
            RegisterOp.Get(3, 0, 20, 30, value: 7, version: 1),
        ]).Linearizable);
    }

    [Fact]
    public void New_then_old_reads_during_one_write_are_not_linearizable()
    {
        // Client 1 sees the new value, then client 2, starting after client 1 returned, sees the old (absent) state.
        var result = LinearizabilityChecker.Check(
        [
            RegisterOp.Cas(0, 0, 0, 100, expected: 0, newValue: 7, ok: true),
            RegisterOp.Get(1, 0, 10, 20, value: 7, version: 1),
            RegisterOp.Get(2, 0, 30, 40, value: null),
        ]);
        Assert.False(result.Linearizable, result.Explanation);
    }

    [Fact]
    public void Two_compare_and_sets_from_one_version_cannot_both_win_and_a_lost_increment_is_caught()
    {
        var twoWinners = LinearizabilityChecker.Check(
        [
            RegisterOp.Cas(0, 0, 0, 10, expected: 0, newValue: 5, ok: true),
            RegisterOp.Get(0, 0, 11, 12, value: 5, version: 1),
            RegisterOp.Cas(1, 0, 20, 40, expected: 1, newValue: 8, ok: true),
            RegisterOp.Cas(2, 0, 21, 41, expected: 1, newValue: 9, ok: true),
        ]);
        Assert.False(twoWinners.Linearizable, twoWinners.Explanation);

        var lostUpdate = LinearizabilityChecker.Check(
        [
            RegisterOp.Increment(0, 0, 0, 10, delta: 1, result: 1),
            RegisterOp.Increment(1, 0, 5, 15, delta: 1, result: 1),
        ]);
        Assert.False(lostUpdate.Linearizable, lostUpdate.Explanation);

        var concurrentIncrements = LinearizabilityChecker.Check(
        [
            RegisterOp.Increment(0, 0, 0, 10, delta: 1, result: 2),
            RegisterOp.Increment(1, 0, 5, 15, delta: 1, result: 1),
            RegisterOp.Get(2, 0, 20, 30, value: 2, version: 9),
        ]);
        Assert.True(concurrentIncrements.Linearizable, concurrentIncrements.Explanation);
    }

    [Fact]
    public void A_version_that_goes_back_or_names_two_values_is_not_linearizable()
    {
        // Value 8 replaced 5 (client 2's read after client 1's), yet its version is lower.
        var backwards = LinearizabilityChecker.Check(
        [
            RegisterOp.Cas(0, 0, 0, 10, expected: 0, newValue: 5, ok: true),
            RegisterOp.Get(1, 0, 11, 12, value: 5, version: 6),
            RegisterOp.Cas(1, 0, 13, 20, expected: 6, newValue: 8, ok: true),
            RegisterOp.Get(2, 0, 21, 22, value: 8, version: 3),
        ]);
        Assert.False(backwards.Linearizable, backwards.Explanation);

        var twoValues = LinearizabilityChecker.Check(
        [
            RegisterOp.Get(1, 0, 11, 12, value: 5, version: 6),
            RegisterOp.Get(2, 0, 21, 22, value: 8, version: 6),
        ]);
        Assert.False(twoValues.Linearizable, twoValues.Explanation);
    }

    [Fact]
    public void Partitioning_by_key_checks_each_key_on_its_own()
    {
        // Each key alone is linearizable; a violation on key 1 is reported for key 1.
        var history = new List<RegisterOp>
        {
            RegisterOp.Cas(0, 0, 0, 10, expected: 0, newValue: 5, ok: true),
            RegisterOp.Get(1, 1, 0, 10, value: null),
            RegisterOp.Get(1, 0, 20, 30, value: 5, version: 1),
        };
        Assert.True(LinearizabilityChecker.Check(history).Linearizable);
        history.Add(RegisterOp.Cas(2, 1, 40, 50, expected: 0, newValue: 6, ok: true));
        history.Add(RegisterOp.Get(2, 1, 60, 70, value: null));
        var result = LinearizabilityChecker.Check(history);
        Assert.False(result.Linearizable);
        Assert.StartsWith("key 1", result.Explanation);
    }

    // The RESP model (issue 13): unversioned reads, SET, value-compare CAS, DEL, and outcomes the client never learned.

    [Fact]
    public void An_acknowledged_set_that_a_later_read_does_not_see_is_a_lost_write()
    {
        var result = LinearizabilityChecker.Check(
        [
            RegisterOp.Set(0, 0, 0, 10, value: 5),
            RegisterOp.Get(1, 0, 20, 30, value: null),
        ]);
        Assert.False(result.Linearizable, result.Explanation);
    }

    [Fact]
    public void A_write_with_unknown_outcome_may_apply_late_or_never_but_not_come_and_go()
    {
        var unknown = RegisterOp.Set(0, 0, 0, 10, value: 5).AsUnknown();
        Assert.True(LinearizabilityChecker.Check([unknown, RegisterOp.Get(1, 0, 20, 30, value: null)]).Linearizable); // never applied
        Assert.True(LinearizabilityChecker.Check([unknown, RegisterOp.Get(1, 0, 20, 30, value: null), RegisterOp.Get(1, 0, 40, 50, value: 5)]).Linearizable); // applied late
        var comeAndGo = LinearizabilityChecker.Check([unknown, RegisterOp.Get(1, 0, 20, 30, value: 5), RegisterOp.Get(1, 0, 40, 50, value: null)]);
        Assert.False(comeAndGo.Linearizable, comeAndGo.Explanation);
        // An unknown increment that applied shows in a later acknowledged increment's result; twice it cannot.
        var incremented = RegisterOp.Increment(0, 1, 0, 10, delta: 1, result: 0).AsUnknown();
        Assert.True(LinearizabilityChecker.Check([incremented, RegisterOp.Increment(1, 1, 20, 30, delta: 1, result: 2)]).Linearizable);
        Assert.False(LinearizabilityChecker.Check([incremented, RegisterOp.Increment(1, 1, 20, 30, delta: 1, result: 3)]).Linearizable);
    }

    [Fact]
    public void Two_value_compare_and_sets_from_one_value_cannot_both_win_and_delete_reports_whether_the_key_existed()
    {
        var twoWinners = LinearizabilityChecker.Check(
        [
            RegisterOp.Set(0, 0, 0, 10, value: 5),
            RegisterOp.CompareValue(1, 0, 20, 40, expectedValue: 5, newValue: 8, ok: true),
            RegisterOp.CompareValue(2, 0, 21, 41, expectedValue: 5, newValue: 9, ok: true),
        ]);
        Assert.False(twoWinners.Linearizable, twoWinners.Explanation);
        Assert.True(LinearizabilityChecker.Check(
        [
            RegisterOp.Set(0, 0, 0, 10, value: 5),
            RegisterOp.CompareValue(1, 0, 20, 40, expectedValue: 5, newValue: 8, ok: true),
            RegisterOp.CompareValue(2, 0, 21, 41, expectedValue: 5, newValue: 9, ok: false),
            RegisterOp.CompareValue(2, 0, 50, 60, expectedValue: null, newValue: 9, ok: false),
        ]).Linearizable);
        var deleteOfNothing = LinearizabilityChecker.Check(
        [
            RegisterOp.Delete(0, 0, 0, 10, existed: true),
        ]);
        Assert.False(deleteOfNothing.Linearizable, deleteOfNothing.Explanation);
        Assert.True(LinearizabilityChecker.Check(
        [
            RegisterOp.Set(0, 0, 0, 10, value: 5),
            RegisterOp.Delete(1, 0, 20, 30, existed: true),
            RegisterOp.Increment(0, 0, 40, 50, delta: 1, result: 1),
        ]).Linearizable);
    }
}
