using System.Runtime.ExceptionServices;
using System.Text;
using Xunit.Abstractions;

namespace Bitcask.Tests.Primitives;

/// <summary>
/// N threads released together by a barrier all try the same conditional write from the same version: exactly one wins
/// per round, its value is what the key holds, and the version moves past the contested one, over many rounds (and
/// whatever commit groups the racers fall into).
/// </summary>
public class CompareAndSetRaceTests(ITestOutputHelper output)
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData(Durability.Flushed, 8, 300)]
    [InlineData(Durability.Synced, 8, 100)]
    [InlineData(Durability.Buffered, 4, 300)]
    public void Threads_racing_compare_and_set_from_one_version_have_exactly_one_winner_per_round(Durability durability, int threads, int rounds)
    {
        using var dir = new TempDirectory("cas-race");
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { CompactionEnabled = false, Durability = durability, MaxSegmentBytes = 64 << 10 });
        var key = B("contested");
        var expected = 0L; // round 0 races PutIfAbsent (version 0: absent)
        var winners = new int[threads];
        var wonRound = new int[threads];
        var deleteRound = false;
        using var start = new Barrier(threads);
        using var finish = new Barrier(threads, _ =>
        {
            // Runs once per round, after every racer returned: check the round and set up the next.
            var round = wonRound[0] >> 16;
            var winnersThisRound = Enumerable.Range(0, threads).Where(t => (wonRound[t] & 0xFFFF) == 1).ToList();
            Assert.True(winnersThisRound.Count == 1, $"round {round} ({(deleteRound ? "CompareAndDelete" : "CompareAndSet")} from version {expected}): {winnersThisRound.Count} winners");
            var info = store.GetInfo(key);
            if (deleteRound)
            {
                Assert.Null(info);
                expected = 0;
            }
            else
            {
                Assert.NotNull(info);
                Assert.True(info.Value.Version > expected, $"round {round}: version {info.Value.Version} after {expected}");
                Assert.Equal($"t{winnersThisRound[0]}-r{round}", store.GetString("contested"));
                expected = info.Value.Version;
            }
            deleteRound = round % 10 == 9; // every 10th round races CompareAndDelete
            for (var t = 0; t < threads; t++) wonRound[t] = (round + 1) << 16;
        });
        var errors = new Exception?[threads];
        var racers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                for (var round = 0; round < rounds; round++)
                {
                    Wait(start);
                    var from = Volatile.Read(ref expected);
                    var won = deleteRound ? store.CompareAndDelete(key, from) : store.CompareAndSet(key, from, B($"t{t}-r{round}"));
                    if (won)
                    {
                        winners[t]++;
                        wonRound[t] |= 1;
                    }
                    Wait(finish);
                }
            }
            catch (Exception e)
            {
                errors[t] = e; // the others time out at the next barrier
            }
        })).ToList();
        foreach (var r in racers) r.Start();
        foreach (var r in racers) r.Join();
        if (errors.FirstOrDefault(e => e is BarrierPostPhaseException) is { InnerException: { } inner }) ExceptionDispatchInfo.Capture(inner).Throw();
        Assert.All(errors, e => Assert.Null(e));
        Assert.Equal(rounds, winners.Sum());
        output.WriteLine($"{durability}, {threads} threads, {rounds} rounds: wins per thread {string.Join(", ", winners)}");

        static void Wait(Barrier barrier)
        {
            if (!barrier.SignalAndWait(TimeSpan.FromSeconds(60))) throw new TimeoutException("a racer did not reach the barrier");
        }
    }
}
