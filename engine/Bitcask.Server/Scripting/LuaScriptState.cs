using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using KeraLua;

namespace Bitcask.Server.Scripting;

/// <summary>
/// One sandboxed Lua 5.4 state (KeraLua) with its own compiled-script cache, memory accounting and time-limit
/// hook. NOT thread-safe: a Lua state is single-threaded, so <see cref="LuaScriptHost"/> hands each state to one
/// run at a time (a pool); every call here must come from the thread that owns the state for that run.
/// </summary>
/// <remarks>
/// Rules this class keeps so that no Lua error ever <c>longjmp</c>s over a managed frame (undefined behaviour):
/// <list type="bullet">
/// <item>C# functions called from Lua (<c>redis.call</c>'s raw half, the message handler, the time check) return
/// errors as values; Lua wrappers raise them.</item>
/// <item>The memory limit is enforced only while script code runs and never inside those C# functions, so the
/// Lua API calls they make cannot fail with a memory error; scripts may not install <c>__gc</c> finalizers, so no
/// Lua code runs inside them either.</item>
/// <item>API calls made from C# outside a protected call (building KEYS/ARGV, reading the reply, clearing the
/// environment) use only raw access and run with the limit off.</item>
/// </list>
/// </remarks>
internal sealed class LuaScriptState : IDisposable
{
    /// <summary>Instructions between two checks of the deadline (a check costs one call into C#).</summary>
    internal const int HookInstructionCount = 10_000;

    /// <summary>Compiled scripts a state keeps; past it the state forgets them all and recompiles on demand.</summary>
    internal const int MaxCachedFunctions = 1_000;

    /// <summary>Nesting depth of tables converted to or from a reply (a cyclic table stops here).</summary>
    internal const int MaxReplyDepth = 1_000;

    private static readonly byte[] BootstrapChunk = Encoding.UTF8.GetBytes(LuaSandbox.Bootstrap);

    private readonly Lua _lua;
    private readonly long _memoryLimit;
    private readonly long _maxDurationTicks;
    private readonly string _timeLimitMessage;

    // Native code holds pointers to these delegates: they live as long as the state.
    private readonly LuaAlloc _allocate;
    private GCHandle _allocatorRoot; // KeraLua's finalizer calls lua_close, which calls the allocator: keep it alive until Dispose
    private readonly LuaFunction _rawCall;
    private readonly LuaFunction _rawPcall;
    private readonly LuaFunction _expired;
    private readonly LuaFunction _sha1Hex;
    private readonly LuaFunction _messageHandler;
    private readonly LuaFunction _cjsonEncode;
    private readonly LuaFunction _cjsonDecode;

    private readonly Dictionary<string, int> _functions = new(StringComparer.Ordinal);
    private readonly int _envRef;
    private readonly int _armRef;
    private readonly int _proxiesRef;

    private long _used;
    private bool _enforceMemory;
    private bool _memoryRefused;
    private long _deadline = long.MaxValue;
    private bool _timedOut;
    private IScriptCommandExecutor? _executor;
    private bool _disposed;

