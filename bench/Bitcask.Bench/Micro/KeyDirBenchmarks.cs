using BenchmarkDotNet.Attributes;
using Bitcask.Bench.Harness;

namespace Bitcask.Bench.Micro;

/// <summary>The in-memory keydir on its own: lookups and updates in a keydir of 1M 16-byte keys, and building one from empty.</summary>
public class KeyDirBenchmarks
{
    private const int Keys = 1_000_000;
    private const int Batch = 1024;
    private byte[] _keys = [];
    private byte[] _missing = [];
    private KeyDir _keyDir = null!;
    private int _cursor;

    [GlobalSetup]
    public void Setup()
    {
        _keys = new byte[Keys * KeySpace.KeyLength];
        _missing = new byte[Batch * KeySpace.KeyLength];
        for (var i = 0; i < Keys; i++) KeySpace.Key(i, _keys.AsSpan(i * KeySpace.KeyLength, KeySpace.KeyLength));
        for (var i = 0; i < Batch; i++) KeySpace.MissingKey(i, _missing.AsSpan(i * KeySpace.KeyLength, KeySpace.KeyLength));
        _keyDir = Build();
        // Visit keys in a scrambled order so that lookups are not cache-friendly sequential walks.
    }

    private KeyDir Build()
    {
        var keyDir = new KeyDir();
        for (var i = 0; i < Keys; i++)
            keyDir.Set(Key(i), new KeyLocation(1, (uint)i * 148, 148), 0, out _, out _);
        return keyDir;
    }

    private ReadOnlySpan<byte> Key(int i) => _keys.AsSpan(i * KeySpace.KeyLength, KeySpace.KeyLength);

    private int NextIndex() => _cursor = (int)((uint)(_cursor + 7_919_993) % Keys);

    [Benchmark(Description = "lookup (hit)", OperationsPerInvoke = Batch)]
    public int LookupHit()
    {
        var found = 0;
        for (var i = 0; i < Batch; i++)
            if (_keyDir.TryGet(Key(NextIndex()), out _, out _)) found++;
        return found;
    }

    [Benchmark(Description = "lookup (miss)", OperationsPerInvoke = Batch)]
    public int LookupMiss()
    {
        var found = 0;
        for (var i = 0; i < Batch; i++)
            if (_keyDir.TryGet(_missing.AsSpan(i * KeySpace.KeyLength, KeySpace.KeyLength), out _, out _)) found++;
        return found;
    }

    [Benchmark(Description = "update existing key", OperationsPerInvoke = Batch)]
    public int Update()
    {
        var replaced = 0;
        for (var i = 0; i < Batch; i++)
        {
            var k = NextIndex();
            if (_keyDir.Set(Key(k), new KeyLocation(2, (uint)k * 148, 148), 0, out _, out _)) replaced++;
        }
        return replaced;
    }

    [Benchmark(Description = "insert (1M keys into an empty keydir)", OperationsPerInvoke = Keys)]
    public long Insert() => Build().Count;
}
