using System.Diagnostics;
using System.Text;
using Bitcask.CrashHost;
using Bitcask.Storage;
using Bitcask.CrashTests.Infrastructure;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// Real process crashes (../shared/RELIABILITY.md §7 items 9, 10, 25, 33, and the read-only-beside-a-writer check): a child process
/// writes from several threads (group commit) and prints every acknowledged op; the test SIGKILLs it at a random moment,
/// reopens the real directory and checks, per writer thread, that the recovered keys are the state after a prefix of that
/// thread's ops containing every acknowledged one (Flushed and Synced: a kill loses nothing acknowledged).
/// BITCASK_SOAK=minutes runs the same loop for that long.
/// </summary>
[Collection("processes")]
public class ProcessCrashTests(ITestOutputHelper output)
{
    private const int Threads = 4;

    internal static string HostDll()
    {
        var baseDir = AppContext.BaseDirectory.TrimEnd('/');
        var config = new DirectoryInfo(baseDir).Parent!.Name; // .../bin/<Config>/net10.0
        var dll = Path.GetFullPath(Path.Combine(baseDir, "../../../../Bitcask.CrashHost/bin", config, "net10.0/Bitcask.CrashHost.dll"));
        Assert.True(File.Exists(dll), $"crash host not built at {dll}");
        return dll;
    }