    /// <summary>Creates and sandboxes a state. Throws <see cref="InvalidOperationException"/> if Lua cannot start.</summary>
    internal LuaScriptState(ScriptLimits limits, int generation)
    {
        _memoryLimit = limits.MaxMemoryBytes;
        _maxDurationTicks = (long)(limits.MaxDuration.TotalSeconds * Stopwatch.Frequency);
        _timeLimitMessage = string.Create(
            CultureInfo.InvariantCulture,
            $"ERR Script exceeded the time limit of {(long)limits.MaxDuration.TotalMilliseconds} ms and was stopped");
        Generation = generation;

        _allocate = Allocate;
        _rawCall = RawCall;
        _rawPcall = RawPcall;
        _expired = Expired;
        _sha1Hex = Sha1Hex;
        _messageHandler = MessageHandler;
        _cjsonEncode = CjsonEncode;
        _cjsonDecode = CjsonDecode;

        _allocatorRoot = GCHandle.Alloc(_allocate);
        _lua = new Lua(_allocate, IntPtr.Zero);
        try
        {
            _lua.OpenBasicLibrary();
            _lua.OpenStringLibrary();
            _lua.OpenTableLibrary();
            _lua.OpenMathLibrary();
            _lua.OpenUTF8Library();
            _lua.OpenDebugLibrary();
            _lua.SetTop(0);

            if (_lua.LoadBuffer(BootstrapChunk, "=sandbox", "t") != LuaStatus.OK)
            {
                throw new InvalidOperationException("The Lua script sandbox does not compile: " + _lua.ToString(-1, false));
            }

            _lua.PushCFunction(_rawCall);
            _lua.PushCFunction(_rawPcall);
            _lua.PushCFunction(_expired);
            _lua.PushCFunction(_sha1Hex);
            _lua.PushInteger(HookInstructionCount);
            _lua.PushCFunction(_cjsonEncode);
            _lua.PushCFunction(_cjsonDecode);
            _lua.PushLightUserData(IntPtr.Zero);
            if (_lua.PCall(8, 3, 0) != LuaStatus.OK)
            {
                throw new InvalidOperationException("The Lua script sandbox failed to start: " + _lua.ToString(-1, false));
            }

            _proxiesRef = _lua.Ref(LuaRegistry.Index);
            _armRef = _lua.Ref(LuaRegistry.Index);
            _envRef = _lua.Ref(LuaRegistry.Index);
            Arm();
        }
        catch
        {
            _lua.Dispose();
            _allocatorRoot.Free();
            throw;
        }
    }

    /// <summary>The host's cache generation this state's compiled functions belong to (see SCRIPT FLUSH).</summary>
    internal int Generation { get; private set; }

    /// <summary>Bytes the state holds now (what the memory limit counts).</summary>
    internal long MemoryUsed => _used;

    /// <summary>True when the state should not go back to the pool (it holds more than half its limit even after a full collection).</summary>
    internal bool IsBloated => _used > _memoryLimit / 2;

    /// <summary>Forgets the compiled scripts (after SCRIPT FLUSH) and adopts <paramref name="generation"/>.</summary>
    internal void ForgetFunctions(int generation)
    {
        foreach (int reference in _functions.Values)
        {
            _lua.Unref(LuaRegistry.Index, reference);
        }

        _functions.Clear();
        Generation = generation;
    }

    /// <summary>
    /// Compiles <paramref name="source"/> (if this state has not already) and keeps it under <paramref name="sha1"/>.
    /// Returns null, or Redis's compile error text.
    /// </summary>
    internal string? Compile(string sha1, byte[] source)
    {
        if (_functions.ContainsKey(sha1))
        {
            return null;
        }

        if (_functions.Count >= MaxCachedFunctions)
        {
            ForgetFunctions(Generation);
        }

        _lua.SetTop(0);
        _memoryRefused = false;
        _enforceMemory = true; // lua_load is a protected call: a refused allocation comes back as LUA_ERRMEM
        LuaStatus status;
        try
        {
            status = _lua.LoadBuffer(source, LuaSandbox.ScriptChunkName, "t");
        }
        finally
        {
            _enforceMemory = false;
        }

        if (status != LuaStatus.OK)
        {
            string message = status == LuaStatus.ErrMem
                ? MemoryLimitMessage()
                : "ERR Error compiling script (new function): " + Sanitize(ToText(1) ?? "unknown error");
            _lua.SetTop(0);
            return message;
        }

        // The chunk's only upvalue is _ENV: point it at the sandbox environment.
        _lua.RawGetInteger(LuaRegistry.Index, _envRef);
        _lua.SetUpValue(1, 1);
        _functions[sha1] = _lua.Ref(LuaRegistry.Index);
        return null;
    }

