using System.Security.Cryptography;

namespace Bitcask.Server.Scripting;

/// <summary>
/// Runs Redis scripts (EVAL, EVALSHA, SCRIPT LOAD|EXISTS|FLUSH) on Lua 5.4 through KeraLua. One per server.
/// </summary>
/// <remarks>
/// <para>Thread-safety: every member may be called from any thread concurrently. A Lua state is single-threaded,
/// so the host keeps a pool of sandboxed states: a run takes one for itself and gives it back after (concurrent
/// runs use different states; a state is never shared by two threads at once). The script cache (SHA1 → source)
/// is shared by all states; each state keeps its own compiled functions. <see cref="Eval"/> and
/// <see cref="EvalSha"/> are synchronous and call the executor on the calling thread only; making a run atomic
/// with respect to other clients is the server's job (it runs the call under its exclusive execution).</para>
/// <para>Cache: scripts added by SCRIPT LOAD stay until SCRIPT FLUSH; scripts added by EVAL are kept too (so that
/// EVALSHA finds them) but at most <see cref="MaxEvalScripts"/> of them, least recently used evicted first (as
/// Redis 7.4 does), so clients generating scripts cannot grow the cache without bound.</para>
/// </remarks>
internal sealed class LuaScriptHost : IDisposable
{
    /// <summary>Scripts added by EVAL (not SCRIPT LOAD) that the cache keeps.</summary>
    internal const int MaxEvalScripts = 500;

    /// <summary>The reply to EVALSHA of a script not in the cache (clients then fall back to EVAL).</summary>
    internal const string NoScriptMessage = "NOSCRIPT No matching script. Please use EVAL.";

    private readonly ScriptLimits _limits;
    private readonly int _maxIdleStates = Math.Max(2, Environment.ProcessorCount);
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly Dictionary<string, CachedScript> _scripts = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _evalOnly = new(); // EVAL-added scripts, least recently used first
    private readonly Stack<LuaScriptState> _idle = new();
    private int _generation;
    private bool _disposed;
    private int _statesCreated;

    /// <summary>Creates a host with the given limits; validates them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is not positive, or the memory limit is below <see cref="ScriptLimits.MinMemoryBytes"/>.</exception>
    public LuaScriptHost(ScriptLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (limits.MaxDuration <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(limits), limits.MaxDuration, "ScriptLimits.MaxDuration must be positive.");
        }

        if (limits.MaxMemoryBytes < ScriptLimits.MinMemoryBytes)
        {
            throw new ArgumentOutOfRangeException(
                nameof(limits),
                limits.MaxMemoryBytes,
                $"ScriptLimits.MaxMemoryBytes must be at least {ScriptLimits.MinMemoryBytes} bytes.");
        }

