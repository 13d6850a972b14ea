using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Bitcask.Tests;

public class ConcurrencyTests
{
    [Theory]
    [InlineData(Durability.Buffered)]
    [InlineData(Durability.Flushed)]
    [InlineData(Durability.Synced)]
    public async Task Concurrent_writers_and_readers_see_only_written_values_and_all_writes_survive_reopen(Durability durability)
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { Durability = durability, MaxSegmentBytes = 64 * 1024, MaxValueBytes = 1024, CompactionCheckInterval = TimeSpan.FromMilliseconds(10) };
        const int writers = 8, perWriter = 400;
        var failures = new List<string>();
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            using var stop = new CancellationTokenSource();
            // Each value encodes its own key and version, so a reader can tell a torn or foreign value from a real one.
            var readers = Enumerable.Range(0, Environment.ProcessorCount).Select(r => Task.Run(() =>
            {
                var random = new Random(r);
                var buffer = new ArrayBufferWriter<byte>();
                while (!stop.IsCancellationRequested)
                {
                    var w = random.Next(writers);
                    var i = random.Next(perWriter);
                    buffer.ResetWrittenCount();
                    if (!store.TryGet(Key(w, i), buffer)) continue;
                    if (!IsValueOf(buffer.WrittenSpan, w, i))
                        lock (failures) failures.Add($"reader saw a wrong value for {w}/{i}");
                }
            })).ToArray();
            Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
            {
                for (var round = 0; round < 2; round++)
                    for (var i = 0; i < perWriter; i++) store.Put(Key(w, i), Value(w, i, round));
                for (var i = 0; i < perWriter; i += 10) store.Delete(Key(w, i));
            });
            stop.Cancel();
            await Task.WhenAll(readers);
            Assert.Empty(failures);
            Check(store);
        }
        using (var store = BitcaskStore.Open(dir.Path, options)) Check(store);

        void Check(BitcaskStore store)
        {
            Assert.Equal(writers * perWriter * 9 / 10, store.Count);
            for (var w = 0; w < writers; w++)
                for (var i = 0; i < perWriter; i++)
                {
                    var value = store.Get(Key(w, i));
                    if (i % 10 == 0) Assert.Null(value);
                    else Assert.Equal(Value(w, i, 1), value);
                }
        }
    }

    [Fact]
    public async Task Synced_async_writers_are_committed_in_groups()
    {
        using var dir = new TempDirectory();
        using (var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = Durability.Synced }))
        {
            var tasks = Enumerable.Range(0, 64).Select(i => store.PutAsync(Key(0, i), Value(0, i, 0)).AsTask()).ToArray();
            await Task.WhenAll(tasks);
            await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => store.Put(Key(1, i), Value(1, i, 0)))));
        }
        using (var store = BitcaskStore.Open(dir.Path))
        {
            for (var i = 0; i < 64; i++) Assert.Equal(Value(0, i, 0), store.Get(Key(0, i)));
            for (var i = 0; i < 16; i++) Assert.Equal(Value(1, i, 0), store.Get(Key(1, i)));
        }
    }

    [Fact]
    public async Task Gets_and_puts_continue_correctly_while_compactions_run()
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { MaxSegmentBytes = 16 * 1024, MaxValueBytes = 1024, CompactionEnabled = false };
        using var store = BitcaskStore.Open(dir.Path, options);
        for (var i = 0; i < 300; i++) store.Put(Key(0, i), Value(0, i, 0));
        var errors = new List<string>();
        using var stop = new CancellationTokenSource();
        var versions = new int[300];
        var writer = Task.Run(() =>
        {
            var random = new Random(1);
            while (!stop.IsCancellationRequested)
            {
                var i = random.Next(300);
                var v = versions[i] + 1;
                store.Put(Key(0, i), Value(0, i, v));
                Volatile.Write(ref versions[i], v);
            }
        });
        var reader = Task.Run(() =>
        {
            var random = new Random(2);
            while (!stop.IsCancellationRequested)
            {
                var i = random.Next(300);
                var atLeast = Volatile.Read(ref versions[i]);
                var value = store.Get(Key(0, i));
                if (value is null || !IsValueOf(value, 0, i) || BinaryPrimitives.ReadInt32LittleEndian(value.AsSpan(8)) < atLeast)
                    lock (errors) errors.Add($"key {i}: stale or wrong value");
            }
        });
        for (var c = 0; c < 10; c++) store.Compact();
        stop.Cancel();
        await Task.WhenAll(writer, reader);
        Assert.Empty(errors);
        for (var i = 0; i < 300; i++) Assert.Equal(Value(0, i, versions[i]), store.Get(Key(0, i)));
    }

    private static byte[] Key(int writer, int i) => Encoding.ASCII.GetBytes($"w{writer}:k{i}");

    private static byte[] Value(int writer, int i, int version)
    {
        var value = new byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(value, writer);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(4), i);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(8), version);
        for (var b = 12; b < value.Length; b++) value[b] = (byte)(writer * 31 + i * 7 + version + b);
        return value;
    }

    private static bool IsValueOf(ReadOnlySpan<byte> value, int writer, int i) =>
        value.Length == 64 && value.SequenceEqual(Value(writer, i, BinaryPrimitives.ReadInt32LittleEndian(value[8..])));
}
