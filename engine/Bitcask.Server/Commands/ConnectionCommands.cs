using System.Security.Cryptography;
using System.Text;

namespace Bitcask.Server.Commands;

/// <summary>PING ECHO QUIT HELLO AUTH SELECT CLIENT RESET.</summary>
internal static class ConnectionCommands
{
    /// <summary>The Redis version the server reports (clients choose features by it; the commands follow Redis 7).</summary>
    public const string RedisVersion = "7.0.0";

    private const CommandFlags Conn = CommandFlags.Fast | CommandFlags.NoScript;

    public static IEnumerable<CommandSpec> All() =>
    [
        new("ping", -1, CommandFlags.Fast | CommandFlags.PubSubContext, 0, 0, 0, "connection", "Returns the server's liveliness response.", Ping),
        new("echo", 2, CommandFlags.Fast, 0, 0, 0, "connection", "Returns the given string.", c => c.Reply.Bulk(c.Arg(1))),
        new("quit", -1, Conn | CommandFlags.NoAuth | CommandFlags.PubSubContext | CommandFlags.TransactionControl, 0, 0, 0, "connection", "Closes the connection.", Quit),
        new("hello", -1, Conn | CommandFlags.NoAuth, 0, 0, 0, "connection", "Handshakes with the Redis server.", Hello),
        new("auth", -2, Conn | CommandFlags.NoAuth, 0, 0, 0, "connection", "Authenticates the connection.", Auth),
        new("select", 2, CommandFlags.Fast, 0, 0, 0, "connection", "Changes the selected database.", Select),
        new("client", -2, CommandFlags.NoScript, 0, 0, 0, "connection", "A container for client connection commands.", Client),
        new("reset", 1, Conn | CommandFlags.NoAuth | CommandFlags.PubSubContext | CommandFlags.TransactionControl, 0, 0, 0, "connection", "Resets the connection.", Reset),
    ];

    private static void Ping(CommandContext c)
    {
        if (c.Count > 2)
        {
            c.WrongArity();
            return;
        }
        if (c.Client is { Subscribed: true, Protocol: 2 })
        {
            c.Reply.Array(2);
            c.Reply.Bulk("pong"u8);
            c.Reply.Bulk(c.Count == 2 ? c.Arg(1) : []);
        }
        else if (c.Count == 2) c.Reply.Bulk(c.Arg(1));
        else c.Reply.Simple("PONG");
    }

    private static void Quit(CommandContext c)
    {
        c.Reply.Ok();
        c.Client!.Quit();
    }

