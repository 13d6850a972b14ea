using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Bitcask.Server;
using Microsoft.Extensions.Logging;

namespace Bitcask.Cli;

internal static partial class Commands
{
    /// <summary>The environment variable that may hold the server's password (never the command line: argv is visible to
    /// every user of the machine).</summary>
    public const string PasswordVariable = "BITCASK_REQUIREPASS";

    private static Command Serve(CliContext c)
    {
        var dir = DirArgument("The store directory (created when missing or empty).");
        var port = new Option<int>("--port") { Description = "TCP port (0 = any free port; the line 'Ready to accept connections on ADDRESS:PORT' says which).", DefaultValueFactory = _ => 6380 };
        var bind = new Option<string>("--bind") { Description = "Address to listen on. Anything but loopback needs a password.", DefaultValueFactory = _ => "127.0.0.1" };
        var durability = new Option<Durability>("--durability") { Description = "Synced: a reply means the write is on disk (one fdatasync per group of concurrent writes); Flushed: the OS has it (survives kill -9, not power loss); Buffered.", DefaultValueFactory = _ => Durability.Synced };
        var passwordFile = new Option<string?>("--requirepass-file") { Description = $"File whose first line is the password clients must AUTH with (or set {PasswordVariable}). Never on the command line.", HelpName = "FILE" };
        var maxClients = new Option<int>("--maxclients") { Description = "Most clients connected at once.", DefaultValueFactory = _ => 10_000 };
        var timeout = new Option<int>("--timeout") { Description = "Close a client idle this many seconds (0 = never; subscribers are exempt).", DefaultValueFactory = _ => 0 };
        var allowFlush = new Option<bool>("--allow-flush") { Description = "Let FLUSHDB/FLUSHALL delete every key (refused otherwise)." };
        var notify = new Option<string>("--notify-keyspace-events") { Description = "Keyspace notifications at start, as Redis's notify-keyspace-events (e.g. KEA).", DefaultValueFactory = _ => "" };
        var cluster = new ClusterFlags();
        var cmd = new Command("serve", Help(
            "Serve the store over the Redis protocol (RESP2/RESP3) until SIGTERM or Ctrl-C, then stop accepting, finish the " +
            "commands in flight, sync and close. redis-cli, StackExchange.Redis and the packages built on them work unchanged.",
            "bitcask serve /var/lib/myservice/kv", "bitcask serve /var/lib/myservice/kv --port 6390 --durability Flushed",
            $"{PasswordVariable}=s3cret bitcask serve /var/lib/myservice/kv --bind 0.0.0.0",
            "bitcask serve node1 --port 6381 --cluster-id demo --node 127.0.0.1:7001 --peers 127.0.0.1:7002,127.0.0.1:7003"))
        { dir, port, bind, durability, passwordFile, maxClients, timeout, allowFlush, notify };
        foreach (var option in cluster.All) cmd.Add(option);
        cmd.SetAction(r => Guard(c, () =>
        {
            if (!IPAddress.TryParse(r.GetValue(bind), out var address))
                throw new CliError($"--bind '{r.GetValue(bind)}' is not an IP address (examples: 127.0.0.1, ::1, 0.0.0.0)");
            var password = ReadPassword(r.GetValue(passwordFile));
            if (r.GetValue(timeout) < 0) throw new CliError("--timeout must be 0 or more seconds");
            var serverOptions = new BitcaskServerOptions
            {
                BindAddress = address,
                Port = r.GetValue(port),
                Password = password,
                MaxClients = r.GetValue(maxClients),
                IdleTimeout = TimeSpan.FromSeconds(r.GetValue(timeout)),
                AllowFlush = r.GetValue(allowFlush),
                NotifyKeyspaceEvents = r.GetValue(notify) ?? "",
            };
            if (!IPAddress.IsLoopback(address) && password is null)
                throw new CliError($"refusing to listen on {address} without a password: give --requirepass-file FILE or set {PasswordVariable}, or bind 127.0.0.1");
            if (r.GetValue(cluster.ClusterId) is not null)
                return ServeCluster(c, r, cluster, r.GetValue(dir)!, serverOptions, r.GetValue(durability));
            if (r.GetValue(cluster.Node) is not null || r.GetValue(cluster.Peers) is not null || r.GetValue(cluster.Join))
                throw new CliError("--node, --peers and --join run a cluster node and need --cluster-id ID");
            // Socket completions run on the socket engine's thread instead of hopping to the thread pool (one event loop,
            // as Redis has): about a quarter less CPU per unpipelined command (bench/NOTES.md). Read when the first socket
            // is used, so set here; an explicit setting in the environment wins. Standalone only: DotNext's
            // network code is untested with inline completions.
            if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
                Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
            using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
                .SetMinimumLevel(LogLevel.Information));
            var storeOptions = new BitcaskOptions { Durability = r.GetValue(durability), LoggerFactory = loggerFactory, InlineAsyncCompletions = true };
            using var store = OpenForWriting(r.GetValue(dir)!, mayCreate: true, storeOptions);
            return RunServer(c, store, serverOptions, loggerFactory).GetAwaiter().GetResult();
        }));
        return cmd;
    }

    private static string? ReadPassword(string? file)
    {
        string? password = null;
        if (file is not null)
        {
            if (!File.Exists(file)) throw new CliError($"--requirepass-file '{file}' does not exist");
            password = File.ReadLines(file).FirstOrDefault()?.TrimEnd('\r', '\n');
            if (string.IsNullOrEmpty(password)) throw new CliError($"--requirepass-file '{file}' is empty; its first line is the password");
        }
        else if (Environment.GetEnvironmentVariable(PasswordVariable) is { Length: > 0 } fromEnvironment) password = fromEnvironment;
        return password;
    }

    private static async Task<int> RunServer(CliContext c, BitcaskStore store, BitcaskServerOptions options, ILoggerFactory loggerFactory)
    {
        await using var server = new BitcaskServer(store, options, loggerFactory);
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // we shut down ourselves, gracefully
            stop.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        await server.StartAsync().ConfigureAwait(false);
        c.Out.WriteLine($"Ready to accept connections on {server.EndPoint} (durability {store.Options.Durability}, {store.Count} keys)");
        c.Out.Flush();
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        c.Out.WriteLine("Shutting down: finishing commands in flight, syncing");
        c.Out.Flush();
        await server.StopAsync().ConfigureAwait(false);
        c.Out.WriteLine("Stopped; every acknowledged write is on disk");
        c.Out.Flush();
        return Program.Ok;
    }
}
