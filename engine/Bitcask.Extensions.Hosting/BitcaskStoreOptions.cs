namespace Bitcask.Extensions.Hosting;

/// <summary>
/// How the host opens one store: its directory and the engine's options. Bound from the configuration section
/// <c>Bitcask</c> (the default store) or <c>Bitcask:{name}</c> (a named store), where <c>Path</c> sets
/// <see cref="Path"/>, <c>DegradedFragmentation</c> sets <see cref="DegradedFragmentation"/> and every other key sets
/// the <see cref="BitcaskOptions"/> property of that name in <see cref="Engine"/> (<c>"Durability": "Synced"</c>,
/// <c>"MaxSegmentBytes": 67108864</c>, ...). Code given to <c>AddBitcask</c> runs after the binding.
/// Not thread-safe: configure it at registration, before the host starts.
/// </summary>
public sealed class BitcaskStoreOptions
{
    /// <summary>The store's directory (created when missing). Required.</summary>
    public string? Path { get; set; }

    /// <summary>
    /// The engine's options. When its <see cref="BitcaskOptions.LoggerFactory"/> is null the host's
    /// <c>ILoggerFactory</c> is used; when its <see cref="BitcaskOptions.TimeProvider"/> is <see cref="TimeProvider.System"/>
    /// and the container has a <see cref="TimeProvider"/>, that one is used.
    /// </summary>
    public BitcaskOptions Engine { get; set; } = new();

    /// <summary>
    /// The health check reports <c>Degraded</c> when the store's dead bytes make up more than this fraction of its
    /// bytes (0 to 1). Default: 0.8.
    /// </summary>
    public double DegradedFragmentation { get; set; } = 0.8;

    /// <summary>Test seam: opens the store (default <see cref="BitcaskStore.Open(string, BitcaskOptions?)"/>).</summary>
    internal Func<string, BitcaskOptions, BitcaskStore>? Opener { get; set; }
}
