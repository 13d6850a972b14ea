using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bitcask.Extensions.Hosting;

/// <summary>
/// Registers Bitcask stores in an <see cref="IServiceCollection"/>: <c>services.AddBitcask(o =&gt; o.Path = "data/kv")</c>
/// for the default store (resolved as <see cref="BitcaskStore"/>), <c>services.AddBitcask("orders", o =&gt; ...)</c> for a
/// named one (a keyed service: <c>[FromKeyedServices("orders")] BitcaskStore</c>). Options come first from the
/// container's <see cref="IConfiguration"/> (section <c>Bitcask</c>, or <c>Bitcask:{name}</c>), then from the code
/// given here, and are validated when the host starts. The store opens when the host starts and is synced and closed
/// when it stops. Call these at startup, from one thread.
/// </summary>
public static class BitcaskServiceCollectionExtensions
{
    /// <summary>The configuration section read for the default store; a named store reads <c>Bitcask:{name}</c>.</summary>
    public const string SectionName = "Bitcask";

    /// <summary>Registers the default store, configured from the container's configuration section <c>Bitcask</c>.</summary>
    /// <returns>The options builder, for more configuration or validation.</returns>
    public static OptionsBuilder<BitcaskStoreOptions> AddBitcask(this IServiceCollection services) =>
        AddBitcask(services, Options.DefaultName, configure: null);

    /// <summary>Registers the default store: configuration section <c>Bitcask</c> first, then <paramref name="configure"/>.</summary>
    /// <returns>The options builder, for more configuration or validation.</returns>
    public static OptionsBuilder<BitcaskStoreOptions> AddBitcask(this IServiceCollection services, Action<BitcaskStoreOptions>? configure) =>
        AddBitcask(services, Options.DefaultName, configure);

    /// <summary>Registers the default store, bound from <paramref name="configuration"/> (e.g. <c>builder.Configuration.GetSection("Bitcask")</c>).</summary>
    /// <returns>The options builder, for more configuration or validation.</returns>
    public static OptionsBuilder<BitcaskStoreOptions> AddBitcask(this IServiceCollection services, IConfiguration configuration) =>
        AddBitcask(services, Options.DefaultName, configuration);

    /// <summary>
    /// Registers the store <paramref name="name"/> as a keyed <see cref="BitcaskStore"/> (key = <paramref name="name"/>;
    /// the empty name is the default, unkeyed store): configuration section <c>Bitcask:{name}</c> first, then
    /// <paramref name="configure"/>. Calling it again for the same name adds configuration.
    /// </summary>
    /// <returns>The options builder of that name, for more configuration or validation.</returns>
    public static OptionsBuilder<BitcaskStoreOptions> AddBitcask(this IServiceCollection services, string name, Action<BitcaskStoreOptions>? configure)
    {
        var builder = Register(services, name);
        if (configure is not null) builder.Configure(configure);
        return builder;
    }

    /// <summary>Registers the store <paramref name="name"/>, bound from <paramref name="configuration"/> (its keys as in the <c>Bitcask</c> section).</summary>
    /// <returns>The options builder of that name, for more configuration or validation.</returns>
    public static OptionsBuilder<BitcaskStoreOptions> AddBitcask(this IServiceCollection services, string name, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = Register(services, name);
        builder.Configure(o => Bind(configuration, o));
        return builder;
    }

    private static OptionsBuilder<BitcaskStoreOptions> Register(IServiceCollection services, string name)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(name);
        var builder = services.AddOptions<BitcaskStoreOptions>(name);
        if (services.Any(d => d.ServiceType == typeof(BitcaskStoreRegistration) && d.ImplementationInstance is BitcaskStoreRegistration r && r.Name == name))
            return builder;

        var registration = new BitcaskStoreRegistration(name);
        services.AddSingleton(registration);
        // The container's configuration first (when there is one), so code given to AddBitcask overrides it.
        services.AddSingleton<IConfigureOptions<BitcaskStoreOptions>>(sp => new ConfigureNamedOptions<BitcaskStoreOptions>(name, o =>
        {
            if (sp.GetService<IConfiguration>() is { } configuration)
            {
                var section = configuration.GetSection(registration.SectionPath);
                if (section.Exists()) Bind(section, o);
            }
        }));
        services.AddSingleton<IValidateOptions<BitcaskStoreOptions>>(new BitcaskStoreOptionsValidator(registration));
        builder.ValidateOnStart();

        services.TryAddSingleton<BitcaskStores>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, BitcaskHostedService>());
        // BitcaskStores owns the stores (the container disposes them too, which a store ignores once closed).
        services.AddKeyedSingleton<BitcaskStore>(name, (sp, key) => sp.GetRequiredService<BitcaskStores>().Get(name));
        if (name == Options.DefaultName)
            services.AddSingleton<BitcaskStore>(sp => sp.GetRequiredService<BitcaskStores>().Get(name));
        return builder;
    }

    /// <summary><c>Path</c> and <c>DegradedFragmentation</c> to the host options, every other key to <see cref="BitcaskOptions"/>.</summary>
    private static void Bind(IConfiguration section, BitcaskStoreOptions options)
    {
        if (section["Path"] is { } path) options.Path = path;
        options.DegradedFragmentation = section.GetValue("DegradedFragmentation", options.DegradedFragmentation);
        // BitcaskOptions is an immutable record: bind a copy, keep it.
        var engine = options.Engine with { };
        section.Bind(engine, b => b.ErrorOnUnknownConfiguration = false);
        options.Engine = engine;
    }
}
