using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Bitcask.Server.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bitcask.Server.Tests;

/// <summary>SCAN reads the key directory once per iteration and resumes from the cursor it handed out, instead of
/// reading every key on every call.</summary>
public sealed class ScanTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bitcask-scan-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly BitcaskStore _store;
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Connection _client;

    public ScanTests()
    {
        _store = BitcaskStore.Open(_directory, new BitcaskOptions { Durability = Durability.Buffered });
        _client = new Connection(_socket, new ServerState(_store, new BitcaskServerOptions(), NullLogger.Instance), 1);
    }

    [Fact]
    public void A_scan_iteration_reads_the_keys_once_and_each_call_resumes_from_the_cursor_it_handed_out()
    {
        for (var i = 0; i < 2000; i++) _store.Put(Encoding.ASCII.GetBytes($"key{i}"), "v"u8);
        var seen = new List<string>();
        var (cursor, keys) = Scan(0);
        seen.AddRange(keys);
        var snapshot = _client.ScanSnapshot;
        Assert.NotNull(snapshot);
        _store.Delete("key1999"u8); // deleted during the iteration: not returned (unless already seen)
        var calls = 1;
        while (cursor != 0)
        {
            Assert.Same(snapshot, _client.ScanSnapshot); // the keys read by the first call, not read again
            (cursor, keys) = Scan(cursor);
            seen.AddRange(keys);
            calls++;
        }
        Assert.Null(_client.ScanSnapshot); // dropped at the end of the iteration
        Assert.True(calls > 100, $"{calls} calls of COUNT 10 for 2,000 keys");
        Assert.Equal(seen.Count, seen.Distinct().Count());
        var expected = Enumerable.Range(0, 1999).Select(i => $"key{i}").ToHashSet();
        Assert.Subset(seen.ToHashSet(), expected);
        Assert.Superset(expected, seen.Where(k => k != "key1999").ToHashSet());

        (cursor, _) = Scan(0);
        var restarted = _client.ScanSnapshot;
        Assert.NotSame(snapshot, restarted); // a new iteration reads the keys again (and sees what changed)
        Assert.DoesNotContain(restarted!.Keys, k => Encoding.ASCII.GetString(k.Key) == "key1999");
        Scan(12345); // a cursor this connection did not hand out: read again from there
        Assert.NotSame(restarted, _client.ScanSnapshot);
    }

    private (long Cursor, List<string> Keys) Scan(long cursor)
    {
        var replies = new ArrayBufferWriter<byte>();
        _client.RunWithoutSocket(new ReadOnlySequence<byte>(RespConnection.Encode("SCAN", cursor.ToString(), "COUNT", "10")), general: true, replies);
        var lines = Encoding.ASCII.GetString(replies.WrittenSpan).Split("\r\n");
        Assert.Equal("*2", lines[0]);
        var next = long.Parse(lines[2]);
        var count = int.Parse(lines[3][1..]);
        var keys = Enumerable.Range(0, count).Select(i => lines[5 + 2 * i]).ToList();
        return (next, keys);
    }

    public void Dispose()
    {
        _socket.Dispose();
        _store.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
