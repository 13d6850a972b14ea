using Microsoft.Extensions.Configuration;

namespace Bitcask.Extensions.Configuration;

/// <summary>Adds a <see cref="BitcaskConfigurationProvider"/> to a configuration builder.</summary>
public static class BitcaskConfigurationExtensions
{
    /// <summary>Adds the keys of <paramref name="store"/> under <paramref name="prefix"/> as configuration, reloaded on
    /// every change (see <see cref="BitcaskConfigurationProvider"/>). The caller keeps the store open and disposes it.</summary>
    public static IConfigurationBuilder AddBitcask(this IConfigurationBuilder builder, BitcaskStore store, string prefix = "config/",
        Action<BitcaskConfigurationSource>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        var source = new BitcaskConfigurationSource { Store = store, Prefix = prefix };
        configure?.Invoke(source);
        return builder.Add(source);
    }

    /// <summary>Adds the keys under <paramref name="prefix"/> of the store in directory <paramref name="path"/>, which the
    /// provider opens read-only (it works beside the process that writes the store) and disposes with the
    /// configuration.</summary>
    public static IConfigurationBuilder AddBitcask(this IConfigurationBuilder builder, string path, string prefix = "config/",
        Action<BitcaskConfigurationSource>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(prefix);
        var source = new BitcaskConfigurationSource { Path = path, Prefix = prefix };
        configure?.Invoke(source);
        return builder.Add(source);
    }
}
