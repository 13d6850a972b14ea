using System.Text;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Bitcask.Tests;

/// <summary>
/// Seeded random operation sequences (put, overwrite, delete, batch, TTL with a fake clock, compaction, reopen) against
/// an in-memory model; every read is compared. Set BITCASK_SEED to replay one seed; BITCASK_MODEL_OPS to run longer.
/// </summary>
public class ModelTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Seeds()
    {
        if (Environment.GetEnvironmentVariable("BITCASK_SEED") is { } fixedSeed) return [[int.Parse(fixedSeed), false], [int.Parse(fixedSeed), true]];
        return Enumerable.Range(1, 6).Select(i => new object[] { i * 7919, i % 2 == 0 });
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_operations_match_the_model_across_reopens_and_compactions(int seed, bool backgroundCompaction)
    {
        var ops = int.TryParse(Environment.GetEnvironmentVariable("BITCASK_MODEL_OPS"), out var n) ? n : 3000;
        output.WriteLine($"seed {seed}, background compaction {backgroundCompaction}, {ops} ops (replay with BITCASK_SEED={seed})");
        var random = new Random(seed);
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var options = new BitcaskOptions
        {
            MaxSegmentBytes = 8192,
            MaxValueBytes = 6000,
            MaxKeyBytes = 64,
            CompressionThreshold = 1024,
            TimeProvider = clock,
            CompactionEnabled = backgroundCompaction,
            CompactionCheckInterval = TimeSpan.FromMilliseconds(5),
            CompactionFragmentationThreshold = 0.3,
            Durability = (Durability)random.Next(3),
        };
        var model = new Dictionary<string, (byte[] Value, long ExpiresAt)>();
        using var dir = new TempDirectory("model");
        var store = BitcaskStore.Open(dir.Path, options);
        try
        {
            for (var step = 0; step < ops; step++)
            {
                var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                var roll = random.Next(100);
                string context = $"seed {seed} step {step}";
                if (roll < 40)
                {
                    var key = RandomKey(random);
                    var value = RandomValue(random);
                    if (random.Next(4) == 0)
                    {
                        var ttl = TimeSpan.FromSeconds(random.Next(1, 120));
                        store.Put(Encoding.UTF8.GetBytes(key), value, ttl);
                        model[key] = (value, now + (long)ttl.TotalMilliseconds);
                    }
                    else
                    {
                        store.Put(Encoding.UTF8.GetBytes(key), value);
                        model[key] = (value, 0);
                    }
                }
                else if (roll < 55)
                {
                    var key = RandomKey(random);
                    var live = model.TryGetValue(key, out var entry) && (entry.ExpiresAt == 0 || entry.ExpiresAt > now);
                    Assert.True(live == store.Delete(key), $"{context}: Delete({key}) result");
                    model.Remove(key);
                }
                else if (roll < 65)
                {
                    var batch = new WriteBatch();
                    var staged = new List<(string Key, byte[]? Value, long ExpiresAt)>();
                    for (var i = random.Next(1, 6); i > 0; i--)
                    {
                        var key = RandomKey(random);
                        if (random.Next(3) == 0)
                        {
                            batch.Delete(Encoding.UTF8.GetBytes(key));
                            staged.Add((key, null, 0));
                        }
                        else if (random.Next(3) == 0)
                        {
                            var value = RandomValue(random, small: true);
                            var ttl = TimeSpan.FromSeconds(random.Next(1, 60));
                            batch.Put(Encoding.UTF8.GetBytes(key), value, ttl);
                            staged.Add((key, value, now + (long)ttl.TotalMilliseconds));
                        }
                        else
                        {
                            var value = RandomValue(random, small: true);
                            batch.Put(Encoding.UTF8.GetBytes(key), value);
                            staged.Add((key, value, 0));
                        }
                    }
                    store.Write(batch);
                    foreach (var (key, value, expiresAt) in staged)
                        if (value is null) model.Remove(key);
                        else model[key] = (value, expiresAt);
                }
                else if (roll < 85)
                {
                    var key = RandomKey(random);
                    var expected = Live(model, key, now);
                    var actual = store.Get(Encoding.UTF8.GetBytes(key));
                    Assert.True(expected is null ? actual is null : actual is not null && expected.AsSpan().SequenceEqual(actual), $"{context}: Get({key})");
                }
                else if (roll < 89)
                {
                    clock.Advance(TimeSpan.FromSeconds(random.Next(1, 40)));
                }
                else if (roll < 93)
                {
                    store.Dispose();
                    store = BitcaskStore.Open(dir.Path, options);
                    CheckAll(store, model, clock, context + " after reopen");
                }
                else if (roll < 96)
                {
                    store.Compact();
                    CheckAll(store, model, clock, context + " after compaction");
                }
                else
                {
                    Assert.Equal(model.Count(kv => kv.Value.ExpiresAt == 0 || kv.Value.ExpiresAt > now), store.Count);
                }
            }
            CheckAll(store, model, clock, $"seed {seed} at the end");
            store.Dispose();
            store = BitcaskStore.Open(dir.Path, options with { ReadOnly = true });
            CheckAll(store, model, clock, $"seed {seed} read-only reopen");
            Assert.Empty(store.GetStats().RecoveryFindings);
        }
        finally
        {
            store.Dispose();
        }
    }

    private static byte[]? Live(Dictionary<string, (byte[] Value, long ExpiresAt)> model, string key, long now) =>
        model.TryGetValue(key, out var e) && (e.ExpiresAt == 0 || e.ExpiresAt > now) ? e.Value : null;

    private static void CheckAll(BitcaskStore store, Dictionary<string, (byte[] Value, long ExpiresAt)> model, TimeProvider clock, string context)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var expectedKeys = model.Where(kv => kv.Value.ExpiresAt == 0 || kv.Value.ExpiresAt > now).Select(kv => kv.Key).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        var actualKeys = store.Keys().Select(k => Encoding.UTF8.GetString(k)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        Assert.True(expectedKeys.SequenceEqual(actualKeys), $"{context}: keys differ: expected [{string.Join(",", expectedKeys)}] got [{string.Join(",", actualKeys)}]");
        Assert.Equal(expectedKeys.Length, store.Count);
        foreach (var key in model.Keys)
        {
            var expected = Live(model, key, now);
            var actual = store.Get(Encoding.UTF8.GetBytes(key));
            Assert.True(expected is null ? actual is null : actual is not null && expected.AsSpan().SequenceEqual(actual), $"{context}: Get({key})");
        }
    }

    private static string RandomKey(Random random) => "k" + random.Next(40);

    private static byte[] RandomValue(Random random, bool small = false)
    {
        var kind = random.Next(10);
        if (!small && kind == 0) return Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("abcdefgh", random.Next(150, 600)))); // compressible, LZ4
        var value = new byte[random.Next(small ? 40 : 300)];
        random.NextBytes(value);
        return value;
    }
}
