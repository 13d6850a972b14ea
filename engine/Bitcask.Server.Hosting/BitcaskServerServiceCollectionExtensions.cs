using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Bitcask.Server.Hosting;

/// <summary>
/// Registers <c>bitcask serve</c> in the generic host: <c>services.AddBitcaskServer(builder.Configuration.GetSection("BitcaskServer"))</c>
/// with keys as in <see cref="BitcaskServerHostOptions"/> (<c>Directory</c>, <c>Port</c>, <c>Cluster:ClusterId</c>,
/// <c>Cluster:Node</c>, <c>Cluster:Peers:0</c>...). The server (and its store or cluster node) starts with the host and
/// stops with it. Call at startup, from one thread.
/// </summary>
public static class BitcaskServerServiceCollectionExtensions
{
    /// <summary>The configuration section conventionally bound.</summary>
    public const string SectionName = "BitcaskServer";

    /// <summary>Registers the server, bound from <paramref name="configuration"/>.</summary>
    public static IServiceCollection AddBitcaskServer(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<BitcaskServerHostOptions>().Bind(configuration);
        return AddBitcaskServer(services, configure: null);
    }

    /// <summary>Registers the server, configured by <paramref name="configure"/> (after any configuration bound before).</summary>
    public static IServiceCollection AddBitcaskServer(this IServiceCollection services, Action<BitcaskServerHostOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<BitcaskServerHostOptions>();
        if (configure is not null) options.Configure(configure);
        options.Validate(o => !string.IsNullOrEmpty(o.Directory), "BitcaskServer:Directory is required.")
            .Validate(o => o.Cluster is null || !string.IsNullOrEmpty(o.Cluster.ClusterId) && !string.IsNullOrEmpty(o.Cluster.Node),
                "BitcaskServer:Cluster needs ClusterId and Node.")
            .ValidateOnStart();
        services.TryAddSingleton<BitcaskServerHostedService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, BitcaskServerHostedService>(sp => sp.GetRequiredService<BitcaskServerHostedService>()));
        return services;
    }
}
