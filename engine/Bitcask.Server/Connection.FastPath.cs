using System.Buffers;
using System.Buffers.Text;
using Bitcask.Server.Commands;
using Bitcask.Server.Protocol;
using Microsoft.Extensions.Logging;

namespace Bitcask.Server;

// The hot commands run straight from the parsed request, without the general machinery (argument arrays, a
// KeyspaceView, a command-table lookup, an async state machine per command): GET, a plain SET (no options) and INCR,
// when the client is in the ordinary state (authenticated, not in MULTI, not subscribed). Everything else, and every
// case these do not cover (a value that must be escaped, an expiring counter, a lost race, a key over the limits), goes
// down the general path, which gives the same replies. They allocate nothing per command (bench `micro --filter
// '*ServerCommandBenchmarks*'`).
//
// Pipelined plain SETs are blind writes: they are collected in one WriteBatch and committed once per read batch (before
// the replies go out, before any other command runs, and at 256 KiB), so 16 pipelined SETs cost one record and one
// write system call instead of 16; in Synced mode the batch is queued for the group's fdatasync like any blind write.
// The batch is atomic, which only strengthens what the client asked for.
internal sealed partial class Connection
{
    /// <summary>Pending blind writes are committed once they hold this many bytes of keys and values.</summary>
    private const int BlindBatchBytes = 256 * 1024;
    /// <summary>A SET with a bigger value takes the general path (one plain record of its own).</summary>
    private const int FastValueBytes = 64 * 1024;

    private readonly RequestArgs _args = new();
    private ArrayBufferWriter<byte> _value = new(256);
    private WriteBatch? _blind;
    private readonly int _maxKeyBytes, _maxValueBytes;
    private readonly bool _writable;

    /// <summary>Runs the parsed request in <see cref="_args"/> if it is a hot command in the ordinary client state and
    /// replies; false (nothing done) for the general path. <paramref name="lastInBuffer"/>: no more request bytes are
    /// waiting, so a lone SET is written at once as a plain record instead of starting a batch.</summary>
    internal bool TryRunFast(bool lastInBuffer)
    {
        if (!Authenticated || InMulti || SubscriptionCount > 0 || !_server.HotPathAllowed) return false;
        var name = _args[0];
        switch (name.Length)
        {
            case 3 when _args.Count == 2 && _args.Is(0, "get"u8):
                return FastGet();
            case 3 when _args.Count == 3 && _args.Is(0, "set"u8):
                return FastSet(lastInBuffer);
            case 4 when _args.Count == 2 && _args.Is(0, "incr"u8):
                return FastIncr();
            default:
                return false;
        }
    }

    private bool FastGet()
    {
        var key = _args[1];
        if (_pendingCommits.Count > 0 || StoredValue.IsEngineKey(key)) return false;
        if (_blind is { Count: > 0 })
        {
            if (_server.Durability == Durability.Synced) return false; // the general path waits for the group's fdatasync
            CommitBlindWrites();
        }
        Counted("get");
        _value.ResetWrittenCount();
        try
        {
            if (!_server.Store.TryGet(key, _value)) _reply.NullBulk();
            else if (StoredValue.TypeOf(_value.WrittenSpan) != ValueType.String) _reply.Error(Errors.WrongType);
            else _reply.Bulk(StoredValue.StringOf(_value.WrittenSpan));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            _reply.Error(ServerState.ErrorText(e));
        }
        ReleaseBigValueBuffer();
        return true;
    }

    /// <summary>A buffer grown for a big value is not kept by an idle connection.</summary>
    private void ReleaseBigValueBuffer()
    {
        if (_value.Capacity > FastValueBytes) _value = new ArrayBufferWriter<byte>(256);
    }

