using System.Buffers;
using Bitcask.Bench.Harness;
using Bitcask.Bench.Stores;

namespace Bitcask.BenchTests;

/// <summary>Every adapter, at every setting the harness uses, with 200 keys: fill, read back, miss, reopen, read back.</summary>
public class AdapterSmokeTests
{
    private const int Keys = 200;

    public static TheoryData<string, string> Configs()
    {
        var data = new TheoryData<string, string>();
        foreach (var store in StoreCatalog.Names.Where(n => n != "lmdb"))
            foreach (var config in StoreCatalog.ConfigsFor(store))
                data.Add(config.Store, config.Variant);
        return data;
    }

    public static TheoryData<string> LmdbVariants() => new(LmdbKv.Variants);

    [Theory]
    [MemberData(nameof(Configs))]
    public void Adapter_stores_reads_back_misses_and_survives_reopen(string store, string variant) =>
        FillReadMissReopen(new StoreConfig(store, variant, StoreRole.Throughput));

    [LmdbTheory]
    [MemberData(nameof(LmdbVariants))]
    public void Lmdb_adapter_stores_reads_back_misses_and_survives_reopen(string variant) =>
        FillReadMissReopen(new StoreConfig("lmdb", variant, StoreRole.Throughput));

    private static void FillReadMissReopen(StoreConfig config)
    {
        using var dir = new TempDir();
        var space = new KeySpace(100);
        var key = new byte[KeySpace.KeyLength];
        var buffer = new ArrayBufferWriter<byte>();

        using (var store = StoreCatalog.Open(config, dir.Path))
        {
            Assert.False(string.IsNullOrWhiteSpace(store.Settings));
            using var session = store.NewSession();
            for (var i = 0; i < Keys; i++)
            {
                KeySpace.Key(i, key);
                session.Put(key, space.Value(i));
            }
            AssertAllPresent(session, space, buffer);
            for (var i = 0; i < Keys; i++)
            {
                KeySpace.MissingKey(i, key);
                buffer.ResetWrittenCount();
                Assert.False(session.TryGet(key, buffer), $"{config}: absent key {i} was found");
                Assert.Equal(0, buffer.WrittenCount);
            }
            store.Sync();
        }
        Assert.True(StoreCatalog.DiskBytes(dir.Path) > 0, $"{config}: nothing on disk after close");

        using (var reopened = StoreCatalog.Open(config, dir.Path))
        using (var session = reopened.NewSession())
        {
            AssertAllPresent(session, space, buffer);
        }

        void AssertAllPresent(IKvSession session, KeySpace space, ArrayBufferWriter<byte> buffer)
        {
            for (var i = 0; i < Keys; i++)
            {
                KeySpace.Key(i, key);
                buffer.ResetWrittenCount();
                Assert.True(session.TryGet(key, buffer), $"{config}: key {i} missing");
                Assert.True(buffer.WrittenSpan.SequenceEqual(space.Value(i)), $"{config}: key {i} has the wrong value");
            }
        }
    }

    [Fact]
    public void Sessions_on_two_threads_see_each_others_writes()
    {
        using var dir = new TempDir();
        using var store = StoreCatalog.Open(new StoreConfig("faster", "memory", StoreRole.Throughput), dir.Path);
        var space = new KeySpace(64);
        var writer = new Thread(() =>
        {
            using var session = store.NewSession();
            var key = new byte[KeySpace.KeyLength];
            for (var i = 0; i < Keys; i++) { KeySpace.Key(i, key); session.Put(key, space.Value(i)); }
        });
        writer.Start();
        writer.Join();
        using var reader = store.NewSession();
        var k = new byte[KeySpace.KeyLength];
        var buffer = new ArrayBufferWriter<byte>();
        KeySpace.Key(Keys - 1, k);
        Assert.True(reader.TryGet(k, buffer));
        Assert.True(buffer.WrittenSpan.SequenceEqual(space.Value(Keys - 1)));
    }

    [Fact]
    public void Unknown_store_and_variant_are_rejected_with_the_known_names()
    {
        using var dir = new TempDir();
        var store = Assert.Throws<ArgumentException>(() => StoreCatalog.ParseStores("bitcask,leveldb"));
        Assert.Contains("leveldb", store.Message);
        Assert.Contains("rocksdb", store.Message);
        var variant = Assert.Throws<ArgumentException>(() => StoreCatalog.Open(new StoreConfig("rocksdb", "fast", StoreRole.Throughput), dir.Path));
        Assert.Contains("wal", variant.Message);
    }
}
