using System.Text;

namespace Bitcask.Server.Commands;

/// <summary>INFO CONFIG COMMAND DBSIZE TIME FLUSHDB FLUSHALL LASTSAVE CLUSTER.</summary>
internal static class ServerCommands
{
    public static IEnumerable<CommandSpec> All() =>
    [
        new("info", -1, CommandFlags.None, 0, 0, 0, "server", "Returns information and statistics about the server.", Info),
        new("config", -2, CommandFlags.Admin | CommandFlags.NoScript, 0, 0, 0, "server", "A container for server configuration commands.", Config),
        new("command", -1, CommandFlags.None, 0, 0, 0, "server", "Returns detailed information about all commands.", Command),
        new("dbsize", 1, CommandFlags.ReadOnly | CommandFlags.Fast, 0, 0, 0, "server", "Returns the number of keys in the database.", c => c.Reply.Integer(c.Db.Count)),
        new("time", 1, CommandFlags.Fast, 0, 0, 0, "server", "Returns the server time.", Time),
        new("lastsave", 1, CommandFlags.Fast, 0, 0, 0, "server", "Returns the Unix timestamp of the last successful save to disk.",
            c => c.Reply.Integer(DateTimeOffset.UtcNow.ToUnixTimeSeconds())),
        new("flushdb", -1, CommandFlags.Write | CommandFlags.Admin, 0, 0, 0, "server", "Removes all keys from the current database.", Flush),
        new("flushall", -1, CommandFlags.Write | CommandFlags.Admin, 0, 0, 0, "server", "Removes all keys from all databases.", Flush),
        new("cluster", -2, CommandFlags.Admin, 0, 0, 0, "cluster", "A container for Redis Cluster commands.",
            c => c.Reply.Error("ERR This instance has cluster support disabled")),
    ];

    private static void Time(CommandContext c)
    {
        var now = DateTimeOffset.UtcNow;
        var micros = now.ToUnixTimeMilliseconds() * 1000 + now.Ticks / 10 % 1000;
        c.Reply.Array(2);
        c.Reply.Bulk(micros / 1_000_000);
        c.Reply.Bulk(micros % 1_000_000);
    }

    private static void Flush(CommandContext c)
    {
        if (c.Count > 2 || (c.Count == 2 && !c.Is(1, "ASYNC") && !c.Is(1, "SYNC")))
        {
            c.Reply.Error(Errors.Syntax);
            return;
        }
        if (!c.Server.Options.AllowFlush)
        {
            c.Reply.Error($"ERR {c.Name.ToUpperInvariant()} is disabled on this server (start it with --allow-flush to allow deleting every key)");
            return;
        }
        foreach (var key in c.Db.Keys()) c.Db.Delete(key);
        c.Reply.Ok();
    }

    // ------------------------------------------------------------------ INFO

