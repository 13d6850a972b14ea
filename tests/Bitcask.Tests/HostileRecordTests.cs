using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using Bitcask.Format;

namespace Bitcask.Tests;

/// <summary>Records whose CRC is right but whose content cannot be decoded: a read throws <see cref="CorruptionException"/>,
/// never another exception type and never wrong bytes.</summary>
public class HostileRecordTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void A_crc_valid_lz4_value_shorter_than_its_length_prefix_makes_get_throw_corruption(int storedValueLength)
    {
        using var dir = new TempDirectory();
        var options = new BitcaskOptions { CompactionEnabled = false };
        var plain = "xyz"u8.ToArray()[..storedValueLength];
        using (var store = BitcaskStore.Open(dir.Path, options))
        {
            store.Put("k"u8, plain);
            store.Put("other"u8, "fine"u8);
        }
        // The segment holds the 64-byte header, then k's record. Replace that record by hand with one of the same length
        // (so the hint file still matches) that says "LZ4" while its value is too short to hold the 4-byte uncompressed length.
        var segmentPath = Directory.GetFiles(dir.Path, "*.seg").Single();
        var segment = File.ReadAllBytes(segmentPath);
        const int recordOffset = 64;
        var original = segment.AsSpan(recordOffset, 32 + 1 + storedValueLength + 16); // + the create-revision and previous-version trailers (format version 2)
        Assert.Equal((byte)'k', original[32]);
        var hostile = new byte[original.Length];
        hostile[4] = 1;                                                             // kind: put
        hostile[5] = (byte)(original[5] | 1);                                       // flags: LZ4 (and the trailer, as written)
        BinaryPrimitives.WriteUInt16LittleEndian(hostile.AsSpan(6), 1);             // key length
        original.Slice(8, 8).CopyTo(hostile.AsSpan(8));                             // sequence, as written
        BinaryPrimitives.WriteUInt32LittleEndian(hostile.AsSpan(24), (uint)storedValueLength); // stored value length < 4
        original.Slice(28, 4).CopyTo(hostile.AsSpan(28));                           // durable length, as written
        hostile[32] = (byte)'k';
        plain.CopyTo(hostile.AsSpan(33));
        original[^16..].CopyTo(hostile.AsSpan(hostile.Length - 16));                 // trailers, as written
        BinaryPrimitives.WriteUInt32LittleEndian(hostile, Crc32.HashToUInt32(hostile.AsSpan(4))); // CRC of [4, end)
        hostile.CopyTo(segment.AsSpan(recordOffset));
        File.WriteAllBytes(segmentPath, segment);

        foreach (var readOnly in new[] { false, true })
        {
            using var store = BitcaskStore.Open(dir.Path, options with { ReadOnly = readOnly });
            var error = Assert.Throws<CorruptionException>(() => store.Get("k"u8));
            Assert.Contains("length prefix", error.Message);
            Assert.Throws<CorruptionException>(() => store.TryGet("k"u8, new ArrayBufferWriter<byte>()));
            Assert.Equal("fine", store.GetString("other"));
        }
        // The codec reports it as undecodable instead of reading past the value.
        Assert.Equal(-1, RecordCodec.RawValueLength(hostile));
        Assert.False(RecordCodec.TryDecodeValue(hostile, new byte[4]));
    }
}
