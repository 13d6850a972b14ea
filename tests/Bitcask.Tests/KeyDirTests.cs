using CsCheck;
using Xunit;

namespace Bitcask.Tests;

/// <summary>The keydir's hash table against a Dictionary model: inserts, updates, removes (chain heads and middles),
/// compaction's conditional relocations and rehashes. Every key ever touched, and keys never touched, are looked up
/// after each step, through both the optimistic and the locked path, so a bucket filter that forgot a tag (a present
/// key reported absent) or a chain broken by a removal fails here.</summary>
public sealed class KeyDirTests
{
    private enum Op : byte { Set, Remove, Relocate, RemoveAt }

    [Fact]
    public void Random_sets_removes_and_relocations_agree_with_a_dictionary_for_present_and_absent_keys()
    {
        var step = Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 299], Gen.UInt[1, 1_000_000]);
        step.Array[1, 400].Sample(steps =>
        {
            var dir = new KeyDir();
            var model = new Dictionary<int, KeyLocation>();
            foreach (var (op, k, value) in steps)
            {
                var key = Key(k);
                switch (op)
                {
                    case Op.Set:
                        var loc = new KeyLocation(value % 7, value, 10);
                        Assert.Equal(model.ContainsKey(k), dir.Set(key, loc, value % 3 == 0 ? value : 0, out _, out _));
                        model[k] = loc;
                        break;
                    case Op.Remove:
                        Assert.Equal(model.Remove(k), dir.Remove(key, out _, out _));
                        break;
                    case Op.Relocate:
                        if (model.TryGetValue(k, out var at))
                        {
                            var moved = new KeyLocation(at.SegmentId + 100, at.Offset, at.Length);
                            Assert.True(dir.TryRelocate(key, at, moved));
                            model[k] = moved;
                        }
                        else Assert.False(dir.TryRelocate(key, new KeyLocation(1, 1, 1), new KeyLocation(2, 2, 2)));
                        break;
                    case Op.RemoveAt:
                        if (model.TryGetValue(k, out var here))
                        {
                            Assert.True(dir.TryRemoveAt(key, here));
                            model.Remove(k);
                        }
                        break;
                }
            }
            Assert.Equal(model.Count, dir.Count);
            for (var k = 0; k < 600; k++) // 300..599 were never written
            {
                var found = dir.TryGet(Key(k), out var location, out _);
                Assert.Equal(model.TryGetValue(k, out var expected), found);
                if (found) Assert.Equal(expected, location);
            }
        }, iter: 200);
    }

    [Fact]
    public void Growing_to_many_keys_and_removing_most_keeps_every_remaining_key_findable()
    {
        var dir = new KeyDir();
        const int n = 200_000;
        for (var k = 0; k < n; k++) dir.Set(Key(k), new KeyLocation(1, (uint)k, 1), 0, out _, out _);
        for (var k = 0; k < n; k++)
            if (k % 5 != 0) Assert.True(dir.Remove(Key(k), out _, out _));
        for (var k = 0; k < n + 50_000; k++)
        {
            var found = dir.TryGet(Key(k), out var location, out _);
            Assert.Equal(k < n && k % 5 == 0, found);
            if (found) Assert.Equal((uint)k, location.Offset);
        }
    }

    [Fact]
    public void Recovery_loads_keys_and_drops_tombstones_without_losing_chain_neighbours()
    {
        var dir = new KeyDir();
        dir.BeginRecovery(10_000);
        for (var k = 0; k < 10_000; k++) dir.Recover(Key(k), new KeyLocation(1, (uint)k, 1), (ulong)k + 1, 0, tombstone: false);
        for (var k = 0; k < 10_000; k += 3) dir.Recover(Key(k), new KeyLocation(2, (uint)k, 1), 100_000UL + (ulong)k, 0, tombstone: true);
        dir.EndRecovery();
        for (var k = 0; k < 12_000; k++)
            Assert.Equal(k < 10_000 && k % 3 != 0, dir.TryGet(Key(k), out _, out _));
    }

    private static byte[] Key(int k) => System.Text.Encoding.ASCII.GetBytes($"key-{k:D8}");
}
