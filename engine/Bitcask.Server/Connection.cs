using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Bitcask.Server.Commands;
using Bitcask.Server.Protocol;
using Microsoft.Extensions.Logging;

namespace Bitcask.Server;

/// <summary>
/// One client: reads requests from its socket through a <see cref="PipeReader"/>, runs them in order, and writes the
/// replies of everything it parsed in one go before reading again (pipelining). Replies and pub/sub pushes go through an
/// unbounded output pipe that a sender task drains into the socket; the byte count not yet sent is watched: over the
/// limit, the client's commands wait (a slow reader), and a subscriber is disconnected.
/// <para>Thread-safety: <see cref="Push"/>, <see cref="Abort"/> and <see cref="RequestStop"/> may be called from any
/// thread; everything else runs on the connection's own loop.</para>
/// </summary>
internal sealed partial class Connection
{
    private readonly Socket _socket;
    private readonly ServerState _server;
    private readonly Pipe _output = new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
    private readonly Lock _outputLock = new();
    private readonly ReplyWriter _reply = new();
    private readonly CommandContext _context;
    private readonly KeyspaceView _db;
    private PipeReader? _input;
    private long _written, _sent;
    private TaskCompletionSource? _drained;
    private readonly List<Task<bool>> _pendingCommits = [];
    private volatile bool _stopping, _aborted, _quit;
    private readonly CancellationTokenSource _closing = new();

    public Connection(Socket socket, ServerState server, long id)
    {
        _socket = socket;
        _server = server;
        Id = id;
        _db = new KeyspaceView(server);
        _context = new CommandContext(server, this, _db, _reply);
        Address = socket.RemoteEndPoint?.ToString() ?? "?";
        LocalAddress = socket.LocalEndPoint?.ToString() ?? "?";
        Authenticated = server.Options.Password is null;
        LastActivity = Environment.TickCount64;
        Created = Environment.TickCount64;
        var storeOptions = server.Store.Options;
        _maxKeyBytes = storeOptions.MaxKeyBytes;
        _maxValueBytes = storeOptions.MaxValueBytes;
        _writable = !storeOptions.ReadOnly;
    }

    public long Id { get; }
    public string Address { get; }
    public string LocalAddress { get; }
    public long Created { get; }
    public long LastActivity { get; private set; }
    public string? Name { get; set; }
    public string? LibraryName { get; set; }
    public string? LibraryVersion { get; set; }
    public bool Authenticated { get; set; }
    public int Protocol { get => _reply.Protocol; set => _reply.Protocol = value; }
    public string LastCommand { get; private set; } = "NULL";
    public HashSet<byte[]> Channels { get; } = new(BytesComparer.Instance);
    public HashSet<byte[]> Patterns { get; } = new(BytesComparer.Instance);
    public int SubscriptionCount => Channels.Count + Patterns.Count;
    public bool Subscribed => SubscriptionCount > 0;
    public long PendingOutput => Interlocked.Read(ref _written) - Interlocked.Read(ref _sent) + _reply.Length;

    /// <summary>The keys of the SCAN iteration this client is in the middle of (KeyCommands.Scan).</summary>
    internal ScanSnapshot? ScanSnapshot { get; set; }

    // transaction state
    public bool InMulti { get; set; }
    public bool MultiError { get; set; }
    public List<(CommandSpec Spec, byte[][] Args)> Queued { get; } = [];
    public Dictionary<byte[], long> Watched { get; } = new(BytesComparer.Instance);

