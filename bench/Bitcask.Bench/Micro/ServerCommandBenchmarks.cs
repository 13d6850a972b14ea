using System.Buffers;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Bitcask.Bench.Harness;
using Bitcask.Server;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bitcask.Bench.Micro;

/// <summary>
/// The server's command path without the network: RESP requests (16 B keys among 100K, 100 B values, as
/// redis-benchmark sends them) parsed and run by a connection into its reply buffer, one at a time (P1) and 16 per
/// read (P16), through the hot path and through the general path (argument arrays, KeyspaceView, command table).
/// Store in Flushed mode. The Allocated column is the point: the hot path allocates nothing per command.
/// </summary>
public class ServerCommandBenchmarks
{
    private const int Keys = 100_000, Frames = 4096;
    private string _dir = "";
    private BitcaskStore _store = null!;
    private Connection _connection = null!;
    private Socket _socket = null!;
    private ReadOnlySequence<byte>[] _get1 = [], _set1 = [], _incr1 = [], _get16 = [], _set16 = [];
    private int _next;

    [Params(false, true)]
    public bool General { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"bitcask-micro-server-{Environment.ProcessId}-{General}");
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        _store = BitcaskStore.Open(_dir, new BitcaskOptions { Durability = Durability.Flushed });
        var space = new KeySpace(100);
        var key = new byte[KeySpace.KeyLength];
        for (var i = 0; i < Keys; i++)
        {
            KeySpace.Key(i, key);
            _store.Put(key, space.Value(i));
        }
        var state = new ServerState(_store, new BitcaskServerOptions(), NullLogger.Instance);
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _connection = new Connection(_socket, state, 1);
        var random = new FastRandom(11);
        byte[] Frame(int count, Func<int, string> command)
        {
            var text = new StringBuilder();
            for (var n = 0; n < count; n++) text.Append(command(n));
            return Encoding.Latin1.GetBytes(text.ToString());
        }
        string Key()
        {
            KeySpace.Key(random.Next(Keys), key);
            return Encoding.Latin1.GetString(key);
        }
        var value = new string('v', 100);
        string Get(int _) => $"*2\r\n$3\r\nGET\r\n$16\r\n{Key()}\r\n";
        string Set(int _) => $"*3\r\n$3\r\nSET\r\n$16\r\n{Key()}\r\n$100\r\n{value}\r\n";
        string Incr(int n) => $"*2\r\n$4\r\nINCR\r\n$9\r\ncounter{n % 10:D2}\r\n";
        ReadOnlySequence<byte>[] Many(int count, Func<int, string> command) =>
            [.. Enumerable.Range(0, Frames).Select(_ => new ReadOnlySequence<byte>(Frame(count, command)))];
        _get1 = Many(1, Get);
        _set1 = Many(1, Set);
        _incr1 = Many(1, Incr);
        _get16 = Many(16, Get);
        _set16 = Many(16, Set);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _socket.Dispose();
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private int Run(ReadOnlySequence<byte>[] frames) => _connection.RunWithoutSocket(frames[_next++ & (Frames - 1)], General);

    [Benchmark(Description = "GET P1")]
    public int GetP1() => Run(_get1);

    [Benchmark(Description = "SET P1")]
    public int SetP1() => Run(_set1);

    [Benchmark(Description = "INCR P1")]
    public int IncrP1() => Run(_incr1);

    [Benchmark(Description = "GET P16 (per command)", OperationsPerInvoke = 16)]
    public int GetP16() => Run(_get16);

    [Benchmark(Description = "SET P16 (per command)", OperationsPerInvoke = 16)]
    public int SetP16() => Run(_set16);
}