    /// <summary>Constant-time check of a password against the server's.</summary>
    private static bool PasswordMatches(ServerState server, byte[] given)
    {
        var expected = Encoding.UTF8.GetBytes(server.Options.Password!);
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(expected), SHA256.HashData(given));
    }

    private static void Auth(CommandContext c)
    {
        if (c.Count > 3)
        {
            c.Reply.Error(Errors.Syntax);
            return;
        }
        if (c.Server.Options.Password is null)
        {
            c.Reply.Error(c.Count == 2
                ? "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                : Errors.WrongPass);
            return;
        }
        var userOk = c.Count == 2 || c.Is(1, "default");
        if (userOk && PasswordMatches(c.Server, c.Arg(c.Count - 1)))
        {
            c.Client!.Authenticated = true;
            c.Reply.Ok();
        }
        else c.Reply.Error(Errors.WrongPass);
    }

    private static void Hello(CommandContext c)
    {
        var client = c.Client!;
        var protocol = client.Protocol;
        var i = 1;
        if (c.Count > 1)
        {
            if (!CommandContext.TryParseLong(c.Arg(1), out var version))
            {
                c.Reply.Error("ERR Protocol version is not an integer or out of range");
                return;
            }
            if (version is not (2 or 3))
            {
                c.Reply.Error("NOPROTO unsupported protocol version");
                return;
            }
            protocol = (int)version;
            i = 2;
        }
        string? name = null;
        for (; i < c.Count; i++)
        {
            if (c.Is(i, "AUTH") && i + 2 < c.Count)
            {
                if (c.Server.Options.Password is null || !c.Is(i + 1, "default") || !PasswordMatches(c.Server, c.Arg(i + 2)))
                {
                    c.Reply.Error(c.Server.Options.Password is null && c.Is(i + 1, "default") ? "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?" : Errors.WrongPass);
                    return;
                }
                client.Authenticated = true;
                i += 2;
            }
            else if (c.Is(i, "SETNAME") && i + 1 < c.Count)
            {
                name = c.Text(++i);
                if (!ValidName(name))
                {
                    c.Reply.Error("ERR Client names cannot contain spaces, newlines or special characters.");
                    return;
                }
            }
            else
            {
                c.Reply.Error($"ERR Syntax error in HELLO option '{c.Text(i)}'");
                return;
            }
        }
        if (!client.Authenticated)
        {
            c.Reply.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            return;
        }
        if (name is not null) client.Name = name.Length == 0 ? null : name;
        client.Protocol = protocol;
        c.Reply.Map(7);
        c.Reply.Bulk("server"u8);
        c.Reply.Bulk("redis"u8);
        c.Reply.Bulk("version"u8);
        c.Reply.Bulk(RedisVersion);
        c.Reply.Bulk("proto"u8);
        c.Reply.Integer(protocol);
        c.Reply.Bulk("id"u8);
        c.Reply.Integer(client.Id);
        c.Reply.Bulk("mode"u8);
        c.Reply.Bulk("standalone"u8);
        c.Reply.Bulk("role"u8);
        c.Reply.Bulk(ClusterCommands.RoleName(c.Server));
        c.Reply.Bulk("modules"u8);
        c.Reply.Array(0);
    }

    private static bool ValidName(string name)
    {
        foreach (var ch in name)
            if (ch < '!' || ch > '~') return false;
        return true;
    }

    private static void Select(CommandContext c)
    {
        if (!c.TryLong(1, out var index)) return;
        if (index != 0) c.Reply.Error("ERR DB index is out of range");
        else c.Reply.Ok();
    }

    private static void Client(CommandContext c)
    {
        var client = c.Client;
        var sub = c.Text(1).ToUpperInvariant();
        switch (sub)
        {
            case "SETNAME" when c.Count == 3:
                var name = c.Text(2);
                if (!ValidName(name))
                {
                    c.Reply.Error("ERR Client names cannot contain spaces, newlines or special characters.");
                    return;
                }
                if (client is not null) client.Name = name.Length == 0 ? null : name;
                c.Reply.Ok();
                return;
            case "GETNAME" when c.Count == 2:
                if (client?.Name is { } n) c.Reply.Bulk(n);
                else c.Reply.NullBulk();
                return;
            case "ID" when c.Count == 2:
                c.Reply.Integer(client?.Id ?? 0);
                return;
            case "SETINFO" when c.Count == 4:
                if (c.Is(2, "LIB-NAME")) { if (client is not null) client.LibraryName = c.Text(3); }
                else if (c.Is(2, "LIB-VER")) { if (client is not null) client.LibraryVersion = c.Text(3); }
                else
                {
                    c.Reply.Error($"ERR Unrecognized option '{c.Text(2)}'");
                    return;
                }
                c.Reply.Ok();
                return;
            case "LIST":
            {
                var text = new StringBuilder();
                foreach (var other in c.Server.Clients.Values.OrderBy(x => x.Id)) text.Append(other.Describe()).Append('\n');
                c.Reply.Verbatim(text.ToString());
                return;
            }
            case "INFO" when c.Count == 2:
                c.Reply.Verbatim((client?.Describe() ?? "") + "\n");
                return;
            case "NO-EVICT" or "NO-TOUCH" or "REPLY" when c.Count == 3:
                c.Reply.Ok();
                return;
            case "HELP":
                c.Reply.Array(1);
                c.Reply.Simple("CLIENT <subcommand> [<arg> ...]. Subcommands: SETNAME GETNAME ID SETINFO LIST INFO.");
                return;
            case "SETNAME" or "GETNAME" or "ID" or "SETINFO" or "INFO" or "NO-EVICT" or "NO-TOUCH" or "REPLY":
                c.Reply.Error($"ERR wrong number of arguments for 'client|{sub.ToLowerInvariant()}' command");
                return;
            default:
                c.Reply.Error($"ERR unknown subcommand '{c.Text(1)}'. Try CLIENT HELP.");
                return;
        }
    }

    private static void Reset(CommandContext c)
    {
        c.Client!.Reset();
        c.Reply.Simple("RESET");
    }
}