    /// <summary>Serves the client until it quits, disconnects, breaks the protocol or the server stops.</summary>
    public async Task RunAsync()
    {
        var sender = Task.Run(SendLoop);
        Interlocked.Increment(ref s_open);
        try
        {
            _input = PipeReader.Create(new NetworkStream(_socket, ownsSocket: false),
                new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4096));
            _socket.Blocking = false; // replies go out with a non-blocking send when nothing is queued (FlushReplies)
            await ReadLoop(_input).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // the client went away or was aborted
        }
        catch (Exception e)
        {
            _server.Logger.LogError(e, "Client {Id} ({Address}) failed", Id, Address);
        }
        finally
        {
            Interlocked.Decrement(ref s_open);
            _server.PubSub.UnsubscribeAll(this);
            lock (_outputLock) _output.Writer.Complete();
            if (!_aborted) await Task.WhenAny(sender, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
            try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            _socket.Dispose();
            if (_input is not null) await _input.CompleteAsync().ConfigureAwait(false);
            try { await sender.ConfigureAwait(false); } catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException) { }
        }
    }

    /// <summary>Connections open in this process (every server).</summary>
    private static int s_open;

    /// <summary>Past this many open connections, one with no partial request waits for its next bytes without holding a
    /// read buffer (a zero-byte receive, then the read): 10,000 idle clients cost about 12 KiB each instead of 60 KiB.
    /// Below it the read is issued at once, which saves a system call per request.</summary>
    private const int ManyConnections = 256;

    private async Task ReadLoop(PipeReader input)
    {
        var options = _server.Options;
        var drained = true; // nothing unparsed is left in the reader
        while (true)
        {
            if (drained && Volatile.Read(ref s_open) > ManyConnections)
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _closing.Token).ConfigureAwait(false);
            var read = await input.ReadAsync().ConfigureAwait(false);
            var buffer = read.Buffer;
            var protocolError = false;
            while (!_aborted && !_quit)
            {
                var status = RequestParser.TryParse(buffer, _server.MaxBulkBytes, Authenticated, _args, out var consumed, out var error);
                if (status == ParseStatus.Incomplete)
                {
                    if (buffer.Length > _server.MaxQueryBufferBytes)
                    {
                        _server.Logger.LogWarning("Closing client {Id} ({Address}): query buffer of {Bytes} bytes is over the limit of {Limit}",
                            Id, Address, buffer.Length, _server.MaxQueryBufferBytes);
                        _reply.Clear();
                        return;
                    }
                    break;
                }
                if (status == ParseStatus.Error)
                {
                    _server.Stats.ProtocolErrors++;
                    _reply.Error(error!);
                    protocolError = true;
                    break;
                }
                buffer = buffer.Slice(consumed);
                if (_args.Count == 0) continue;
                LastActivity = Environment.TickCount64;
                // The hot commands run synchronously from the parsed spans; the rest through the general path. Either
                // way the replies of everything parsed from this read go out together below (one send per batch).
                if (!TryRunFast(lastInBuffer: buffer.IsEmpty))
                {
                    CommitBlindWrites(); // the pipelined SETs before it come first
                    await ExecuteAsync(_args.ToArrays()).ConfigureAwait(false);
                }
                if (PendingOutput > options.MaxOutputBufferBytes) await WaitForDrain().ConfigureAwait(false);
            }
            drained = buffer.IsEmpty;
            input.AdvanceTo(buffer.Start, buffer.End);
            await DrainPendingCommits().ConfigureAwait(false);
            FlushReplies();
            if (protocolError || _quit || _aborted || read.IsCompleted) return;
            // A graceful stop answers every command the client sent before it (also those still in the socket buffer).
            if (_stopping && _socket.Available == 0) return;
        }
    }

    // ------------------------------------------------------------------ output

    /// <summary>Moves the replies written so far into the output pipe (to the sender).</summary>
    private void FlushReplies()
    {
        if (_reply.Length == 0) return;
        var bytes = _reply.Written.Span;
        lock (_outputLock)
        {
            // Fast path: nothing queued for the sender, so send on this thread without blocking (no hand-off); what the
            // socket does not take at once goes to the sender.
            if (!_aborted && Interlocked.Read(ref _written) == Interlocked.Read(ref _sent))
            {
                try
                {
                    var sent = _socket.Send(bytes, SocketFlags.None, out var error);
                    if (error is SocketError.Success or SocketError.WouldBlock && sent > 0)
                    {
                        Interlocked.Add(ref _written, sent);
                        Interlocked.Add(ref _sent, sent);
                        bytes = bytes[sent..];
                    }
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
            if (!bytes.IsEmpty) Write(bytes);
        }
        _reply.Clear();
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_outputLock)
        {
            if (_aborted) return;
            try
            {
                _output.Writer.Write(bytes);
                Interlocked.Add(ref _written, bytes.Length);
                var flush = _output.Writer.FlushAsync();
                if (!flush.IsCompleted) flush.AsTask().Wait(); // never happens: the pipe does not pause writers
            }
            catch (InvalidOperationException)
            {
                // the output is complete: the connection is closing
            }
        }
    }

    [ThreadStatic] private static ReplyWriter? t_push;

    /// <summary>Writes a push (pub/sub message) built by <paramref name="build"/> in this client's protocol. A client whose
    /// unsent output passes the limit is disconnected (Redis's pubsub client-output-buffer-limit).</summary>
    public void Push(Action<ReplyWriter> build)
    {
        if (_aborted) return;
        var writer = t_push ??= new ReplyWriter();
        writer.Clear();
        writer.Protocol = Protocol;
        build(writer);
        if (Interlocked.Read(ref _written) - Interlocked.Read(ref _sent) + writer.Length > _server.Options.MaxOutputBufferBytes)
        {
            _server.Logger.LogWarning("Closing client {Id} ({Address}): it fell {Limit} bytes behind reading its messages", Id, Address, _server.Options.MaxOutputBufferBytes);
            _server.Stats.OutputLimitDisconnects++;
            Abort();
            return;
        }
        Write(writer.Written.Span);
    }

    private async Task SendLoop()
    {
        var reader = _output.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    var sent = 0;
                    while (sent < segment.Length)
                        sent += await _socket.SendAsync(segment[sent..], SocketFlags.None).ConfigureAwait(false);
                    Interlocked.Add(ref _sent, segment.Length);
                }
                reader.AdvanceTo(buffer.End);
                if (Volatile.Read(ref _drained) is { } waiter && PendingOutput - _reply.Length <= _server.Options.MaxOutputBufferBytes / 2)
                    waiter.TrySetResult();
                if (result.IsCompleted) break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            Abort();
        }
        finally
        {
            Volatile.Read(ref _drained)?.TrySetResult();
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A slow reader: hand what is written to the sender and wait until it sent half the limit.</summary>
    private async Task WaitForDrain()
    {
        await DrainPendingCommits().ConfigureAwait(false); // never send the OK of a write that is not committed yet
        FlushReplies();
        while (!_aborted && PendingOutput > _server.Options.MaxOutputBufferBytes / 2)
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _drained, waiter);
            if (PendingOutput <= _server.Options.MaxOutputBufferBytes / 2) break;
            await waiter.Task.ConfigureAwait(false);
        }
        Volatile.Write(ref _drained, null);
    }

    /// <summary>Closes the connection at once (idle timeout, output limit, server stop timeout).</summary>
    public void Abort()
    {
        _aborted = true;
        _stopping = true;
        Cancel();
        try { _socket.Dispose(); } catch (ObjectDisposedException) { }
        _input?.CancelPendingRead();
    }

    /// <summary>Graceful stop: finish the command running, send its replies, then close.</summary>
    public void RequestStop()
    {
        _stopping = true;
        Cancel();
        try { _input?.CancelPendingRead(); } catch (InvalidOperationException) { }
    }

    /// <summary>Ends a wait for the next request (<see cref="ReadLoop"/>'s zero-byte receive).</summary>
    private void Cancel()
    {
        try { _closing.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>QUIT: close after the replies so far are sent.</summary>
    public void Quit() => _quit = true;

    // ------------------------------------------------------------------ commands

    private async ValueTask ExecuteAsync(byte[][] args)
    {
        _server.Stats.Commands++;
        var spec = _server.Commands.Find(args[0]);
        if (spec is null)
        {
            var name = System.Text.Encoding.UTF8.GetString(args[0]);
            if (name.Equals("post", StringComparison.OrdinalIgnoreCase) || name.Equals("host:", StringComparison.OrdinalIgnoreCase))
            {
                // Redis's cross-protocol scripting guard: an HTTP request sent to the port closes the connection.
                _server.Logger.LogWarning("Possible SECURITY ATTACK detected: an HTTP request reached the RESP port from {Address}; connection closed", Address);
                _quit = true;
                return;
            }
            if (InMulti) MultiError = true;
            _reply.Error(CommandTable.UnknownCommand(args));
            return;
        }
        LastCommand = spec.Name;
        if (!Authenticated && !spec.Has(CommandFlags.NoAuth))
        {
            if (InMulti) MultiError = true;
            _reply.Error(Errors.NoAuth);
            return;
        }
        if (!spec.ArityOk(args.Length))
        {
            if (InMulti) MultiError = true;
            _reply.Error(Errors.WrongArity(spec.Name));
            return;
        }
        if (Subscribed && Protocol == 2 && !spec.Has(CommandFlags.PubSubContext))
        {
            _reply.Error($"ERR Can't execute '{spec.Name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
            return;
        }
        if (_pendingCommits.Count > 0 && !IsBlindWrite(spec, args)) await DrainPendingCommits().ConfigureAwait(false);
        if (InMulti && !spec.Has(CommandFlags.TransactionControl))
        {
            Queued.Add((spec, args));
            _reply.Simple("QUEUED");
            return;
        }
        if (ReferenceEquals(spec, TransactionCommands.Exec) && InMulti)
        {
            await ExecAsync().ConfigureAwait(false);
            return;
        }
        if (await TryRunClusterAsync(spec, args).ConfigureAwait(false)) return;
        if (await TryRunScriptingAsync(spec, args).ConfigureAwait(false)) return;
        await RunAsync(spec, args).ConfigureAwait(false);
    }

    /// <summary>Runs one command against the store: stage, commit as one conditional batch, and run it again (its reply
    /// taken back) when another client's write to a key it read got in between.</summary>
    private async ValueTask RunAsync(CommandSpec spec, byte[][] args)
    {
        var context = _context;
        for (var attempt = 0; ; attempt++)
        {
            var mark = _reply.Length;
            if (_server.Node is not null && !await ReadBarrierAsync(spec, args).ConfigureAwait(false)) return;
            _db.Reset();
            context.AfterCommit.Clear();
            context.Args = args;
            context.Spec = spec;
            try
            {
                spec.Handler(context);
                if (_db.HasWrites && !_db.HasReads && _server.Durability == Durability.Synced && context.AfterCommit.Count == 0 && _server.Node is null)
                {
                    // A blind write (no condition, so it cannot fail but by an I/O error): queue it and go on with the
                    // next pipelined command, so pipelined writes share one fdatasync. Its reply waits in the reply
                    // buffer until DrainPendingCommits saw it committed.
                    var commit = _server.CommitAsync(_db);
                    if (!commit.IsCompleted)
                    {
                        _pendingCommits.Add(commit.AsTask());
                        return;
                    }
                    await commit.ConfigureAwait(false);
                }
                else if ((_db.HasWrites || _db.ReadSeveral) && !await _server.CommitAsync(_db).ConfigureAwait(false))
                {
                    _reply.Length = mark;
                    continue;
                }
            }
            catch (ArgumentOutOfRangeException) when (attempt < 3 && _db.HasWrites)
            {
                _reply.Length = mark; // an expiry passed between staging and commit: run again (it is now a delete)
                continue;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
            {
                _reply.Length = mark;
                _reply.Error(ServerState.ErrorText(e));
                return;
            }
            foreach (var action in context.AfterCommit) action();
            return;
        }
    }

    /// <summary>Commands that only write, without reading any key: they may be queued behind each other without waiting.</summary>
    private static bool IsBlindWrite(CommandSpec spec, byte[][] args)
    {
        switch (spec.Name)
        {
            case "mset" or "setex" or "psetex":
                return true;
            case "set":
                for (var i = 3; i < args.Length; i++)
                    if (System.Text.Ascii.EqualsIgnoreCase(args[i], "NX") || System.Text.Ascii.EqualsIgnoreCase(args[i], "XX")
                        || System.Text.Ascii.EqualsIgnoreCase(args[i], "GET") || System.Text.Ascii.EqualsIgnoreCase(args[i], "KEEPTTL"))
                        return false;
                return true;
            default:
                return false;
        }
    }

    /// <summary>Waits for the queued blind writes. One that failed (an I/O error: the store refuses writes from then on)
    /// closes the connection, so its already-written OK is never sent.</summary>
    private async ValueTask DrainPendingCommits()
    {
        CommitBlindWrites();
        if (_pendingCommits.Count == 0) return;
        try
        {
            await Task.WhenAll(_pendingCommits).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _server.Logger.LogError(e, "Closing client {Id} ({Address}): a write it sent failed", Id, Address);
            _reply.Clear();
            _aborted = true;
            throw new IOException("a pipelined write failed: " + e.Message, e);
        }
        finally
        {
            _pendingCommits.Clear();
        }
    }

    /// <summary>EXEC: the queued commands against one view, committed as one batch conditional on every version read and
    /// every WATCHed key; nil when a watched key changed, and everything again when an unwatched key read changed.</summary>
    internal async ValueTask ExecAsync()
    {
        var queued = Queued.ToArray();
        Queued.Clear();
        InMulti = false;
        if (MultiError)
        {
            MultiError = false;
            Watched.Clear();
            _reply.Error("EXECABORT Transaction discarded because of previous errors.");
            return;
        }
        var watched = new Dictionary<byte[], long>(Watched, BytesComparer.Instance);
        Watched.Clear();
        var context = _context;
        for (var attempt = 0; ; attempt++)
        {
            var mark = _reply.Length;
            if (_server.Node is not null && !await ReadBarrierAsync(TransactionCommands.Exec).ConfigureAwait(false)) return;
            if (WatchedChanged(watched))
            {
                _reply.NullArray();
                return;
            }
            _db.Reset();
            context.AfterCommit.Clear();
            context.InTransaction = true;
            _reply.Array(queued.Length);
            try
            {
                foreach (var (spec, args) in queued)
                {
                    context.Args = args;
                    context.Spec = spec;
                    var itemMark = _reply.Length;
                    try
                    {
                        spec.Handler(context);
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                    {
                        _reply.Length = itemMark;
                        _reply.Error(ServerState.ErrorText(e));
                    }
                }
            }
            finally
            {
                context.InTransaction = false;
            }
            bool committed;
            try
            {
                committed = !_db.HasWrites && watched.Count == 0 && !_db.ReadSeveral
                    || await _server.CommitAsync(_db, watched).ConfigureAwait(false);
            }
            catch (ArgumentOutOfRangeException) when (attempt < 3)
            {
                committed = false;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
            {
                _reply.Length = mark;
                _reply.Error(ServerState.ErrorText(e));
                return;
            }
            if (!committed)
            {
                _reply.Length = mark;
                continue; // WatchedChanged decides at the top whether this is a WATCH failure or a race to run again
            }
            foreach (var action in context.AfterCommit) action();
            return;
        }
    }

    private bool WatchedChanged(Dictionary<byte[], long> watched)
    {
        foreach (var (key, version) in watched)
            if ((_server.Store.GetInfo(key)?.Version ?? 0) != version) return true;
        return false;
    }

    /// <summary>Resets the client to a fresh connection's state (RESET).</summary>
    public void Reset()
    {
        InMulti = false;
        MultiError = false;
        ReadOnlyMode = false;
        Queued.Clear();
        Watched.Clear();
        _server.PubSub.UnsubscribeAll(this);
        Protocol = 2;
        Name = null;
        Authenticated = _server.Options.Password is null;
    }

    public string Describe()
    {
        var now = Environment.TickCount64;
        var flags = InMulti ? "x" : Subscribed ? "P" : "N";
        return $"id={Id} addr={Address} laddr={LocalAddress} fd=0 name={Name} age={(now - Created) / 1000} idle={(now - LastActivity) / 1000} " +
               $"flags={flags} db=0 sub={Channels.Count} psub={Patterns.Count} ssub=0 multi={(InMulti ? Queued.Count : -1)} qbuf=0 qbuf-free=0 argv-mem=0 " +
               $"multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={Math.Max(0, PendingOutput)} tot-mem=0 events=r cmd={LastCommand.ToLowerInvariant()} user=default " +
               $"redir=-1 resp={Protocol} lib-name={LibraryName} lib-ver={LibraryVersion}";
    }
}