    internal sealed class Child : IDisposable
    {
        public required Process Process { get; init; }
        public readonly List<string> Lines = [];
        public readonly List<string> Errors = [];
        public readonly TaskCompletionSource Ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static Child Start(string dir, Durability durability, int seed, bool compact, bool backgroundOnly = false)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            var compaction = !compact ? "0" : backgroundOnly ? "2" : "1";
            foreach (var a in new[] { HostDll(), dir, durability.ToString(), seed.ToString(), Threads.ToString(), compaction }) psi.ArgumentList.Add(a);
            var child = new Child { Process = Process.Start(psi)! };
            child.Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (child.Lines) child.Lines.Add(e.Data);
                if (e.Data == "READY") child.Ready.TrySetResult();
            };
            child.Process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (child.Errors) child.Errors.Add(e.Data);
            };
            child.Process.BeginOutputReadLine();
            child.Process.BeginErrorReadLine();
            return child;
        }

        /// <summary>Why <see cref="WaitReady"/> failed: the child's exit code and the end of its standard error, or that it still runs.</summary>
        public string NotReadyReason()
        {
            if (!Process.HasExited) return "no READY within 120 s (the child still runs)";
            Process.WaitForExit(); // drains the redirected streams
            lock (Errors) return $"the child exited with code {Process.ExitCode}: {string.Join(" | ", Errors.TakeLast(8))}";
        }

        public bool WaitReady() => Task.WaitAny([Ready.Task, Process.WaitForExitAsync()], TimeSpan.FromSeconds(120)) == 0; // generous: a loaded CI machine starts .NET slowly

        public void Kill()
        {
            try { Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Process.WaitForExit(); // also drains the redirected output already in the pipe
        }

        /// <summary>Highest acknowledged op index per thread (-1 = none).</summary>
        public int[] Acked()
        {
            var acked = Enumerable.Repeat(-1, Threads).ToArray();
            lock (Lines)
                foreach (var line in Lines)
                {
                    var p = line.Split(' ');
                    if (p.Length == 3 && p[0] == "A") acked[int.Parse(p[1])] = Math.Max(acked[int.Parse(p[1])], int.Parse(p[2]));
                }
            return acked;
        }

        public void Dispose()
        {
            Kill();
            Process.Dispose();
        }
    }

    private static Dictionary<string, byte[]> DumpReal(string dir, bool readOnly = false)
    {
        using var store = BitcaskStore.Open(dir, new BitcaskOptions { ReadOnly = readOnly, MaxSegmentBytes = 64 << 10, MaxValueBytes = 8192, CompactionEnabled = false });
        return Oracle.Dump(store);
    }

    /// <summary>Null when, for every thread, the recovered keys equal the thread's state after a prefix p of its ops with
    /// (strict) acked+1 ≤ p ≤ acked+2 — at most the one in-flight op beyond the acknowledged ones.</summary>
    private static string? CheckKill(Dictionary<string, byte[]> before, Dictionary<string, byte[]> after, int seed, int[] acked, bool strict)
    {
        foreach (var (k, v) in after)
            if (!HostOps.IsGenuine(k, v)) return $"key {k} holds bytes that were never written for it: {Oracle.Show(v)}";
        for (var t = 0; t < Threads; t++)
        {
            var prefix = $"t{t}k";
            var state = before.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
            var actual = after.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
            var min = strict ? acked[t] + 1 : 0;
            var found = false;
            for (var p = 0; p <= acked[t] + 2 && !found; p++)
            {
                if (p >= min && Oracle.SameState(state, actual)) found = true;
                foreach (var (k, v) in HostOps.Op(seed, t, p))
                    if (v is null) state.Remove(k); else state[k] = v;
            }
            if (!found) return $"thread {t}: recovered keys match no allowed prefix of its ops (acknowledged up to op {acked[t]}, strict = {strict})";
        }
        return null;
    }

    /// <summary>Rounds every run makes even on a slow, loaded machine (the time budget only bounds extra rounds).</summary>
    private const int MinRounds = 3;

    private int KillLoop(TimeSpan budget, int maxRounds, bool compact, List<string> problems, Durability[]? modes = null, bool backgroundOnly = false)
    {
        using var dir = new TempDir();
        var rng = new Random(CrashCampaign.BaseSeed);
        var state = new Dictionary<string, byte[]>();
        var rounds = 0;
        var clock = Stopwatch.StartNew();
        while (rounds < maxRounds && (clock.Elapsed < budget || rounds < MinRounds))
        {
            modes ??= Enum.GetValues<Durability>();
            var durability = modes[rounds % modes.Length];
            var seed = CrashCampaign.BaseSeed + rounds;
            var readerChecks = 0;
            using (var child = Child.Start(dir.Path, durability, seed, compact, backgroundOnly))
            {
                if (!child.WaitReady()) { problems.Add($"round {rounds}: the child never opened the store: {child.NotReadyReason()}"); break; }
                var until = clock.Elapsed + TimeSpan.FromMilliseconds(rng.Next(80, 500));
                while (clock.Elapsed < until)
                {
                    // A read-only open beside the writer sees only whole records written for their keys.
                    try
                    {
                        foreach (var (k, v) in DumpReal(dir.Path, readOnly: true))
                            if (!HostOps.IsGenuine(k, v)) problems.Add($"round {rounds}: read-only reader saw foreign bytes for {k}");
                        readerChecks++;
                    }
                    catch (IOException) { /* a segment compacted away under the reader: retry */ }
                }
                child.Kill();
                var acked = child.Acked();
                Dictionary<string, byte[]> after;
                try { after = DumpReal(dir.Path); }
                catch (Exception e) { problems.Add($"round {rounds} ({durability}, seed {seed}): reopen after kill failed: {e.Message}"); break; }
                var again = DumpReal(dir.Path);
                if (!Oracle.SameState(after, again)) problems.Add($"round {rounds}: a second reopen found a different state");
                var strict = durability != Durability.Buffered;
                if (CheckKill(state, after, seed, acked, strict) is { } bad)
                    problems.Add($"round {rounds} ({durability}, seed {seed}, acked {string.Join("/", acked)}): {bad}");
                state = after;
            }
            rounds++;
        }
        output.WriteLine($"{rounds} kill rounds in {clock.Elapsed.TotalSeconds:F0} s, compaction {(compact ? "on" : "off")}, {problems.Count} violations");
        return rounds;
    }

    private static TimeSpan Soak => int.TryParse(Environment.GetEnvironmentVariable("BITCASK_SOAK"), out var m) && m > 0 ? TimeSpan.FromMinutes(m) : TimeSpan.Zero;

    [Fact]
    public void Sigkill_of_a_writer_at_random_moments_loses_nothing_acknowledged_in_flushed_and_synced_mode()
    {
        var problems = new List<string>();
        var soak = Soak;
        var rounds = KillLoop(soak > TimeSpan.Zero ? soak : TimeSpan.FromSeconds(40), soak > TimeSpan.Zero ? int.MaxValue : 18, compact: false, problems);
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.True(rounds >= MinRounds);
        Assert.Empty(problems);
    }

    [Fact]
    public void Sigkill_during_continuous_compaction_loses_nothing_acknowledged() => CompactionKills(Enum.GetValues<Durability>());

    [Fact]
    public void Sigkill_during_background_compaction_alone_loses_nothing_acknowledged() =>
        // Only the background compactor, as a service runs it: partial merges of fragmented segments, often outputs of
        // its own earlier runs, where an explicit Compact() merges everything. (The partial-merge bug of 2026-11-27 is
        // pinned down deterministically by CrashPointTests' partial-merge campaigns; 12 rounds here did not hit it.)
        CompactionKills(Enum.GetValues<Durability>(), backgroundOnly: true);

    private void CompactionKills(Durability[] modes, bool backgroundOnly = false)
    {
        // BITCASK_KILL_MODES=Buffered (comma-separated) overrides the modes, e.g. to soak the rounds of a skipped variant.
        if (Environment.GetEnvironmentVariable("BITCASK_KILL_MODES") is { Length: > 0 } forced)
            modes = forced.Split(',').Select(Enum.Parse<Durability>).ToArray();
        var problems = new List<string>();
        var soak = Soak;
        var rounds = KillLoop(soak > TimeSpan.Zero ? soak : TimeSpan.FromSeconds(30), soak > TimeSpan.Zero ? int.MaxValue : 12, compact: true, problems, modes, backgroundOnly);
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.True(rounds >= MinRounds);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_second_writer_process_fails_cleanly_while_the_first_lives_and_succeeds_after_it_is_killed()
    {
        using var dir = new TempDir();
        using (var first = Child.Start(dir.Path, Durability.Flushed, 1, compact: false))
        {
            Assert.True(first.WaitReady());
            Assert.False(first.Process.HasExited, "the first writer died");
            var e = Assert.Throws<StoreLockedException>(() => BitcaskStore.Open(dir.Path));
            Assert.Contains("LOCK", e.Message);
            using (var second = Child.Start(dir.Path, Durability.Flushed, 2, compact: false))
            {
                Assert.True(second.Process.WaitForExit(TimeSpan.FromSeconds(120)));
                Assert.Equal(3, second.Process.ExitCode);
            }
            first.Kill();
        }
        using var store = BitcaskStore.Open(dir.Path); // the kernel released the lock with the killed process
        store.Put("after"u8, "kill"u8);
    }

    internal sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bitcask-crash", Guid.NewGuid().ToString("N")[..12]);
        public TempDir() => Directory.CreateDirectory(Path);
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