    private bool FastSet(bool lastInBuffer)
    {
        var key = _args[1];
        var value = _args[2];
        if (!_writable || key.Length > _maxKeyBytes || value.Length > _maxValueBytes || value.Length > FastValueBytes
            || StoredValue.IsEngineKey(key) || value.StartsWith(StoredValue.Tag))
            return false;
        var synced = _server.Durability == Durability.Synced;
        if (lastInBuffer && _blind is not { Count: > 0 })
        {
            if (synced) return false; // one plain record queued for the group's fdatasync (the general path)
            Counted("set");
            try
            {
                _server.TryWriteNow(key, value, expectedVersion: -1);
                _reply.Ok();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
            {
                _reply.Error(ServerState.ErrorText(e));
            }
            return true;
        }
        Counted("set");
        (_blind ??= new WriteBatch()).Put(key, value);
        _reply.Ok(); // sent only after the batch committed (CommitBlindWrites runs before every flush of the replies)
        if (_blind.PayloadBytes >= BlindBatchBytes) CommitBlindWrites();
        return true;
    }

    private bool FastIncr()
    {
        var key = _args[1];
        if (!_writable || _server.Durability == Durability.Synced || _pendingCommits.Count > 0
            || key.Length > _maxKeyBytes || StoredValue.IsEngineKey(key))
            return false;
        CommitBlindWrites();
        _value.ResetWrittenCount();
        bool found;
        EntryInfo info;
        try
        {
            found = _server.Store.TryGetEntry(key, _value, out info);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            return false; // the general path replies the error
        }
        long current = 0;
        var plain = !found || (info.ExpiresAt is null && StoredValue.TypeOf(_value.WrittenSpan) == ValueType.String
                               && CommandContext.TryParseLong(StoredValue.StringOf(_value.WrittenSpan), out current));
        ReleaseBigValueBuffer();
        if (!plain) return false; // keeps a TTL, or an error reply: the general path
        var next = unchecked(current + 1);
        if (next < current) return false; // overflow: the general path replies the error
        Span<byte> digits = stackalloc byte[24];
        Utf8Formatter.TryFormat(next, digits, out var length);
        try
        {
            if (!_server.TryWriteNow(key, digits[..length], found ? info.Version : 0)) return false; // another client got in between
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            return false;
        }
        Counted("incr");
        _reply.Integer(next);
        return true;
    }

    /// <summary>Runs every request in <paramref name="requests"/> as the read loop does, without a socket, and returns the
    /// reply bytes written (copied to <paramref name="replies"/> if given). <paramref name="general"/> sends each through the general path instead of the
    /// hot one. For the micro-benchmark and tests: only commands that complete without waiting.</summary>
    internal int RunWithoutSocket(ReadOnlySequence<byte> requests, bool general, IBufferWriter<byte>? replies = null)
    {
        _reply.Clear();
        while (RequestParser.TryParse(requests, _server.MaxBulkBytes, Authenticated, _args, out var consumed, out var error) == ParseStatus.Complete)
        {
            requests = requests.Slice(consumed);
            if (_args.Count == 0) continue;
            if (!general && TryRunFast(requests.IsEmpty)) continue;
            CommitBlindWrites();
            var run = ExecuteAsync(_args.ToArrays());
            if (!run.IsCompleted) throw new InvalidOperationException("The command waited: RunWithoutSocket runs only commands that complete at once.");
            run.GetAwaiter().GetResult();
            _ = error;
        }
        CommitBlindWrites();
        foreach (var commit in _pendingCommits) commit.GetAwaiter().GetResult();
        _pendingCommits.Clear();
        var written = _reply.Length;
        replies?.Write(_reply.Written.Span);
        _reply.Clear();
        return written;
    }

    private void Counted(string command)
    {
        _server.Stats.Commands++;
        LastCommand = command;
    }

    /// <summary>Commits the pipelined SETs collected so far: at once outside Synced mode, else queued with the other
    /// blind writes for the group's fdatasync. A failure (an I/O error: the store refuses writes from then on) closes the
    /// connection, so the OKs already written are never sent.</summary>
    private void CommitBlindWrites()
    {
        if (_blind is not { Count: > 0 } batch) return;
        try
        {
            var commit = _server.CommitAsync(batch);
            if (commit.IsCompletedSuccessfully)
            {
                batch.Clear();
                return;
            }
            _pendingCommits.Add(commit.AsTask());
            _blind = null; // in use until its commit completes
        }
        catch (Exception e)
        {
            _server.Logger.LogError(e, "Closing client {Id} ({Address}): a write it sent failed", Id, Address);
            _reply.Clear();
            _aborted = true;
            throw new IOException("a pipelined write failed: " + e.Message, e);
        }
    }
}
