using System.Buffers;

namespace Bitcask.Tests;

/// <summary>The hot paths allocate nothing per operation (counted on the calling thread, after warm-up; bench/ shows the
/// same with BenchmarkDotNet's memory diagnoser).</summary>
public class AllocationTests
{
    [Theory]
    [InlineData(Durability.Buffered)]
    [InlineData(Durability.Flushed)]
    public void Put_of_spans_TryGet_and_ContainsKey_allocate_nothing_per_operation(Durability durability)
    {
        using var dir = new TempDirectory();
        using var store = BitcaskStore.Open(dir.Path, new BitcaskOptions { Durability = durability, CompactionEnabled = false });
        var key = new byte[16];
        var value = new byte[100];
        var buffer = new ArrayBufferWriter<byte>(256);
        void Round()
        {
            for (var i = 0; i < 2000; i++)
            {
                BitConverter.TryWriteBytes(key, i % 500);
                store.Put(key, value);
                buffer.ResetWrittenCount();
                Assert.True(store.TryGet(key, buffer));
                BitConverter.TryWriteBytes(key, 100_000 + i);
                Assert.False(store.ContainsKey(key));
            }
        }
        for (var warm = 0; warm < 5; warm++) Round(); // tiered JIT, keydir sized for the 500 keys
        var before = GC.GetAllocatedBytesForCurrentThread();
        Round();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
