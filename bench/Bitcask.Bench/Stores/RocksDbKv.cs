using System.Buffers;
using RocksDbSharp;

namespace Bitcask.Bench.Stores;

/// <summary>RocksDB through the RocksDB package, default options. Variants: wal (default, WAL write without fsync), sync (WriteOptions.sync = true).</summary>
public sealed class RocksDbKv : IKvStore
{
    private readonly RocksDb _db;
    private readonly RocksDbSharp.WriteOptions _write;

    public static readonly string[] Variants = ["wal", "sync"];

    private RocksDbKv(RocksDb db, RocksDbSharp.WriteOptions write, string settings)
    {
        _db = db;
        _write = write;
        Settings = settings;
    }

    public static RocksDbKv Open(string directory, string variant)
    {
        var (sync, settings) = variant switch
        {
            "wal" => (false, "default: WAL on, sync=false (write syscall per put, no fsync)"),
            "sync" => (true, "WAL on, sync=true (fsync per write group)"),
            _ => throw new ArgumentException($"Unknown rocksdb variant '{variant}'; expected one of {string.Join(", ", Variants)}.", nameof(variant)),
        };
        Directory.CreateDirectory(directory);
        var options = new DbOptions().SetCreateIfMissing(true);
        var db = RocksDb.Open(options, directory);
        return new RocksDbKv(db, new RocksDbSharp.WriteOptions().SetSync(sync), settings);
    }

    public string Name => "rocksdb";
    public string Settings { get; }

    public IKvSession NewSession() => new Session(this);

    public void Sync() => _db.Flush(new FlushOptions().SetWaitForFlush(true));

    public bool TryCompact(out string note)
    {
        _db.CompactRange((byte[]?)null, (byte[]?)null);
        note = "RocksDb.CompactRange over all keys";
        return true;
    }

    public void Dispose() => _db.Dispose();

    private sealed class Session(RocksDbKv owner) : IKvSession
    {
        private byte[] _key = new byte[64];
        private byte[] _buffer = new byte[8192];

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => owner._db.Put(key, value, null, owner._write);

        public bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value)
        {
            if (key.Length > _key.Length) _key = new byte[key.Length];
            key.CopyTo(_key);
            while (true)
            {
                // Get into a caller buffer: returns the value length (-1 when absent), copying at most the buffer's length.
                var length = owner._db.Get(_key, key.Length, _buffer, 0, _buffer.Length, null, null);
                if (length < 0) return false;
                if (length <= _buffer.Length)
                {
                    value.Write(_buffer.AsSpan(0, (int)length));
                    return true;
                }
                _buffer = new byte[length];
            }
        }

        public void Dispose() { }
    }
}
