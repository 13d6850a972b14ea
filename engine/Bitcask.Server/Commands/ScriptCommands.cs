namespace Bitcask.Server.Commands;

/// <summary>EVAL EVALSHA SCRIPT: their table entries (arity, flags, docs). They run in <see cref="Connection"/>
/// (Connection.Scripting.cs, on the Lua engine in Scripting/), which takes them before the table's handler; the handler
/// only answers if a connection has no script host (the connection stays usable).</summary>
internal static class ScriptCommands
{
    public const string Unavailable = "ERR scripting is not available: this build of the server has no Lua engine";

    public static readonly CommandSpec Eval = new("eval", -3, CommandFlags.NoScript, 3, 3, 1, "scripting", "Executes a server-side Lua script.", c => c.Reply.Error(Unavailable));
    public static readonly CommandSpec EvalSha = new("evalsha", -3, CommandFlags.NoScript, 3, 3, 1, "scripting", "Executes a server-side Lua script by SHA1 digest.", c => c.Reply.Error(Unavailable));
    public static readonly CommandSpec Script = new("script", -2, CommandFlags.NoScript, 0, 0, 0, "scripting", "A container for Lua scripts management commands.", c => c.Reply.Error(Unavailable));

    public static IEnumerable<CommandSpec> All() => [Eval, EvalSha, Script];
}
