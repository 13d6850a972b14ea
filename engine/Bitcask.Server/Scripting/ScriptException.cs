namespace Bitcask.Server.Scripting;

/// <summary>
/// Thrown by <see cref="LuaScriptHost.Load"/> when a script does not compile. <see cref="Exception.Message"/> is
/// the Redis error text to send as-is after a dash, e.g.
/// <c>ERR Error compiling script (new function): user_script:1: unexpected symbol near '&lt;eof&gt;'</c>.
/// </summary>
internal sealed class ScriptException : Exception
{
    /// <summary>Creates the exception with the full Redis error text (error code first).</summary>
    public ScriptException(string message)
        : base(message)
    {
    }
}
