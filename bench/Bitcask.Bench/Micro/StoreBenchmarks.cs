using System.Buffers;
using BenchmarkDotNet.Attributes;
using Bitcask.Bench.Harness;

namespace Bitcask.Bench.Micro;

/// <summary>Put of spans (one key overwritten at random among 100K) and a 100-put WriteBatch, per durability level.</summary>
public class StorePutBenchmarks
{
    private const int Keys = 100_000;
    private string _dir = "";
    private BitcaskStore _store = null!;
    private readonly KeySpace _space = new(100);
    private readonly byte[] _key = new byte[KeySpace.KeyLength];
    private readonly WriteBatch _batch = new();
    private FastRandom _rng = new(7);

    [Params(Durability.Buffered, Durability.Flushed, Durability.Synced)]
    public Durability Durability { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"bitcask-micro-put-{Environment.ProcessId}-{Durability}");
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        _store = BitcaskStore.Open(_dir, new BitcaskOptions { Durability = Durability });
        for (var i = 0; i < Keys; i++)
        {
            KeySpace.Key(i, _key);
            _store.Put(_key, _space.Value(i));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Description = "Put(span, span), 16 B key, 100 B value")]
    public void Put()
    {
        var i = _rng.Next(Keys);
        KeySpace.Key(i, _key);
        _store.Put(_key, _space.Value(i, 1));
    }

    [Benchmark(Description = "Write(batch of 100 puts)", OperationsPerInvoke = 100)]
    public void WriteBatch100()
    {
        _batch.Clear();
        for (var n = 0; n < 100; n++)
        {
            var i = _rng.Next(Keys);
            KeySpace.Key(i, _key);
            _batch.Put(_key, _space.Value(i, 2));
        }
        _store.Write(_batch);
    }
}

/// <summary>Reads from a store of 100K keys: Get (allocates the value array), TryGet into a reused buffer, misses.</summary>
public class StoreReadBenchmarks
{
    private const int Keys = 100_000;
    private string _dir = "";
    private BitcaskStore _store = null!;
    private readonly KeySpace _space = new(100);
    private readonly byte[] _key = new byte[KeySpace.KeyLength];
    private readonly ArrayBufferWriter<byte> _buffer = new(256);
    private FastRandom _rng = new(11);

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"bitcask-micro-read-{Environment.ProcessId}");
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        _store = BitcaskStore.Open(_dir, new BitcaskOptions { Durability = Durability.Buffered });
        for (var i = 0; i < Keys; i++)
        {
            KeySpace.Key(i, _key);
            _store.Put(_key, _space.Value(i));
        }
        _store.Sync();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Description = "Get (hit, returns a new byte[])")]
    public byte[]? GetHit()
    {
        KeySpace.Key(_rng.Next(Keys), _key);
        return _store.Get(_key);
    }

    [Benchmark(Description = "Get (miss)")]
    public byte[]? GetMiss()
    {
        KeySpace.MissingKey(_rng.Next(Keys), _key);
        return _store.Get(_key);
    }

    [Benchmark(Description = "TryGet (hit) into a reused ArrayBufferWriter")]
    public bool TryGetHit()
    {
        KeySpace.Key(_rng.Next(Keys), _key);
        _buffer.ResetWrittenCount();
        return _store.TryGet(_key, _buffer);
    }

    [Benchmark(Description = "TryGet (miss)")]
    public bool TryGetMiss()
    {
        KeySpace.MissingKey(_rng.Next(Keys), _key);
        _buffer.ResetWrittenCount();
        return _store.TryGet(_key, _buffer);
    }
}
