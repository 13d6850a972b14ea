namespace Bitcask.Server.Commands;

[Flags]
internal enum CommandFlags
{
    None = 0,
    /// <summary>Changes the keyspace.</summary>
    Write = 1,
    /// <summary>Only reads the keyspace.</summary>
    ReadOnly = 2,
    /// <summary>Allowed before AUTH.</summary>
    NoAuth = 4,
    /// <summary>Allowed in RESP2 subscribed mode.</summary>
    PubSubContext = 8,
    /// <summary>A script may not call it (redis.call answers "This Redis command is not allowed from script").</summary>
    NoScript = 16,
    /// <summary>Runs at once even inside MULTI (MULTI EXEC DISCARD WATCH QUIT RESET).</summary>
    TransactionControl = 32,
    /// <summary>Server administration.</summary>
    Admin = 64,
    PubSub = 128,
    Fast = 256,
}

/// <summary>Runs one command: reads and stages writes through <see cref="CommandContext.Db"/> and writes its reply. Must
/// have no other effect on the keyspace (it may run again after a conflicting write); effects outside the keyspace that
/// must happen once go through <see cref="CommandContext.AfterCommit"/>.</summary>
internal delegate void CommandHandler(CommandContext context);

/// <summary>One entry of the command table. <paramref name="Arity"/> as in Redis: N exactly N arguments with the name,
/// -N at least N. Keys at positions FirstKey..LastKey (negative = from the end) step Step, for COMMAND INFO.</summary>
internal sealed record CommandSpec(string Name, int Arity, CommandFlags Flags, int FirstKey, int LastKey, int Step, string Group,
    string Summary, CommandHandler Handler)
{
    public bool ArityOk(int count) => Arity >= 0 ? count == Arity : count >= -Arity;

    public bool Has(CommandFlags flag) => (Flags & flag) != 0;
}