    /// <summary>
    /// Runs a script (compiling it first if needed) with <c>KEYS</c> and <c>ARGV</c> set, and converts what it
    /// returns (or the error it raised) into a reply. <paramref name="compiled"/> is false when the source did not
    /// compile (the result is then the compile error).
    /// </summary>
    internal ScriptValue Run(
        string sha1,
        byte[] source,
        IReadOnlyList<byte[]> keys,
        IReadOnlyList<byte[]> args,
        IScriptCommandExecutor executor,
        out bool compiled)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        string? compileError = Compile(sha1, source);
        compiled = compileError is null;
        if (compileError is not null)
        {
            return new ScriptValue.Error(compileError);
        }

        Lua lua = _lua;
        lua.SetTop(0);
        lua.PushCFunction(_messageHandler);
        lua.RawGetInteger(LuaRegistry.Index, _functions[sha1]);
        lua.RawGetInteger(LuaRegistry.Index, _envRef);
        SetArray(3, "KEYS", keys);
        SetArray(3, "ARGV", args);
        lua.SetTop(2);

        _executor = executor;
        _timedOut = false;
        _memoryRefused = false;
        _deadline = Stopwatch.GetTimestamp() + _maxDurationTicks;
        _enforceMemory = true;
        LuaStatus status;
        try
        {
            status = lua.PCall(0, 1, 1);
        }
        finally
        {
            _enforceMemory = false;
            _deadline = long.MaxValue;
            _executor = null;
        }

        ScriptValue result;
        if (status == LuaStatus.OK)
        {
            long budget = _memoryLimit;
            try
            {
                result = ToScriptValue(lua.GetTop(), 0, ref budget);
            }
            catch (ReplyRefusedException refused)
            {
                // Thrown from plain C# (no Lua frame between here and there), so it is safe.
                result = new ScriptValue.Error(refused.Message);
            }
        }
        else
        {
            result = ErrorFromStack(status, sha1);
        }

        Cleanup();
        return result;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _lua.Dispose();
        _allocatorRoot.Free();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Memory

    private IntPtr Allocate(IntPtr ud, IntPtr ptr, UIntPtr osize, UIntPtr nsize)
    {
        unsafe
        {
            // For a new block (ptr == NULL) osize is a type tag, not a size.
            long oldSize = ptr == IntPtr.Zero ? 0 : (long)(ulong)osize;
            if (nsize == UIntPtr.Zero)
            {
                if (ptr != IntPtr.Zero)
                {
                    NativeMemory.Free((void*)ptr);
                    _used -= oldSize;
                }

                return IntPtr.Zero;
            }

            long growth = (long)(ulong)nsize - oldSize;
            if (growth > 0 && _enforceMemory && _used + growth > _memoryLimit)
            {
                _memoryRefused = true; // Lua runs an emergency collection and may ask again
                return IntPtr.Zero;
            }

            void* block = NativeMemory.Realloc((void*)ptr, nsize);
            if (block == null)
            {
                return IntPtr.Zero;
            }

            _used += growth;
            return (IntPtr)block;
        }
    }

    private string MemoryLimitMessage() => string.Create(
        CultureInfo.InvariantCulture,
        $"ERR Script exceeded the memory limit of {_memoryLimit} bytes");

    // ---------------------------------------------------------------------------------------------------------
    // Functions Lua calls. Each returns normally whatever happens (see the class remarks).

    private int RawCall(IntPtr state) => RedisCommand(raise: true);

    private int RawPcall(IntPtr state) => RedisCommand(raise: false);

