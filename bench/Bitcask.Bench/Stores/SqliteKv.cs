using System.Buffers;
using Microsoft.Data.Sqlite;

namespace Bitcask.Bench.Stores;

/// <summary>
/// SQLite through Microsoft.Data.Sqlite in WAL mode, a WITHOUT ROWID table, one autocommit statement per put, one
/// connection with prepared statements per thread. Variants: normal (synchronous=NORMAL: in WAL mode commits are not
/// fsynced, the setting comparable to bitcask Flushed), full (synchronous=FULL, SQLite's default: fsync of the WAL per commit).
/// </summary>
public sealed class SqliteKv : IKvStore
{
    private readonly string _connectionString;
    private readonly string _synchronous;
    private readonly SqliteConnection _keepAlive;

    public static readonly string[] Variants = ["normal", "full"];

    private SqliteKv(string connectionString, string synchronous, string settings)
    {
        _connectionString = connectionString;
        _synchronous = synchronous;
        Settings = settings;
        _keepAlive = Connect();
        using var create = _keepAlive.CreateCommand();
        create.CommandText = "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;";
        create.ExecuteNonQuery();
    }

    public static SqliteKv Open(string directory, string variant)
    {
        var (synchronous, settings) = variant switch
        {
            "normal" => ("NORMAL", "WAL, synchronous=NORMAL (no fsync per commit)"),
            "full" => ("FULL", "WAL, synchronous=FULL (default: fsync per commit)"),
            _ => throw new ArgumentException($"Unknown sqlite variant '{variant}'; expected one of {string.Join(", ", Variants)}.", nameof(variant)),
        };
        Directory.CreateDirectory(directory);
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(directory, "kv.sqlite"),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 60,
        };
        return new SqliteKv(builder.ToString(), synchronous, settings);
    }

    private SqliteConnection Connect()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = $"PRAGMA journal_mode=WAL; PRAGMA synchronous={_synchronous}; PRAGMA busy_timeout=60000;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    public string Name => "sqlite";
    public string Settings { get; }

    public IKvSession NewSession() => new Session(Connect());

    public void Sync()
    {
        using var checkpoint = _keepAlive.CreateCommand();
        checkpoint.CommandText = "PRAGMA wal_checkpoint(FULL);";
        checkpoint.ExecuteNonQuery();
    }

    public bool TryCompact(out string note)
    {
        note = "SQLite reuses freed pages itself (VACUUM not run)";
        return false;
    }

    public void Dispose() => _keepAlive.Dispose();

    private sealed class Session : IKvSession
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _put;
        private readonly SqliteParameter _putKey, _putValue;
        private readonly SqliteCommand _get;
        private readonly SqliteParameter _getKey;
        private byte[] _key = [];

        public Session(SqliteConnection connection)
        {
            _connection = connection;
            _put = connection.CreateCommand();
            _put.CommandText = "INSERT OR REPLACE INTO kv (k, v) VALUES ($k, $v);";
            _putKey = _put.Parameters.Add("$k", SqliteType.Blob);
            _putValue = _put.Parameters.Add("$v", SqliteType.Blob);
            _put.Prepare();
            _get = connection.CreateCommand();
            _get.CommandText = "SELECT v FROM kv WHERE k = $k;";
            _getKey = _get.Parameters.Add("$k", SqliteType.Blob);
            _get.Prepare();
        }

        private byte[] KeyBytes(ReadOnlySpan<byte> key)
        {
            if (_key.Length != key.Length) _key = new byte[key.Length];
            key.CopyTo(_key);
            return _key;
        }

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            _putKey.Value = KeyBytes(key);
            _putValue.Value = value.ToArray(); // the ADO.NET API takes arrays
            _put.ExecuteNonQuery();
        }

        public bool TryGet(ReadOnlySpan<byte> key, ArrayBufferWriter<byte> value)
        {
            _getKey.Value = KeyBytes(key);
            using var reader = _get.ExecuteReader();
            if (!reader.Read()) return false;
            var length = (int)reader.GetBytes(0, 0, null, 0, 0);
            var span = value.GetSpan(length);
            var scratch = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                var read = (int)reader.GetBytes(0, 0, scratch, 0, length);
                scratch.AsSpan(0, read).CopyTo(span);
                value.Advance(read);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
            return true;
        }

        public void Dispose()
        {
            _put.Dispose();
            _get.Dispose();
            _connection.Dispose();
        }
    }
}
