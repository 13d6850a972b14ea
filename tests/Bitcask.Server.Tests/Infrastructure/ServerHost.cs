using System.Net;
using Bitcask.Server;

namespace Bitcask.Server.Tests.Infrastructure;

/// <summary>A store in a temporary directory served in-process on an ephemeral loopback port.</summary>
public sealed class ServerHost : IAsyncDisposable
{
    private ServerHost(string directory, BitcaskStore store, BitcaskServer server)
    {
        Directory = directory;
        Store = store;
        Server = server;
    }

    public string Directory { get; }
    public BitcaskStore Store { get; }
    public BitcaskServer Server { get; }
    public int Port => Server.EndPoint!.Port;
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<ServerHost> StartAsync(BitcaskServerOptions? options = null, Durability durability = Durability.Flushed, BitcaskOptions? storeOptions = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "bitcask-server-tests", Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        // As `bitcask serve` opens its store: Synced async writers resume on the completion thread (BitcaskOptions.InlineAsyncCompletions).
        var store = BitcaskStore.Open(directory, (storeOptions ?? new BitcaskOptions { InlineAsyncCompletions = true }) with { Durability = durability });
        var server = new BitcaskServer(store, (options ?? new BitcaskServerOptions()) with { Port = 0, BindAddress = options?.BindAddress ?? IPAddress.Loopback });
        await server.StartAsync();
        return new ServerHost(directory, store, server);
    }

    public RespConnection Connect() => RespConnection.Open(Port);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Store.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
