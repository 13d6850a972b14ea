using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Caching;

/// <summary>Registers <see cref="BitcaskDistributedCache"/> in a service container.</summary>
public static class BitcaskCacheServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="BitcaskDistributedCache"/> singleton as <see cref="IDistributedCache"/> and
    /// <see cref="IBufferDistributedCache"/> (so <c>HybridCache</c> uses it as its L2), over the <see cref="BitcaskStore"/>
    /// that <paramref name="store"/> returns (null: the <see cref="BitcaskStore"/> registered in the container).
    /// </summary>
    public static IServiceCollection AddBitcaskDistributedCache(this IServiceCollection services,
        Action<BitcaskCacheOptions>? configure = null, Func<IServiceProvider, BitcaskStore>? store = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions();
        if (configure is not null) services.Configure(configure);
        services.TryAddSingleton(sp => new BitcaskDistributedCache(
            store is null ? sp.GetRequiredService<BitcaskStore>() : store(sp),
            sp.GetRequiredService<IOptions<BitcaskCacheOptions>>(),
            sp.GetService<TimeProvider>()));
        services.Replace(ServiceDescriptor.Singleton<IDistributedCache>(sp => sp.GetRequiredService<BitcaskDistributedCache>()));
        services.Replace(ServiceDescriptor.Singleton<IBufferDistributedCache>(sp => sp.GetRequiredService<BitcaskDistributedCache>()));
        return services;
    }

    /// <summary><see cref="AddBitcaskDistributedCache(IServiceCollection, Action{BitcaskCacheOptions}?, Func{IServiceProvider, BitcaskStore}?)"/>
    /// over a store the caller opened (and disposes).</summary>
    public static IServiceCollection AddBitcaskDistributedCache(this IServiceCollection services, BitcaskStore store,
        Action<BitcaskCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        return services.AddBitcaskDistributedCache(configure, _ => store);
    }
}