    private static readonly string[] DefaultSections = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];

    private static void Info(CommandContext c)
    {
        var wanted = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 1; i < c.Count; i++) wanted.Add(c.Text(i));
        if (wanted.Count == 0 || wanted.Contains("default") || wanted.Contains("all") || wanted.Contains("everything"))
            wanted.UnionWith(DefaultSections);
        var text = new StringBuilder();
        var server = c.Server;
        var store = server.Store;
        foreach (var section in DefaultSections)
        {
            if (!wanted.Contains(section)) continue;
            if (text.Length > 0) text.Append("\r\n");
            switch (section)
            {
                case "server":
                    text.Append("# Server\r\n")
                        .Append($"redis_version:{ConnectionCommands.RedisVersion}\r\n")
                        .Append("redis_mode:standalone\r\n")
                        .Append($"server_name:bitcask\r\n")
                        .Append($"os:{Environment.OSVersion}\r\n")
                        .Append("arch_bits:64\r\n")
                        .Append($"process_id:{Environment.ProcessId}\r\n")
                        .Append($"tcp_port:{server.Port}\r\n")
                        .Append($"uptime_in_seconds:{(long)(DateTimeOffset.UtcNow - server.Started).TotalSeconds}\r\n")
                        .Append($"uptime_in_days:{(long)(DateTimeOffset.UtcNow - server.Started).TotalDays}\r\n")
                        .Append($"executable:{Environment.ProcessPath}\r\n");
                    break;
                case "clients":
                    text.Append("# Clients\r\n")
                        .Append($"connected_clients:{server.Clients.Count}\r\n")
                        .Append($"maxclients:{server.Options.MaxClients}\r\n")
                        .Append("blocked_clients:0\r\n")
                        .Append($"pubsub_clients:{server.Clients.Values.Count(x => x.Subscribed)}\r\n");
                    break;
                case "memory":
                    text.Append("# Memory\r\n")
                        .Append($"used_memory:{GC.GetTotalMemory(false)}\r\n")
                        .Append("maxmemory:0\r\n")
                        .Append("maxmemory_policy:noeviction\r\n");
                    break;
                case "persistence":
                    text.Append("# Persistence\r\n")
                        .Append("loading:0\r\n")
                        .Append("async_loading:0\r\n")
                        .Append($"durability:{server.Durability}\r\n")
                        .Append($"aof_enabled:1\r\n")
                        .Append($"appendfsync:{AppendFsync(server.Durability)}\r\n")
                        .Append("rdb_changes_since_last_save:0\r\n")
                        .Append("rdb_bgsave_in_progress:0\r\n")
                        .Append("aof_rewrite_in_progress:0\r\n")
                        .Append($"store_directory:{store.Directory}\r\n")
                        .Append($"store_revision:{store.Revision}\r\n");
                    break;
                case "stats":
                    var stats = server.Stats;
                    text.Append("# Stats\r\n")
                        .Append($"total_connections_received:{stats.Connections}\r\n")
                        .Append($"total_commands_processed:{stats.Commands}\r\n")
                        .Append($"rejected_connections:{stats.Rejected}\r\n")
                        .Append($"total_error_replies:0\r\n")
                        .Append($"protocol_errors:{stats.ProtocolErrors}\r\n")
                        .Append($"client_output_buffer_limit_disconnections:{stats.OutputLimitDisconnects}\r\n")
                        .Append($"idle_timeout_disconnections:{stats.IdleDisconnects}\r\n")
                        .Append($"pubsub_channels:{server.PubSub.ChannelCount}\r\n")
                        .Append($"pubsub_patterns:{server.PubSub.PatternCount}\r\n");
                    break;
                case "replication" when server.Node is not null:
                    ClusterCommands.AppendReplicationInfo(text, server);
                    break;
                case "replication":
                    text.Append("# Replication\r\n")
                        .Append("role:master\r\n")
                        .Append("connected_slaves:0\r\n")
                        .Append("master_failover_state:no-failover\r\n")
                        .Append("master_replid:0000000000000000000000000000000000000000\r\n")
                        .Append("master_repl_offset:0\r\n");
                    break;
                case "cpu":
                    var process = System.Diagnostics.Process.GetCurrentProcess();
                    text.Append("# CPU\r\n")
                        .Append($"used_cpu_sys:{process.PrivilegedProcessorTime.TotalSeconds:F6}\r\n")
                        .Append($"used_cpu_user:{process.UserProcessorTime.TotalSeconds:F6}\r\n");
                    break;
                case "keyspace":
                    text.Append("# Keyspace\r\n");
                    var count = server.KeyCount;
                    if (count > 0) text.Append($"db0:keys={count},expires=0,avg_ttl=0\r\n");
                    break;
            }
        }
        c.Reply.Verbatim(text.ToString());
    }

    private static string AppendFsync(Durability durability) => durability switch
    {
        Durability.Synced => "always",
        Durability.Flushed => "no",
        _ => "no",
    };

    // ------------------------------------------------------------------ CONFIG

    /// <summary>The parameters CONFIG GET answers (what clients ask at connect, and the limits in force).</summary>
    private static List<(string Name, string Value)> Parameters(ServerState server) =>
    [
        ("bind", server.Options.BindAddress.ToString()),
        ("port", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("databases", "1"),
        ("maxclients", server.Options.MaxClients.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("timeout", ((long)server.Options.IdleTimeout.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("proto-max-bulk-len", server.MaxBulkBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("client-query-buffer-limit", server.MaxQueryBufferBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("client-output-buffer-limit", $"normal 0 0 0 slave 0 0 0 pubsub {server.Options.MaxOutputBufferBytes} {server.Options.MaxOutputBufferBytes} 0"),
        ("notify-keyspace-events", KeyspaceNotifications.Format(server.NotifyFlags)),
        ("appendonly", "yes"),
        ("appendfsync", AppendFsync(server.Durability)),
        ("save", ""),
        ("maxmemory", "0"),
        ("maxmemory-policy", "noeviction"),
        ("slave-read-only", "yes"),
        ("replica-read-only", "yes"),
        ("cluster-enabled", "no"),
        ("requirepass", server.Options.Password is null ? "" : "********"),
        ("lua-time-limit", "5000"),
        ("busy-reply-threshold", "5000"),
    ];

    private static void Config(CommandContext c)
    {
        var server = c.Server;
        if (c.Is(1, "GET") && c.Count >= 3)
        {
            var found = new List<(string Name, string Value)>();
            foreach (var parameter in Parameters(server))
                for (var i = 2; i < c.Count; i++)
                    if (Glob.Match(c.Arg(i), Encoding.ASCII.GetBytes(parameter.Name), ignoreCase: true))
                    {
                        found.Add(parameter);
                        break;
                    }
            c.Reply.Map(found.Count);
            foreach (var (name, value) in found)
            {
                c.Reply.Bulk(name);
                c.Reply.Bulk(value);
            }
        }
        else if (c.Is(1, "SET") && c.Count >= 4 && c.Count % 2 == 0)
        {
            NotifyFlags? flags = null;
            for (var i = 2; i < c.Count; i += 2)
            {
                if (!c.Is(i, "notify-keyspace-events"))
                {
                    c.Reply.Error($"ERR Unknown option or number of arguments for CONFIG SET - '{c.Text(i)}'");
                    return;
                }
                flags = KeyspaceNotifications.Parse(c.Text(i + 1));
                if (flags is null)
                {
                    c.Reply.Error($"ERR CONFIG SET failed (possibly related to argument '{c.Text(i)}') - Invalid event class character. Use 'Ag$lshzxeKEtmd'.");
                    return;
                }
            }
            server.NotifyFlags = flags!.Value;
            server.NotifyFlagsChanged?.Invoke();
            c.Reply.Ok();
        }
        else if (c.Is(1, "RESETSTAT") && c.Count == 2) c.Reply.Ok();
        else if (c.Is(1, "GET") || c.Is(1, "SET") || c.Is(1, "RESETSTAT"))
            c.Reply.Error($"ERR wrong number of arguments for 'config|{c.Text(1).ToLowerInvariant()}' command");
        else c.Reply.Error($"ERR unknown subcommand '{c.Text(1)}'. Try CONFIG HELP.");
    }

    // ------------------------------------------------------------------ COMMAND

    private static void Command(CommandContext c)
    {
        var table = c.Server.Commands;
        if (c.Count == 1)
        {
            var all = table.All.OrderBy(s => s.Name).ToList();
            c.Reply.Array(all.Count);
            foreach (var spec in all) WriteInfo(c, spec);
        }
        else if (c.Is(1, "COUNT") && c.Count == 2) c.Reply.Integer(table.All.Count);
        else if (c.Is(1, "LIST"))
        {
            var all = table.All.OrderBy(s => s.Name).ToList();
            c.Reply.Array(all.Count);
            foreach (var spec in all) c.Reply.Bulk(spec.Name);
        }
        else if (c.Is(1, "INFO"))
        {
            var names = c.Count > 2 ? c.Args[2..].Select(Encoding.UTF8.GetString).ToList() : [.. table.All.Select(s => s.Name)];
            c.Reply.Array(names.Count);
            foreach (var name in names)
                if (table.Find(name) is { } spec) WriteInfo(c, spec);
                else c.Reply.NullBulk();
        }
        else if (c.Is(1, "DOCS"))
        {
            var specs = c.Count > 2
                ? c.Args[2..].Select(a => table.Find(Encoding.UTF8.GetString(a))).OfType<CommandSpec>().ToList()
                : [.. table.All.OrderBy(s => s.Name)];
            c.Reply.Map(specs.Count);
            foreach (var spec in specs)
            {
                c.Reply.Bulk(spec.Name);
                c.Reply.Map(3);
                c.Reply.Bulk("summary"u8);
                c.Reply.Bulk(spec.Summary);
                c.Reply.Bulk("since"u8);
                c.Reply.Bulk("1.0.0"u8);
                c.Reply.Bulk("group"u8);
                c.Reply.Bulk(spec.Group);
            }
        }
        else c.Reply.Error($"ERR unknown subcommand '{c.Text(1)}'. Try COMMAND HELP.");
    }

    private static void WriteInfo(CommandContext c, CommandSpec spec)
    {
        var flags = new List<string>();
        if (spec.Has(CommandFlags.Write)) flags.Add("write");
        if (spec.Has(CommandFlags.ReadOnly)) flags.Add("readonly");
        if (spec.Has(CommandFlags.Fast)) flags.Add("fast");
        if (spec.Has(CommandFlags.NoScript)) flags.Add("noscript");
        if (spec.Has(CommandFlags.PubSub)) flags.Add("pubsub");
        if (spec.Has(CommandFlags.NoAuth)) flags.Add("no_auth");
        if (spec.Has(CommandFlags.Admin)) flags.Add("admin");
        c.Reply.Array(10);
        c.Reply.Bulk(spec.Name);
        c.Reply.Integer(spec.Arity);
        c.Reply.Set(flags.Count);
        foreach (var f in flags) c.Reply.Simple(f);
        c.Reply.Integer(spec.FirstKey);
        c.Reply.Integer(spec.LastKey);
        c.Reply.Integer(spec.Step);
        c.Reply.Set(0);
        c.Reply.Set(0);
        c.Reply.Array(0);
        c.Reply.Array(0);
    }
}
