namespace Bitcask.Server.Commands;

/// <summary>MULTI EXEC DISCARD WATCH UNWATCH. EXEC itself runs in <see cref="Connection.ExecAsync"/> (it commits).</summary>
internal static class TransactionCommands
{
    private const CommandFlags Control = CommandFlags.TransactionControl | CommandFlags.NoScript | CommandFlags.Fast;

    public static readonly CommandSpec Exec = new("exec", 1, Control, 0, 0, 0, "transactions", "Executes all commands in a transaction.",
        c => c.Reply.Error("ERR EXEC without MULTI"));

    public static IEnumerable<CommandSpec> All() =>
    [
        new("multi", 1, Control, 0, 0, 0, "transactions", "Starts a transaction.", Multi),
        Exec,
        new("discard", 1, Control, 0, 0, 0, "transactions", "Discards a transaction.", Discard),
        new("watch", -2, Control, 1, -1, 1, "transactions", "Monitors changes to keys to determine the execution of a transaction.", Watch),
        new("unwatch", 1, Control, 0, 0, 0, "transactions", "Forgets about watched keys of a transaction.", Unwatch),
    ];

    private static void Multi(CommandContext c)
    {
        var client = c.Client!;
        if (client.InMulti)
        {
            c.Reply.Error("ERR MULTI calls can not be nested");
            return;
        }
        client.InMulti = true;
        client.MultiError = false;
        client.Queued.Clear();
        c.Reply.Ok();
    }

    private static void Discard(CommandContext c)
    {
        var client = c.Client!;
        if (!client.InMulti)
        {
            c.Reply.Error("ERR DISCARD without MULTI");
            return;
        }
        client.InMulti = false;
        client.MultiError = false;
        client.Queued.Clear();
        client.Watched.Clear();
        c.Reply.Ok();
    }

    private static void Watch(CommandContext c)
    {
        var client = c.Client!;
        if (client.InMulti)
        {
            c.Reply.Error("ERR WATCH inside MULTI is not allowed");
            return;
        }
        for (var i = 1; i < c.Count; i++)
            client.Watched.TryAdd(c.Arg(i), c.Db.Store.GetInfo(c.Arg(i))?.Version ?? 0);
        c.Reply.Ok();
    }

    private static void Unwatch(CommandContext c)
    {
        c.Client!.Watched.Clear();
        c.Reply.Ok();
    }
}
