namespace Bitcask.Server.Scripting;

/// <summary>
/// What the server gives the script engine to run one <c>redis.call</c> / <c>redis.pcall</c> inside the script's
/// atomic context. <see cref="LuaScriptHost"/> calls it only on the thread that called
/// <see cref="LuaScriptHost.Eval"/> / <see cref="LuaScriptHost.EvalSha"/>, and only while that call runs.
/// </summary>
internal interface IScriptCommandExecutor
{
    /// <summary>
    /// Runs one command. <paramref name="argv"/>[0] is the command name as the script wrote it (any case); a command
    /// error comes back as <see cref="ScriptValue.Error"/> (not as an exception). An exception thrown here becomes an
    /// <c>ERR</c> error raised in the script; it never crosses into Lua.
    /// </summary>
    ScriptValue Execute(IReadOnlyList<byte[]> argv);
}
