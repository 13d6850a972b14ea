using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Bitcask.Testing.Linearizability;

namespace Bitcask.Cluster.Tests.Infrastructure;

/// <summary>
/// A recorded client history over RESP: <c>clients</c> threads, each with its own connection to one of the given RESP
/// ports (moving to the next port when a connection fails), run GET (35 %), SET (15 %), compare-and-set (25 %: a Lua
/// script comparing with the value this client last read of the key, absent when it read none), INCR by 1 (20 %) and
/// DEL (5 %) on <c>keys</c> keys, recording invocation and response times. An error reply, a timeout or a dropped
/// connection on a write records the write with an unknown outcome (possibly applied); such a read is dropped (it had
/// no effect). About one operation in ten is also a SET of a journal key of its own, whose acknowledgements
/// <see cref="Journal"/> keeps, to check afterwards that no acknowledged write is lost. Start, then Stop.
/// Thread-safe: the history and journal are per client until <see cref="Stop"/>; Dispose stops the clients.
/// </summary>
internal sealed class RegisterWorkload(IReadOnlyList<int> ports, int clients, int keys, string prefix, int seed, TimeSpan? timeout = null) : IDisposable
{
    /// <summary>Compare-and-set: ARGV[1] is the expected value ("" = absent), ARGV[2] the new one; returns 1 if stored.</summary>
    public const string CasScript = """
        local current = redis.call('GET', KEYS[1])
        if (ARGV[1] == '' and current == false) or current == ARGV[1] then
          redis.call('SET', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """;

    private readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(10);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<RegisterOp>[] _ops = [.. Enumerable.Range(0, clients).Select(_ => new List<RegisterOp>())];
    private readonly ConcurrentDictionary<string, string> _journal = new();
    private readonly ConcurrentDictionary<string, int> _errors = new();
    private Thread[] _threads = [];
    private readonly Exception?[] _failures = new Exception?[clients];

    public string KeyName(int key) => $"{prefix}reg:{key}";

    /// <summary>Journal keys whose SET was acknowledged, with their values.</summary>
    public IReadOnlyDictionary<string, string> Journal => _journal;

    /// <summary>Error replies and connection failures seen, by their first word.</summary>
    public IReadOnlyDictionary<string, int> Errors => _errors;

    public void Start()
    {
        _threads = [.. Enumerable.Range(0, clients).Select(c => new Thread(() =>
        {
            try { Run(c); }
            catch (Exception e) { _failures[c] = e; }
        }) { IsBackground = true, Name = $"client {c}" })];
        foreach (var t in _threads) t.Start();
    }

    /// <summary>Stops the clients (each finishes its operation in flight) and returns the history.</summary>
    public List<RegisterOp> Stop()
    {
        _stop.Cancel();
        foreach (var t in _threads)
            if (!t.Join(_timeout * 3)) throw new TimeoutException($"{t.Name} did not stop");
        if (_failures.FirstOrDefault(f => f is not null) is { } failure) throw new InvalidOperationException("a client failed", failure);
        return [.. _ops.SelectMany(o => o)];
    }

    /// <summary>Reads every key once through <paramref name="port"/> (a linearizable GET, after the workload) and
    /// appends the reads to <paramref name="history"/> as client <paramref name="client"/>.</summary>
    public void AppendFinalReads(List<RegisterOp> history, int port, int client)
    {
        using var connection = RespConnection.Open(port, _timeout);
        for (var key = 0; key < keys; key++)
        {
            var invoke = Stopwatch.GetTimestamp();
            var reply = connection.Call("GET", KeyName(key));
            var response = Stopwatch.GetTimestamp();
            if (reply is RespError error) throw new InvalidOperationException($"final GET {KeyName(key)} on port {port}: -{error.Message}");
            history.Add(RegisterOp.Get(client, key, invoke, response, reply is string s ? long.Parse(s, CultureInfo.InvariantCulture) : null));
        }
    }

