using BenchmarkDotNet.Attributes;
using Bitcask.Format;

namespace Bitcask.Bench.Micro;

/// <summary>Encoding a put record (copy, header, sequence and CRC-32) and checking + decoding one (header limits, CRC, value copy).</summary>
public class RecordCodecBenchmarks
{
    private byte[] _key = [];
    private byte[] _value = [];
    private byte[] _record = [];
    private byte[] _decoded = [];
    private int _length;
    private readonly RecordLimits _limits = new(1024, 16 << 20, 256L << 20);

    [Params(100, 4096)]
    public int ValueSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _key = new byte[16];
        _value = new byte[ValueSize];
        rng.NextBytes(_key);
        rng.NextBytes(_value);
        _record = new byte[RecordCodec.MaxEncodedSize(_key.Length, _value.Length, 0)];
        _length = RecordCodec.Encode(_record, RecordKind.Put, _key, _value, 0, compressionThreshold: 0);
        RecordCodec.Seal(_record.AsSpan(0, _length), 42);
        _decoded = new byte[ValueSize];
    }

    [Benchmark(Description = "encode + seal (CRC)")]
    public int EncodeAndSeal()
    {
        var length = RecordCodec.Encode(_record, RecordKind.Put, _key, _value, 0, compressionThreshold: 0);
        RecordCodec.Seal(_record.AsSpan(0, length), 42);
        return length;
    }

    [Benchmark(Description = "check header + CRC + decode value")]
    public bool CheckAndDecode()
    {
        var record = _record.AsSpan(0, _length);
        var check = RecordCodec.CheckHeader(record, record.Length, _limits, nested: true);
        return check.IsValid && RecordCodec.CheckBody(record, _limits) is null && RecordCodec.TryDecodeValue(record, _decoded);
    }
}
