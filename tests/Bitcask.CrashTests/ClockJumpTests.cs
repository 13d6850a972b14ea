using Bitcask.CrashTests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Bitcask.CrashTests;

/// <summary>
/// Clock jumps with TTLs (../shared/RELIABILITY.md §7 item 26): the wall clock (an injected <see cref="FakeTimeProvider"/>) moves
/// back an hour, forward a year and back again, across compactions and restarts. Which version of a key wins is decided
/// by sequence numbers only; an expiry is an absolute time, so moving the clock back makes a lazily expired key visible
/// again — unless a compaction removed it while it was expired, after which it stays gone; an older version never
/// comes back; nothing throws on negative durations.
/// </summary>
public class ClockJumpTests(ITestOutputHelper output)
{
    private const string Dir = Workloads.Directory;
    private static readonly DateTimeOffset Start = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    private static BitcaskOptions OptionsFor(TimeProvider clock) => Workloads.Options(Durability.Synced) with { TimeProvider = clock };

    /// <summary>The expected state: per key its newest version (null value = deleted) with its absolute expiry (0 = never),
    /// and whether a compaction ran while that version was expired (then the store may have dropped it for good).</summary>
    private sealed class Model
    {
        private sealed class Version
        {
            public required byte[]? Value { get; init; }
            public required long ExpiresAt { get; init; }
            public bool Purgeable { get; set; }
            public bool Gone { get; set; }
        }

        private readonly Dictionary<string, Version> _latest = new(StringComparer.Ordinal);
        public IEnumerable<string> Keys => _latest.Keys;

        public void Put(string key, byte[] value, long expiresAt) => _latest[key] = new Version { Value = value, ExpiresAt = expiresAt };
        public void Delete(string key) => _latest[key] = new Version { Value = null, ExpiresAt = 0 };

        public void Compacted(long now)
        {
            foreach (var v in _latest.Values)
                if (v.Value is not null && v.ExpiresAt != 0 && v.ExpiresAt <= now) v.Purgeable = true;
        }

        /// <summary>Null when <paramref name="actual"/> is an allowed answer for <paramref name="key"/> at <paramref name="now"/>.</summary>
        public string? Check(string key, byte[]? actual, long now)
        {
            if (!_latest.TryGetValue(key, out var v) || v.Value is null)
                return actual is null ? null : $"{key}: deleted but read {Oracle.Show(actual)}";
            var visible = v.ExpiresAt == 0 || v.ExpiresAt > now;
            if (actual is not null && !actual.AsSpan().SequenceEqual(v.Value))
                return $"{key}: read {Oracle.Show(actual)}, which is not its newest version {Oracle.Show(v.Value)}";
            if (!visible) return actual is null ? null : $"{key}: expired at {v.ExpiresAt} (now {now}) but still read";
            if (actual is null && !v.Purgeable) return $"{key}: unexpired (expires {v.ExpiresAt}, now {now}) but missing";
            if (actual is null) v.Gone = true;
            else if (v.Gone) return $"{key}: was removed by a compaction while expired, then came back";
            return null;
        }
    }

    private static long Ms(FakeTimeProvider clock) => clock.GetUtcNow().ToUnixTimeMilliseconds();

    private static List<string> CheckAll(BitcaskStore store, Model model, FakeTimeProvider clock, string when)
    {
        var problems = new List<string>();
        var now = Ms(clock);
        foreach (var key in model.Keys)
            if (model.Check(key, store.Get(Workloads.B(key)), now) is { } p) problems.Add($"{when}: {p}");
        var listed = store.Keys().Select(k => System.Text.Encoding.UTF8.GetString(k)).ToHashSet();
        foreach (var key in listed)
            if (store.Get(Workloads.B(key)) is null) problems.Add($"{when}: Keys() lists {key} but Get finds nothing");
        return problems;
    }