    private void Run(int client)
    {
        var random = new Random(seed * 31 + client);
        var ops = _ops[client];
        var lastRead = new long?[keys];
        var node = client % ports.Count;
        RespConnection? connection = null;
        try
        {
            for (long sequence = 1; !_stop.IsCancellationRequested; sequence++)
            {
                if (connection is null)
                {
                    try
                    {
                        connection = RespConnection.Open(ports[node], _timeout);
                    }
                    catch (Exception e) when (e is IOException or SocketException)
                    {
                        node = (node + 1) % ports.Count;
                        Thread.Sleep(20);
                        continue;
                    }
                }
                var key = random.Next(keys);
                var name = KeyName(key);
                var value = (client + 1) * 1_000_000_000_000L + sequence * 1_000_000L; // unique per write
                var text = value.ToString(CultureInfo.InvariantCulture);
                var roll = random.Next(100);
                RegisterOp op;
                object[] command;
                if (roll < 35)
                {
                    command = ["GET", name];
                    op = RegisterOp.Get(client, key, 0, 0, null);
                }
                else if (roll < 50)
                {
                    command = ["SET", name, text];
                    op = RegisterOp.Set(client, key, 0, 0, value);
                }
                else if (roll < 75)
                {
                    var expected = lastRead[key];
                    command = ["EVAL", CasScript, "1", name, expected?.ToString(CultureInfo.InvariantCulture) ?? "", text];
                    op = RegisterOp.CompareValue(client, key, 0, 0, expected, value, ok: false);
                }
                else if (roll < 95)
                {
                    command = ["INCR", name];
                    op = RegisterOp.Increment(client, key, 0, 0, 1, 0);
                }
                else
                {
                    command = ["DEL", name];
                    op = RegisterOp.Delete(client, key, 0, 0, existed: false);
                }

                var invoke = Stopwatch.GetTimestamp();
                object? reply;
                try
                {
                    reply = connection.Call(command);
                }
                catch (Exception e) when (e is IOException or SocketException or EndOfStreamException or ObjectDisposedException)
                {
                    Count("connection: " + e.GetType().Name);
                    if (op.Kind != RegisterOpKind.Get) ops.Add((op with { Invoke = invoke }).AsUnknown());
                    connection.Dispose();
                    connection = null;
                    node = (node + 1) % ports.Count;
                    Thread.Sleep(random.Next(10, 50));
                    continue;
                }
                var response = Stopwatch.GetTimestamp();
                if (reply is RespError error)
                {
                    Count(error.Message.Split(' ')[0]);
                    if (op.Kind != RegisterOpKind.Get) ops.Add((op with { Invoke = invoke }).AsUnknown());
                    Thread.Sleep(random.Next(20, 80));
                    continue;
                }
                op = op with { Invoke = invoke, Response = response };
                switch (op.Kind)
                {
                    case RegisterOpKind.Get:
                        var read = reply is string s ? long.Parse(s, CultureInfo.InvariantCulture) : (long?)null;
                        if (reply is not (string or null)) throw Unexpected(command, reply);
                        lastRead[key] = read;
                        op = RegisterOp.Get(client, key, invoke, response, read);
                        break;
                    case RegisterOpKind.Set:
                        if (reply is not RespSimple { Text: "OK" }) throw Unexpected(command, reply);
                        break;
                    case RegisterOpKind.CompareValueAndSet:
                        if (reply is not (1L or 0L)) throw Unexpected(command, reply);
                        op = op with { Ok = (long)reply == 1 };
                        break;
                    case RegisterOpKind.Increment:
                        if (reply is not long n) throw Unexpected(command, reply);
                        op = op with { Value = n };
                        break;
                    default:
                        if (reply is not (1L or 0L)) throw Unexpected(command, reply);
                        op = op with { Ok = (long)reply == 1 };
                        break;
                }
                ops.Add(op);

                if (random.Next(10) == 0)
                {
                    var journalKey = $"{prefix}journal:{client}:{sequence}";
                    try
                    {
                        if (connection.Call("SET", journalKey, text) is RespSimple { Text: "OK" }) _journal[journalKey] = text;
                    }
                    catch (Exception e) when (e is IOException or SocketException or EndOfStreamException)
                    {
                        connection.Dispose();
                        connection = null;
                        node = (node + 1) % ports.Count;
                    }
                }
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }

    /// <summary>Stops the clients without collecting anything (a failed test must not leave them running).</summary>
    public void Dispose()
    {
        _stop.Cancel();
        foreach (var t in _threads) t.Join(_timeout * 3);
        _stop.Dispose();
    }

    private void Count(string what) => _errors.AddOrUpdate(what, 1, (_, n) => n + 1);

    private static InvalidDataException Unexpected(object[] command, object? reply) =>
        new($"unexpected reply to {command[0]} {command[^1]}: {reply ?? "(nil)"}");

    /// <summary>A one-line summary: operations by kind, unknown outcomes, errors.</summary>
    public static string Describe(IReadOnlyList<RegisterOp> history, IReadOnlyDictionary<string, int> errors) =>
        $"{history.Count} operations ({string.Join(", ", history.GroupBy(o => o.Kind).Select(g => $"{g.Count()} {g.Key}"))}), " +
        $"{history.Count(o => o.OutcomeUnknown)} with unknown outcome; errors: " +
        (errors.Count == 0 ? "none" : string.Join(", ", errors.Select(e => $"{e.Key} ×{e.Value}")));
}