    private int RedisCommand(bool raise)
    {
        bool enforce = _enforceMemory;
        _enforceMemory = false;
        try
        {
            Lua lua = _lua;
            int count = lua.GetTop();
            if (count == 0)
            {
                return PushError("ERR Please specify at least one argument for this redis lib call", raise);
            }

            var argv = new byte[count][];
            for (int i = 1; i <= count; i++)
            {
                switch (lua.Type(i))
                {
                    case LuaType.String:
                        argv[i - 1] = lua.ToBuffer(i, false);
                        break;
                    case LuaType.Number:
                        argv[i - 1] = Encoding.ASCII.GetBytes(FormatNumber(i));
                        break;
                    default:
                        return PushError("ERR Lua redis lib command arguments must be strings or integers", raise);
                }
            }

            IScriptCommandExecutor? executor = _executor;
            if (executor is null)
            {
                return PushError("ERR redis.call is only available while a script runs", raise);
            }

            ScriptValue reply;
            try
            {
                reply = executor.Execute(argv);
            }
            catch (Exception ex)
            {
                reply = new ScriptValue.Error("ERR " + ex.Message);
            }

            if (reply is ScriptValue.Error error)
            {
                return PushError(NormalizeErrorText(error.Message), raise);
            }

            lua.SetTop(0);
            PushValue(reply, 0);
            return 1;
        }
        catch (Exception ex)
        {
            // A bug here must not unwind into native code; report it to the script instead.
            _lua.SetTop(0);
            return PushError("ERR " + ex.Message, raise);
        }
        finally
        {
            _enforceMemory = enforce;
        }
    }

    /// <summary>Pushes <c>{err = text}</c>, plus <c>true</c> (the "raise it" flag the Lua wrapper reads) when raising.</summary>
    private int PushError(string text, bool raise)
    {
        _lua.SetTop(0);
        PushErrorTable(Sanitize(text));
        if (raise)
        {
            _lua.PushBoolean(true);
            return 2;
        }

        return 1;
    }

    private int Expired(IntPtr state)
    {
        if (Stopwatch.GetTimestamp() <= _deadline)
        {
            return 0;
        }

        bool enforce = _enforceMemory;
        _enforceMemory = false;
        try
        {
            _timedOut = true;
            _lua.PushString(_timeLimitMessage);
            return 1;
        }
        finally
        {
            _enforceMemory = enforce;
        }
    }

    private int Sha1Hex(IntPtr state)
    {
        bool enforce = _enforceMemory;
        _enforceMemory = false;
        try
        {
            byte[] input = _lua.Type(1) == LuaType.String ? _lua.ToBuffer(1, false) : [];
            _lua.PushString(LuaScriptHost.Sha1Hex(input));
            return 1;
        }
        finally
        {
            _enforceMemory = enforce;
        }
    }

    private int CjsonEncode(IntPtr state)
    {
        bool enforce = _enforceMemory;
        _enforceMemory = false;
        try
        {
            var output = new List<byte>();
            string? error = LuaCjson.Encode(_lua, 1, output, _memoryLimit);
            _lua.SetTop(0);
            if (error is not null)
            {
                _lua.PushNil();
                _lua.PushString(error);
                return 2;
            }

            _lua.PushBuffer([.. output]);
            return 1;
        }
        catch (Exception ex)
        {
            _lua.SetTop(0);
            _lua.PushNil();
            _lua.PushString(ex.Message);
            return 2;
        }
        finally
        {
            _enforceMemory = enforce;
        }
    }

    private int CjsonDecode(IntPtr state)
    {
        bool enforce = _enforceMemory;
        _enforceMemory = false;
        try
        {
            byte[] json = _lua.ToBuffer(1, false) ?? [];
            _lua.SetTop(0);
            string? error = LuaCjson.Decode(_lua, json, () => enforce && _used > _memoryLimit);
            if (error is not null)
            {
                _lua.SetTop(0);
                _lua.PushNil();
                _lua.PushString(error);
                return 2;
            }

            return 1;
        }
        catch (Exception ex)
        {
            _lua.SetTop(0);
            _lua.PushNil();
            _lua.PushString(ex.Message);
            return 2;
        }
        finally
        {
            _enforceMemory = enforce;
        }
    }

