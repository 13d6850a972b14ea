using Microsoft.Extensions.Configuration;

namespace Bitcask.Extensions.Configuration;

/// <summary>
/// Where a <see cref="BitcaskConfigurationProvider"/> reads: a store (or a directory it opens read-only), the key prefix,
/// and how it reloads. Set the properties before the configuration is built.
/// </summary>
public sealed class BitcaskConfigurationSource : IConfigurationSource
{
    /// <summary>An open store to read (the caller keeps it open while the configuration is used, and disposes it). Either
    /// this or <see cref="Path"/>.</summary>
    public BitcaskStore? Store { get; set; }

    /// <summary>A store directory the provider opens itself, <see cref="BitcaskOptions.ReadOnly"/> by default (see
    /// <see cref="StoreOptions"/>), so it works beside the process that writes it; the provider disposes it.</summary>
    public string? Path { get; set; }

    /// <summary>Options for opening <see cref="Path"/>. Default: <c>new BitcaskOptions { ReadOnly = true }</c>.</summary>
    public BitcaskOptions? StoreOptions { get; set; }

    /// <summary>Only keys starting with this prefix (UTF-8) are read; it is trimmed from the configuration path. Default
    /// <c>"config/"</c>.</summary>
    public string Prefix { get; set; } = "config/";

    /// <summary>When true, a value that is a JSON object or array is flattened into one configuration entry per leaf
    /// (<c>key:sub</c>, arrays <c>key:0</c>, as the JSON configuration provider does). Other values are taken as
    /// UTF-8 text. Default false.</summary>
    public bool FlattenJson { get; set; }

    /// <summary>When true (default), the provider follows the store's <see cref="BitcaskStore.Watch"/> and reloads on
    /// every change under the prefix.</summary>
    public bool ReloadOnChange { get; set; } = true;

    /// <summary>How long after the first change of a burst the provider reloads (the changes that arrive meanwhile are
    /// in the same reload). Default 200 ms.</summary>
    public TimeSpan ReloadDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The first wait after the watch fails; it doubles with every failure in a row, up to
    /// <see cref="MaxRetryDelay"/>. The last good configuration stays in place meanwhile. Default 100 ms.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest wait between two attempts to restart a failed watch. Default 30 s.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>When true, a <see cref="Path"/> that does not exist gives an empty configuration instead of an
    /// exception. Default false.</summary>
    public bool Optional { get; set; }

    /// <summary>Called (on a background thread) with each exception that stopped the watch, before the provider backs
    /// off and restarts it. Must not throw.</summary>
    public Action<Exception>? OnWatchError { get; set; }

    /// <inheritdoc />
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new BitcaskConfigurationProvider(this);
}
