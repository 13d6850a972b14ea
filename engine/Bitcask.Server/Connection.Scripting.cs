using System.Buffers;
using System.Buffers.Text;
using System.Text;
using Bitcask.Server.Commands;
using Bitcask.Server.Protocol;
using Bitcask.Server.Scripting;

namespace Bitcask.Server;

// EVAL, EVALSHA and SCRIPT wired to the Lua engine (Scripting/LuaScriptHost). A script's redis.call runs the same command
// table as clients against one KeyspaceView; its writes commit as one batch conditional on every version the script read,
// and the whole script runs again if another client wrote one of those keys meanwhile: a script is atomic, and no other
// command's effect interleaves with it.
internal sealed partial class Connection
{
    private LuaScriptHost Scripts
    {
        get
        {
            lock (_server)
                return _server.Scripts ??= new LuaScriptHost(new ScriptLimits());
        }
    }

    private async ValueTask<bool> TryRunScriptingAsync(CommandSpec spec, byte[][] args)
    {
        if (ReferenceEquals(spec, ScriptCommands.Script))
        {
            ScriptCommand(args);
            return true;
        }
        if (!ReferenceEquals(spec, ScriptCommands.Eval) && !ReferenceEquals(spec, ScriptCommands.EvalSha)) return false;
        if (!CommandContext.TryParseLong(args[2], out var keyCount))
        {
            _reply.Error(Errors.NotInteger);
            return true;
        }
        if (keyCount < 0)
        {
            _reply.Error("ERR Number of keys can't be negative");
            return true;
        }
        if (keyCount > args.Length - 3)
        {
            _reply.Error("ERR Number of keys can't be greater than number of args");
            return true;
        }
        var keys = args[3..(3 + (int)keyCount)];
        var argv = args[(3 + (int)keyCount)..];
        var host = Scripts;
        for (var attempt = 0; ; attempt++)
        {
            if (_server.Node is not null && !await ReadBarrierAsync(spec).ConfigureAwait(false)) return true;
            _db.Reset();
            var executor = new ScriptExecutor(this);
            ScriptValue result;
            try
            {
                result = ReferenceEquals(spec, ScriptCommands.Eval)
                    ? host.Eval(args[1], keys, argv, executor)
                    : host.EvalSha(Encoding.ASCII.GetString(args[1]).ToLowerInvariant(), keys, argv, executor);
                if ((_db.HasWrites || _db.ReadSeveral) && !await _server.CommitAsync(_db).ConfigureAwait(false)) continue;
            }
            catch (ArgumentOutOfRangeException) when (attempt < 3 && _db.HasWrites)
            {
                continue;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
            {
                _reply.Error(ServerState.ErrorText(e));
                return true;
            }
            WriteScriptValue(result);
            foreach (var action in executor.Context.AfterCommit) action();
            return true;
        }
    }

    private void ScriptCommand(byte[][] args)
    {
        var sub = Encoding.UTF8.GetString(args[1]).ToUpperInvariant();
        var host = Scripts;
        switch (sub)
        {
            case "LOAD" when args.Length == 3:
                try
                {
                    _reply.Bulk(host.Load(args[2]));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    _reply.Error(e.Message.StartsWith("ERR", StringComparison.Ordinal) ? e.Message : "ERR " + e.Message);
                }
                return;
            case "EXISTS" when args.Length >= 3:
                _reply.Array(args.Length - 2);
                for (var i = 2; i < args.Length; i++) _reply.Integer(host.Exists(Encoding.ASCII.GetString(args[i]).ToLowerInvariant()) ? 1 : 0);
                return;
            case "FLUSH" when args.Length <= 3:
                host.Flush();
                _reply.Ok();
                return;
            case "LOAD" or "EXISTS" or "FLUSH":
                _reply.Error($"ERR wrong number of arguments for 'script|{sub.ToLowerInvariant()}' command");
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(args[1])}'. Try SCRIPT HELP.");
                return;
        }
    }

    private void WriteScriptValue(ScriptValue value)
    {
        switch (value)
        {
            case ScriptValue.Status s: _reply.Simple(s.Text); break;
            case ScriptValue.Error e: _reply.Error(e.Message); break;
            case ScriptValue.Integer i: _reply.Integer(i.Value); break;
            case ScriptValue.Bulk b: _reply.Bulk(b.Value); break;
            case ScriptValue.Array a:
                _reply.Array(a.Items.Count);
                foreach (var item in a.Items) WriteScriptValue(item);
                break;
            default: _reply.NullBulk(); break;
        }
    }

    /// <summary>redis.call/redis.pcall: the command table against the script's view; the reply captured in RESP2 shape.</summary>
    private sealed class ScriptExecutor(Connection owner) : IScriptCommandExecutor
    {
        private readonly ReplyWriter _capture = new() { Protocol = 2 };

        public CommandContext Context { get; } = new(owner._server, owner, owner._db, new ReplyWriter()) { InScript = true };

        public ScriptValue Execute(IReadOnlyList<byte[]> argv)
        {
            if (argv.Count == 0) return new ScriptValue.Error("ERR Please specify at least one argument for this redis lib call");
            var spec = owner._server.Commands.Find(argv[0]);
            if (spec is null) return new ScriptValue.Error("ERR Unknown Redis command called from script");
            if (spec.Has(CommandFlags.NoScript) || spec.Has(CommandFlags.TransactionControl))
                return new ScriptValue.Error("ERR This Redis command is not allowed from script");
            if (!spec.ArityOk(argv.Count)) return new ScriptValue.Error("ERR Wrong number of args calling Redis command from script");
            _capture.Clear();
            Context.Reply = _capture;
            Context.Args = [.. argv];
            Context.Spec = spec;
            try
            {
                spec.Handler(Context);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                return new ScriptValue.Error(ServerState.ErrorText(e));
            }
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_capture.Written));
            return Parse(ref reader);
        }

        private static ScriptValue Parse(ref SequenceReader<byte> reader)
        {
            reader.TryRead(out var type);
            reader.TryReadTo(out ReadOnlySpan<byte> line, "\r\n"u8);
            switch ((char)type)
            {
                case '+': return new ScriptValue.Status(Encoding.UTF8.GetString(line));
                case '-': return new ScriptValue.Error(Encoding.UTF8.GetString(line));
                case ':':
                    Utf8Parser.TryParse(line, out long number, out _);
                    return new ScriptValue.Integer(number);
                case '$':
                {
                    Utf8Parser.TryParse(line, out int length, out _);
                    if (length < 0) return new ScriptValue.Nil();
                    var bytes = new byte[length];
                    reader.TryCopyTo(bytes);
                    reader.Advance(length + 2);
                    return new ScriptValue.Bulk(bytes);
                }
                default: // '*'
                {
                    Utf8Parser.TryParse(line, out int count, out _);
                    if (count < 0) return new ScriptValue.Nil();
                    var items = new List<ScriptValue>(count);
                    for (var i = 0; i < count; i++) items.Add(Parse(ref reader));
                    return new ScriptValue.Array(items);
                }
            }
        }
    }
}
