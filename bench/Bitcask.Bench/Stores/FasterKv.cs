using System.Buffers;
using FASTER.core;

namespace Bitcask.Bench.Stores;

/// <summary>
/// FASTER KV (Microsoft.FASTER.Core) with SpanByte keys and values, default settings on a local log device, one
/// client session per thread. FASTER has no per-write fsync; durability comes from checkpoints. Variants:
/// memory (default: writes go to the in-memory hybrid log; a fold-over checkpoint is taken at close so that reopen
/// can recover), checkpoint (a put is acknowledged only after a fold-over hybrid-log checkpoint that covers it;
/// concurrent writers share one checkpoint, the way group commit shares one fsync).
/// </summary>
public sealed unsafe class FasterKv : IKvStore
{
    private readonly FasterKVSettings<SpanByte, SpanByte> _settings;
    private readonly FasterKV<SpanByte, SpanByte> _kv;
    private readonly bool _durable;
    private readonly object _checkpointGate = new();
    private long _issued;
    private long _durableUpTo;

    public static readonly string[] Variants = ["memory", "checkpoint"];

    private FasterKv(FasterKVSettings<SpanByte, SpanByte> settings, bool durable, string settingsText)
    {
        _settings = settings;
        _kv = new FasterKV<SpanByte, SpanByte>(settings);
        _durable = durable;
        Settings = settingsText;
    }

    public static FasterKv Open(string directory, string variant)
    {
        var (durable, text) = variant switch
        {
            "memory" => (false, "default: in-memory hybrid log, no fsync (fold-over checkpoint at close)"),
            "checkpoint" => (true, "put acknowledged after a fold-over checkpoint covers it (shared by concurrent writers)"),
            _ => throw new ArgumentException($"Unknown faster variant '{variant}'; expected one of {string.Join(", ", Variants)}.", nameof(variant)),
        };
        Directory.CreateDirectory(directory);
        var settings = new FasterKVSettings<SpanByte, SpanByte>(directory, deleteDirOnDispose: false)
        {
            TryRecoverLatest = true,
            RemoveOutdatedCheckpoints = true,
        };
        try
        {
            return new FasterKv(settings, durable, text);
        }
        catch
        {
            settings.Dispose();
            throw;
        }
    }

    public string Name => "faster";
    public string Settings { get; }

    public IKvSession NewSession() => new Session(this);

    public void Sync() => Checkpoint();

    private void Checkpoint()
    {
        var (success, _) = _kv.TakeHybridLogCheckpointAsync(CheckpointType.FoldOver).AsTask().GetAwaiter().GetResult();
        if (!success) throw new InvalidOperationException("FASTER refused to start a checkpoint.");
    }

    private void AwaitDurable(long ticket)
    {
        lock (_checkpointGate)
        {
            if (Volatile.Read(ref _durableUpTo) >= ticket) return;
            var target = Volatile.Read(ref _issued);
            Checkpoint();
            Volatile.Write(ref _durableUpTo, target);
        }
    }

    public bool TryCompact(out string note)
    {
        note = "FASTER log compaction not run (its in-memory log is the default mode measured)";
        return false;
    }

    public void Dispose()
    {
        try
        {
            var (success, _) = _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver).AsTask().GetAwaiter().GetResult();
            if (!success) throw new InvalidOperationException("FASTER refused to start the closing checkpoint.");
        }
        finally
        {
            _kv.Dispose();
            _settings.Dispose();
        }
    }

    private sealed class Session : IKvSession
    {
        private readonly FasterKv _owner;
        private readonly ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>> _session;
        private byte[] _buffer = GC.AllocateUninitializedArray<byte>(8192, pinned: true);

        public Session(FasterKv owner)
        {
            _owner = owner;
            _session = owner._kv.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>();
        }

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            fixed (byte* k = key)
            fixed (byte* v = value)
            {
                var keySpan = SpanByte.FromPointer(k, key.Length);
                var valueSpan = SpanByte.FromPointer(v, value.Length);
                var status = _session.Upsert(ref keySpan, ref valueSpan);
                if (status.IsPending) _session.CompletePending(wait: true);
            }
            if (_owner._durable) _owner.AwaitDurable(Interlocked.Increment(ref _owner._issued));
        }

        public bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value)
        {
            fixed (byte* k = key)
            fixed (byte* b = _buffer)
            {
                var keySpan = SpanByte.FromPointer(k, key.Length);
                var output = new SpanByteAndMemory(SpanByte.FromPointer(b, _buffer.Length));
                var status = _session.Read(ref keySpan, ref output);
                if (status.IsPending)
                {
                    _session.CompletePendingWithOutputs(out var completed, wait: true);
                    using (completed)
                    {
                        if (!completed.Next()) throw new InvalidOperationException("FASTER completed a pending read without an output.");
                        status = completed.Current.Status;
                        output = completed.Current.Output;
                    }
                }
                if (!status.Found) return false;
                if (output.IsSpanByte)
                {
                    value.Write(output.SpanByte.AsReadOnlySpan());
                }
                else
                {
                    using var memory = output.Memory;
                    value.Write(memory.Memory.Span[..output.Length]);
                    if (output.Length > _buffer.Length) _buffer = GC.AllocateUninitializedArray<byte>(output.Length, pinned: true);
                }
                return true;
            }
        }

        public void Dispose() => _session.Dispose();
    }
}
