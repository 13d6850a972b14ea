namespace Bitcask.Server.Scripting;

/// <summary>
/// Limits every script run by a <see cref="LuaScriptHost"/> obeys. Immutable after construction (init-only), so
/// thread-safe.
/// </summary>
internal sealed class ScriptLimits
{
    /// <summary>The smallest memory limit accepted: a sandboxed Lua state alone needs about 100 KiB.</summary>
    internal const long MinMemoryBytes = 1L << 20;

    /// <summary>
    /// Wall-clock time one script may run (its <c>redis.call</c>s included). A script still running after it is
    /// stopped with <c>ERR Script exceeded the time limit of N ms</c>; the server stays usable. Default 5 s.
    /// </summary>
    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Bytes one Lua state (script code, its tables and strings, the sandbox itself) may hold while a script runs.
    /// An allocation past it fails inside Lua (<c>not enough memory</c>); uncaught, the script ends with
    /// <c>ERR Script exceeded the memory limit of N bytes</c>. Default 64 MiB; at least <see cref="MinMemoryBytes"/>.
    /// </summary>
    public long MaxMemoryBytes { get; init; } = 64L << 20;
}
