using System.Buffers;
using Microsoft.Extensions.Time.Testing;

namespace Bitcask.Tests;

/// <summary>Expiry edge cases. A record stores its expiry as Unix milliseconds with 0 meaning "never", so an expiry that
/// lands exactly on 1970-01-01T00:00:00Z is stored 1 ms early (-1): early, never late, and never "never".</summary>
public class ExpiryTests
{
    public enum WriteWay { PutWithTtl, PutWithExpiry, BatchWithTtl, BatchWithExpiry }

    [Theory]
    [InlineData(WriteWay.PutWithTtl)]
    [InlineData(WriteWay.PutWithExpiry)]
    [InlineData(WriteWay.BatchWithTtl)]
    [InlineData(WriteWay.BatchWithExpiry)]
    public void A_ttl_whose_expiry_lands_on_unix_zero_still_expires(WriteWay way)
    {
        using var dir = new TempDirectory();
        var clock = new FakeTimeProvider(new DateTimeOffset(1969, 12, 31, 23, 59, 59, TimeSpan.Zero));
        var options = new BitcaskOptions { TimeProvider = clock, CompactionEnabled = false };
        var second = TimeSpan.FromSeconds(1);
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            switch (way)
            {
                case WriteWay.PutWithTtl: store.Put("k"u8, "v"u8, second); break;
                case WriteWay.PutWithExpiry: store.Put("k"u8, "v"u8, DateTimeOffset.UnixEpoch); break;
                case WriteWay.BatchWithTtl: store.Write(new WriteBatch().Put("k"u8, "v"u8, second)); break;
                case WriteWay.BatchWithExpiry: store.Write(new WriteBatch().Put("k"u8, "v"u8, DateTimeOffset.UnixEpoch)); break;
            }
            Assert.True(store.TryGet("k"u8, new ArrayBufferWriter<byte>(), out var expiresAt));
            Assert.Equal(DateTimeOffset.UnixEpoch.AddMilliseconds(-1), expiresAt); // 1 ms early, not "never"

            clock.Advance(second);
            Assert.Null(store.Get("k"u8));
            Assert.False(store.ContainsKey("k"u8));
            Assert.Equal(0, store.Count);
        }
        using (var reopened = BitcaskStore.Open(dir.Path, options))
        {
            Assert.Null(reopened.Get("k"u8));
            Assert.Equal(0, reopened.Count);
        }
    }
}