    [Fact]
    public void Overwrites_after_the_clock_goes_back_win_and_expiry_across_a_compaction_and_restart_never_resurrects_an_older_value()
    {
        var clock = new FakeTimeProvider(Start);
        var options = OptionsFor(clock);
        var fs = new FaultFileSystem();
        var model = new Model();
        var problems = new List<string>();
        var store = BitcaskStore.Open(Dir, options, fs);
        var tag = 0;
        long expiredByCompaction = 0;
        void Put(string k, TimeSpan? ttl = null, int length = 300)
        {
            var v = Oracle.MakeValue(k, ++tag, length);
            if (ttl is { } t) store.Put(Workloads.B(k), v, t); else store.Put(Workloads.B(k), v);
            model.Put(k, v, ttl is { } d ? Ms(clock) + (long)d.TotalMilliseconds : 0);
        }
        void Check(string when) => problems.AddRange(CheckAll(store, model, clock, when));
        void Compact(string when)
        {
            store.Compact();
            model.Compacted(Ms(clock));
            Check(when);
        }
        void Restart(string when)
        {
            store.Dispose();
            store = BitcaskStore.Open(Dir, options, fs);
            Check(when);
        }

        try
        {
            Put("old", length: 900);                  // an older version of "ttl" lives in an early segment
            Put("ttl", length: 900);
            Put("plain");
            Put("gone");
            for (var i = 0; i < 6; i++) Put("filler" + i % 3, length: 900); // roll over: the first versions are sealed
            Put("ttl", TimeSpan.FromHours(2));       // newest version of "ttl" expires at Start + 2 h
            Put("short", TimeSpan.FromMinutes(10));
            store.Delete("gone"u8);
            model.Delete("gone");
            Check("start");

            clock.AdjustTime(Start - TimeSpan.FromHours(1)); // back 1 h
            Put("plain");                               // written "earlier" by the wall clock, but newer: it wins
            Put("back", TimeSpan.FromMinutes(30));
            Check("back 1 h");
            Restart("back 1 h, restart");
            Compact("back 1 h, compaction");

            clock.AdjustTime(Start + TimeSpan.FromDays(365)); // forward 1 year: every TTL above has passed
            Check("forward 1 year");
            Compact("forward 1 year, compaction");      // drops the expired newest "ttl" without bringing back the older one
            // The expiry sweep before the merge tombstones the expired keys (Expire events); the merge then drops them.
            expiredByCompaction = (store.GetStats().LastCompaction?.RecordsExpired ?? 0) + (store.GetStats().LastCompaction?.RecordsDropped ?? 0);
            Put("future", TimeSpan.FromDays(1));
            Restart("forward 1 year, restart");

            clock.AdjustTime(Start - TimeSpan.FromHours(2)); // back again, before every expiry
            Check("back again");
            Put("plain");
            Put("ttl", TimeSpan.FromMinutes(1));
            Compact("back again, compaction");
            Restart("back again, restart");
            clock.Advance(TimeSpan.FromMinutes(5));
            Check("back again + 5 min");
            _ = store.GetStats();                       // no exception on negative ages or durations
        }
        finally
        {
            store.Dispose();
        }
        foreach (var p in problems) output.WriteLine(p);
        Assert.Empty(problems);
        Assert.True(expiredByCompaction >= 2, $"the compaction a year later should have dropped the expired records, dropped {expiredByCompaction}");
    }

    [Fact]
    public void Random_clock_jumps_with_ttls_compactions_and_restarts_keep_version_order_by_sequence()
    {
        var problems = new List<string>();
        var seeds = 30 * CrashCampaign.Scale;
        var steps = 0;
        for (var s = 0; s < seeds && problems.Count == 0; s++)
        {
            var seed = CrashCampaign.BaseSeed + s;
            var rng = new Random(seed);
            var clock = new FakeTimeProvider(Start);
            var options = OptionsFor(clock);
            var fs = new FaultFileSystem();
            var model = new Model();
            var store = BitcaskStore.Open(Dir, options, fs);
            var jumps = new[] { TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(30), -TimeSpan.FromHours(1), TimeSpan.FromDays(365), -TimeSpan.FromDays(365), TimeSpan.FromDays(1), -TimeSpan.FromMinutes(45) };
            var ttls = new[] { TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1), TimeSpan.FromHours(1), TimeSpan.FromDays(2), TimeSpan.FromDays(400) };
            try
            {
                for (var i = 0; i < 60 && problems.Count == 0; i++, steps++)
                {
                    var key = "c" + rng.Next(6);
                    var roll = rng.Next(100);
                    string what;
                    if (roll < 35)
                    {
                        var v = Oracle.MakeValue(key, i, rng.Next(10, 1200));
                        if (rng.Next(2) == 0)
                        {
                            var ttl = ttls[rng.Next(ttls.Length)];
                            store.Put(Workloads.B(key), v, ttl);
                            model.Put(key, v, Ms(clock) + (long)Math.Ceiling(ttl.TotalMilliseconds));
                            what = $"put {key} ttl {ttl}";
                        }
                        else
                        {
                            store.Put(Workloads.B(key), v);
                            model.Put(key, v, 0);
                            what = $"put {key}";
                        }
                    }
                    else if (roll < 45)
                    {
                        store.Delete(Workloads.B(key));
                        model.Delete(key);
                        what = $"delete {key}";
                    }
                    else if (roll < 75)
                    {
                        var jump = jumps[rng.Next(jumps.Length)];
                        clock.AdjustTime(clock.GetUtcNow() + jump);
                        what = $"clock {jump}";
                    }
                    else if (roll < 88)
                    {
                        store.Compact();
                        model.Compacted(Ms(clock));
                        what = "compact";
                    }
                    else
                    {
                        store.Dispose();
                        store = BitcaskStore.Open(Dir, options, fs);
                        what = "restart";
                    }
                    problems.AddRange(CheckAll(store, model, clock, $"seed {seed} step {i} ({what})"));
                }
            }
            finally
            {
                store.Dispose();
            }
        }
        output.WriteLine($"{seeds} seeds, {steps} steps, {problems.Count} violations");
        foreach (var p in problems.Take(10)) output.WriteLine(p);
        Assert.Empty(problems);
    }
}
