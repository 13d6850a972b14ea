using System.Buffers;
using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using Bitcask.Bench.Harness;

namespace Bitcask.Bench.Micro;

/// <summary>
/// What the engine's metrics cost on the hot paths: Get, TryGet and Put (Buffered) on a store of 100K keys, with no
/// listener (the engine must take no timestamp and allocate nothing) and with a MeterListener enabled for every
/// "Bitcask" instrument (no-op callbacks: the engine's own cost of measuring). Run the same class on the build before
/// the metrics for the before/after comparison (bench/README.md, "Metrics overhead").
/// </summary>
public class TelemetryBenchmarks
{
    private const int Keys = 100_000;
    private string _dir = "";
    private BitcaskStore _store = null!;
    private MeterListener? _listener;
    private readonly KeySpace _space = new(100);
    private readonly byte[] _key = new byte[KeySpace.KeyLength];
    private readonly ArrayBufferWriter<byte> _buffer = new(256);
    private FastRandom _rng = new(13);

    /// <summary>"none": nobody listens; "meter": a listener on every Bitcask instrument.</summary>
    [Params("none", "meter")]
    public string Listener { get; set; } = "none";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"bitcask-micro-otel-{Environment.ProcessId}-{Listener}");
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        _store = BitcaskStore.Open(_dir, new BitcaskOptions { Durability = Durability.Buffered, CompactionEnabled = false });
        for (var i = 0; i < Keys; i++)
        {
            KeySpace.Key(i, _key);
            _store.Put(_key, _space.Value(i));
        }
        _store.Sync();
        if (Listener == "meter")
        {
            _listener = new MeterListener
            {
                InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == "Bitcask") l.EnableMeasurementEvents(instrument); },
            };
            _listener.SetMeasurementEventCallback<double>(static (_, _, _, _) => { });
            _listener.SetMeasurementEventCallback<long>(static (_, _, _, _) => { });
            _listener.SetMeasurementEventCallback<int>(static (_, _, _, _) => { });
            _listener.Start();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener?.Dispose();
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Description = "Get (hit, new byte[])")]
    public byte[]? Get()
    {
        KeySpace.Key(_rng.Next(Keys), _key);
        return _store.Get(_key);
    }

    [Benchmark(Description = "TryGet (hit, reused buffer)")]
    public bool TryGet()
    {
        KeySpace.Key(_rng.Next(Keys), _key);
        _buffer.ResetWrittenCount();
        return _store.TryGet(_key, _buffer);
    }

    [Benchmark(Description = "Put (Buffered, 16 B key, 100 B value)")]
    public void Put()
    {
        var i = _rng.Next(Keys);
        KeySpace.Key(i, _key);
        _store.Put(_key, _space.Value(i, 1));
    }
}