        _limits = limits;
    }

    /// <summary>Number of scripts in the cache (SCRIPT LOAD and EVAL ones).</summary>
    internal int CachedScriptCount
    {
        get
        {
            lock (_gate)
            {
                return _scripts.Count;
            }
        }
    }

    /// <summary>Lua states created so far (a pooled state is reused, so this stays small; tests read it).</summary>
    internal int StatesCreated => Volatile.Read(ref _statesCreated);

    /// <summary>SHA1 of <paramref name="source"/> as Redis names scripts: 40 lowercase hex digits.</summary>
    internal static string Sha1Hex(ReadOnlySpan<byte> source) => Convert.ToHexStringLower(SHA1.HashData(source));

    /// <summary>
    /// SCRIPT LOAD: compiles <paramref name="source"/> and caches it until SCRIPT FLUSH. Returns its SHA1 (40
    /// lowercase hex digits).
    /// </summary>
    /// <exception cref="ScriptException">The script does not compile; the message is Redis's error text.</exception>
    public string Load(byte[] source)
    {
        ArgumentNullException.ThrowIfNull(source);
        string sha1 = Sha1Hex(source);
        LuaScriptState state = Rent();
        try
        {
            string? error = state.Compile(sha1, source);
            if (error is not null)
            {
                throw new ScriptException(error);
            }
        }
        finally
        {
            Return(state);
        }

        lock (_gate)
        {
            if (_scripts.TryGetValue(sha1, out CachedScript? cached))
            {
                if (cached.EvalNode is not null)
                {
                    _evalOnly.Remove(cached.EvalNode);
                    cached.EvalNode = null;
                }
            }
            else
            {
                _scripts[sha1] = new CachedScript(source);
            }
        }

        return sha1;
    }

    /// <summary>SCRIPT EXISTS for one SHA1 (any case, as Redis accepts).</summary>
    public bool Exists(string sha1)
    {
        ArgumentNullException.ThrowIfNull(sha1);
        lock (_gate)
        {
            return _scripts.ContainsKey(sha1.ToLowerInvariant());
        }
    }

    /// <summary>SCRIPT FLUSH: empties the cache; every state forgets its compiled scripts before its next run.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            _scripts.Clear();
            _evalOnly.Clear();
            _generation++;
        }
    }

    /// <summary>
    /// EVAL: runs <paramref name="source"/> with <c>KEYS</c> = <paramref name="keys"/> and <c>ARGV</c> =
    /// <paramref name="args"/>, calling <paramref name="executor"/> for each <c>redis.call</c>/<c>redis.pcall</c>,
    /// and caches the script (if it compiles) so that EVALSHA finds it. Never throws for anything the script
    /// does: compile errors, runtime errors, errors from <c>redis.call</c>, <c>redis.error_reply</c> and the time
    /// and memory limits all come back as <see cref="ScriptValue.Error"/> with Redis 7's text.
    /// </summary>
    public ScriptValue Eval(byte[] source, IReadOnlyList<byte[]> keys, IReadOnlyList<byte[]> args, IScriptCommandExecutor executor)
    {
        ArgumentNullException.ThrowIfNull(source);
        string sha1 = Sha1Hex(source);
        ScriptValue result = Run(sha1, source, keys, args, executor, out bool compiled);
        if (compiled)
        {
            lock (_gate)
            {
                if (_scripts.TryGetValue(sha1, out CachedScript? cached))
                {
                    Touch(cached);
                }
                else
                {
                    var added = new CachedScript(source);
                    added.EvalNode = _evalOnly.AddLast(sha1);
                    _scripts[sha1] = added;
                    while (_evalOnly.Count > MaxEvalScripts)
                    {
                        string oldest = _evalOnly.First!.Value;
                        _evalOnly.RemoveFirst();
                        _scripts.Remove(oldest);
                    }
                }
            }
        }

        return result;
    }

    /// <summary>
    /// EVALSHA: like <see cref="Eval"/> for a cached script. An unknown SHA1 gives
    /// <c>NOSCRIPT No matching script. Please use EVAL.</c>
    /// </summary>
    public ScriptValue EvalSha(string sha1, IReadOnlyList<byte[]> keys, IReadOnlyList<byte[]> args, IScriptCommandExecutor executor)
    {
        ArgumentNullException.ThrowIfNull(sha1);
        string key = sha1.ToLowerInvariant();
        byte[] source;
        lock (_gate)
        {
            if (!_scripts.TryGetValue(key, out CachedScript? cached))
            {
                return new ScriptValue.Error(NoScriptMessage);
            }

            Touch(cached);
            source = cached.Source;
        }

        return Run(key, source, keys, args, executor, out _);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        LuaScriptState[] idle;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (LuaScriptState state in idle)
        {
            state.Dispose();
        }
    }

    private ScriptValue Run(
        string sha1,
        byte[] source,
        IReadOnlyList<byte[]> keys,
        IReadOnlyList<byte[]> args,
        IScriptCommandExecutor executor,
        out bool compiled)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(executor);
        LuaScriptState state = Rent();
        try
        {
            return state.Run(sha1, source, keys, args, executor, out compiled);
        }
        finally
        {
            Return(state);
        }
    }

    private void Touch(CachedScript cached)
    {
        if (cached.EvalNode is { } node && node.List is not null)
        {
            _evalOnly.Remove(node);
            _evalOnly.AddLast(node);
        }
    }

    private LuaScriptState Rent()
    {
        int generation;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            generation = _generation;
            if (_idle.TryPop(out LuaScriptState? state))
            {
                if (state.Generation != generation)
                {
                    state.ForgetFunctions(generation);
                }

                return state;
            }
        }

        Interlocked.Increment(ref _statesCreated);
        return new LuaScriptState(_limits, generation);
    }

    private void Return(LuaScriptState state)
    {
        if (!state.IsBloated)
        {
            lock (_gate)
            {
                if (!_disposed && _idle.Count < _maxIdleStates)
                {
                    _idle.Push(state);
                    return;
                }
            }
        }

        state.Dispose();
    }

    private sealed class CachedScript(byte[] source)
    {
        public byte[] Source { get; } = source;

        public LinkedListNode<string>? EvalNode { get; set; }
    }
}