    /// <summary>
    /// The message handler of the script's protected call, like Redis 7's: turns a string error into
    /// <c>{err = "ERR " .. message}</c> and records the script line the error came from (<c>source</c>, <c>line</c>).
    /// Written in C# so that it runs no Lua instruction (after a timeout every instruction raises).
    /// </summary>
    private int MessageHandler(IntPtr state)
    {
        bool enforce = _enforceMemory;
        _enforceMemory = false;
        try
        {
            Lua lua = _lua;
            lua.SetTop(1);
            if (lua.Type(1) != LuaType.Table)
            {
                string text = lua.Type(1) switch
                {
                    LuaType.String or LuaType.Number => ToText(1) ?? "",
                    LuaType.Nil or LuaType.None => "nil",
                    LuaType.Boolean => lua.ToBoolean(1) ? "true" : "false",
                    var type => lua.TypeName(type),
                };
                PushErrorTable("ERR " + Sanitize(text));
                lua.Replace(1);
            }

            var frame = new LuaDebug();
            for (int level = 1; level < 200 && lua.GetStack(level, ref frame) != 0; level++)
            {
                if (!lua.GetInfo("Sl", ref frame) || frame.Source != LuaSandbox.ScriptChunkName)
                {
                    continue;
                }

                lua.PushString("source");
                lua.PushString(frame.Source);
                lua.RawSet(1);
                lua.PushString("line");
                lua.PushInteger(frame.CurrentLine);
                lua.RawSet(1);
                break;
            }

            lua.SetTop(1);
            return 1;
        }
        catch (Exception)
        {
            return 1;
        }
        finally
        {
            _enforceMemory = enforce;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Conversions

    /// <summary>Redis's rule for an error text: "-CODE msg" and "CODE msg" keep their code; a text with no space gets ERR.</summary>
    internal static string NormalizeErrorText(string text)
    {
        string s = text.StartsWith('-') ? text[1..] : text;
        int space = s.IndexOf(' ', StringComparison.Ordinal);
        string code = space < 0 ? "ERR" : s[..space];
        string message = (space < 0 ? s : s[(space + 1)..]).Trim('\r', '\n');
        return code + " " + message;
    }

    /// <summary>A status or error line may not hold CR or LF (RESP is line-based): they become spaces, as in Redis.</summary>
    private static string Sanitize(string text) =>
        text.AsSpan().IndexOfAny('\r', '\n') < 0 ? text : text.Replace('\r', ' ').Replace('\n', ' ');

    /// <summary>
    /// A Lua number as a command argument. Integers print as integers; a float holding a whole number prints as
    /// an integer too (Redis's Lua 5.1 had no integer type, so scripts pass <c>x / 1000</c> where commands expect
    /// integers); other floats print in shortest round-trip form.
    /// </summary>
    private string FormatNumber(int index)
    {
        if (_lua.IsInteger(index))
        {
            return _lua.ToInteger(index).ToString(CultureInfo.InvariantCulture);
        }

        double value = _lua.ToNumber(index);
        if (double.IsNaN(value))
        {
            return "nan";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }

        if (Math.Floor(value) == value && Math.Abs(value) < 9.2e18)
        {
            return ((long)value).ToString(CultureInfo.InvariantCulture);
        }

        return value.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
    }

    private string? ToText(int index)
    {
        byte[]? bytes = _lua.Type(index) == LuaType.String ? _lua.ToBuffer(index, false) : null;
        if (bytes is null)
        {
            return _lua.Type(index) == LuaType.Number ? FormatLuaNumber(index) : null;
        }

        return Encoding.UTF8.GetString(bytes);
    }

    private string FormatLuaNumber(int index) => _lua.IsInteger(index)
        ? _lua.ToInteger(index).ToString(CultureInfo.InvariantCulture)
        : _lua.ToNumber(index).ToString("R", CultureInfo.InvariantCulture);

    private void PushErrorTable(string text)
    {
        _lua.CreateTable(0, 1);
        _lua.PushString("err");
        _lua.PushBuffer(Encoding.UTF8.GetBytes(text));
        _lua.RawSet(-3);
    }

    /// <summary>Pushes a reply as Redis 7 gives it to a script (RESP2 → Lua).</summary>
    private void PushValue(ScriptValue value, int depth)
    {
        Lua lua = _lua;
        switch (value)
        {
            case ScriptValue.Integer integer:
                lua.PushInteger(integer.Value);
                break;
            case ScriptValue.Bulk bulk:
                lua.PushBuffer(bulk.Value);
                break;
            case ScriptValue.Status status:
                lua.CreateTable(0, 1);
                lua.PushString("ok");
                lua.PushBuffer(Encoding.UTF8.GetBytes(status.Text));
                lua.RawSet(-3);
                break;
            case ScriptValue.Error error:
                PushErrorTable(NormalizeErrorText(error.Message));
                break;
            case ScriptValue.Array array when depth < MaxReplyDepth && lua.CheckStack(4):
                lua.CreateTable(array.Items.Count, 0);
                for (int i = 0; i < array.Items.Count; i++)
                {
                    PushValue(array.Items[i], depth + 1);
                    lua.RawSetInteger(-2, i + 1);
                }

                break;
            case ScriptValue.Array:
                PushErrorTable("ERR reached lua stack limit");
                break;
            default: // Nil
                lua.PushBoolean(false);
                break;
        }
    }

    /// <summary>
    /// Converts the Lua value at <paramref name="index"/> to a reply, as Redis 7 does (Lua → RESP2): integer
    /// numbers as integers, floats truncated toward zero, true → 1, false and nil → nil, a table with a string
    /// <c>err</c> → error, with a string <c>ok</c> → status, otherwise the array part up to the first nil.
    /// <paramref name="budget"/> bounds the reply's size (a table reachable many times, or a cycle, would
    /// otherwise make it unbounded).
    /// </summary>
    private ScriptValue ToScriptValue(int index, int depth, ref long budget)
    {
        Lua lua = _lua;
        budget -= 16;
        switch (lua.Type(index))
        {
            case LuaType.String:
                byte[] bytes = lua.ToBuffer(index, false);
                budget -= bytes.Length;
                return budget < 0 ? throw ReplyTooLarge() : new ScriptValue.Bulk(bytes);
            case LuaType.Number:
                if (lua.IsInteger(index))
                {
                    return new ScriptValue.Integer(lua.ToInteger(index));
                }

                double number = lua.ToNumber(index);
                return new ScriptValue.Integer(double.IsNaN(number) ? 0 : (long)Math.Clamp(Math.Truncate(number), long.MinValue, long.MaxValue));
            case LuaType.Boolean:
                return lua.ToBoolean(index) ? new ScriptValue.Integer(1) : ScriptValue.NilValue;
            case LuaType.Table:
                break;
            default:
                return ScriptValue.NilValue;
        }

        if (depth >= MaxReplyDepth || !lua.CheckStack(4))
        {
            throw new ReplyRefusedException("ERR reached lua stack limit");
        }

        lua.PushString("err");
        if (lua.RawGet(index) == LuaType.String)
        {
            string text = Sanitize(ToText(-1) ?? "");
            lua.Pop(1);
            return new ScriptValue.Error(text);
        }

        lua.Pop(1);
        lua.PushString("ok");
        if (lua.RawGet(index) == LuaType.String)
        {
            string text = Sanitize(ToText(-1) ?? "");
            lua.Pop(1);
            return new ScriptValue.Status(text);
        }

        lua.Pop(1);
        lua.PushString("double");
        if (lua.RawGet(index) == LuaType.Number)
        {
            string text = lua.ToNumber(-1).ToString("G17", CultureInfo.InvariantCulture);
            lua.Pop(1);
            return ScriptValue.Bulk.From(text);
        }

        lua.Pop(1);
        var items = new List<ScriptValue>();
        for (long i = 1; ; i++)
        {
            if (lua.RawGetInteger(index, i) == LuaType.Nil)
            {
                lua.Pop(1);
                break;
            }

            ScriptValue item = ToScriptValue(lua.GetTop(), depth + 1, ref budget);
            lua.Pop(1);
            if (budget < 0)
            {
                throw ReplyTooLarge();
            }

            items.Add(item);
        }

        return new ScriptValue.Array(items);
    }

    private ReplyRefusedException ReplyTooLarge() => new(string.Create(
        CultureInfo.InvariantCulture,
        $"ERR Script reply is larger than the script memory limit of {_memoryLimit} bytes"));

    /// <summary>The reply for a failed run, in Redis 7's shape: <c>{err} script: SHA, on SOURCE:LINE.</c></summary>
    private ScriptValue ErrorFromStack(LuaStatus status, string sha1)
    {
        Lua lua = _lua;
        if (status == LuaStatus.ErrMem)
        {
            return new ScriptValue.Error(_memoryRefused ? MemoryLimitMessage() : "ERR Lua ran out of memory");
        }

        int top = lua.GetTop();
        if (lua.Type(top) != LuaType.Table)
        {
            if (_timedOut)
            {
                return new ScriptValue.Error(_timeLimitMessage);
            }

            // Only when the handler itself could not run (LUA_ERRERR).
            return new ScriptValue.Error(Sanitize(string.Create(
                CultureInfo.InvariantCulture,
                $"ERR Error running script {sha1}, {ToText(top) ?? "execution failure"}")));
        }

        lua.PushString("err");
        lua.RawGet(top);
        string message = ToText(-1) ?? "ERR unknown error";
        lua.PushString("source");
        lua.RawGet(top);
        string? source = ToText(-1);
        lua.PushString("line");
        lua.RawGet(top);
        string? line = ToText(-1);
        lua.SetTop(top);
        if (_timedOut)
        {
            // Once the deadline passed every instruction raises the limit error; whatever ended the script, the
            // limit is why it stopped.
            message = _timeLimitMessage;
        }

        if (source is not null && line is not null)
        {
            message = string.Create(CultureInfo.InvariantCulture, $"{message} script: {sha1}, on {source}:{line}.");
        }

        return new ScriptValue.Error(Sanitize(message));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Run bookkeeping

    private void SetArray(int tableIndex, string name, IReadOnlyList<byte[]> values)
    {
        Lua lua = _lua;
        lua.PushString(name);
        lua.CreateTable(values.Count, 0);
        for (int i = 0; i < values.Count; i++)
        {
            lua.PushBuffer(values[i]);
            lua.RawSetInteger(-2, i + 1);
        }

        lua.RawSet(tableIndex);
    }

    private void Cleanup()
    {
        Lua lua = _lua;
        lua.SetTop(0);
        if (_timedOut)
        {
            Arm();
            _timedOut = false;
        }

        // Globals a script set with rawset (and KEYS/ARGV) must not leak into the next script.
        lua.RawGetInteger(LuaRegistry.Index, _envRef);
        ClearTable(1);
        lua.SetTop(0);
        lua.RawGetInteger(LuaRegistry.Index, _proxiesRef);
        for (long i = 1; lua.RawGetInteger(1, i) == LuaType.Table; i++)
        {
            ClearTable(2);
            lua.SetTop(1);
        }

        lua.SetTop(0);
        if (_used > _memoryLimit / 2)
        {
            lua.GarbageCollector(LuaGC.Collect, 0);
        }
    }

    private void ClearTable(int index)
    {
        Lua lua = _lua;
        lua.PushNil();
        while (lua.Next(index))
        {
            lua.Pop(1);
            lua.PushCopy(-1);
            lua.PushNil();
            lua.RawSet(index);
        }
    }

    private void Arm()
    {
        _lua.RawGetInteger(LuaRegistry.Index, _armRef);
        if (_lua.PCall(0, 0, 0) != LuaStatus.OK)
        {
            throw new InvalidOperationException("The Lua script time-limit hook could not be armed: " + ToText(-1));
        }

        _lua.SetTop(0);
    }

    /// <summary>A script's return value cannot become a reply (too deep, or too large); the message is the error text.</summary>
    private sealed class ReplyRefusedException(string message) : Exception(message);
}
